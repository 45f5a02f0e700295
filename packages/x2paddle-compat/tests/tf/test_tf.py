"""TensorFlow frozen graphs (tensorflow-cpu 2.16, numpy < 2, protobuf < 5 venv).

Tolerance: max|paddle - tensorflow| <= 1e-5 + 1e-5 * max|tensorflow|.
"""

from __future__ import annotations

import pytest
import tf_graphs
import x2paddle_compat as xc
from x2paddle_compat import sources
from x2paddle_compat.cli import main
from x2paddle_compat.verify import verify


@pytest.mark.parametrize("name", sorted(tf_graphs.GRAPHS))
def test_tf_graph(name, tmp_path):
    pb = tf_graphs.write_frozen(name, tmp_path / f"{name}.pb")
    out = xc.convert_tensorflow(pb, tmp_path / "paddle")
    inputs = sources.tf_inputs(pb)
    refs = sources.run_tensorflow(pb, inputs)
    report = verify(out, inputs, refs, atol=1e-5, rtol=1e-5)
    assert report.ok, report.table()


def test_tf_cli_verify(tmp_path, capsys):
    pb = tf_graphs.write_frozen("cnn", tmp_path / "cnn.pb")
    assert main(["-f", "tensorflow", "-m", str(pb), "-s", str(tmp_path / "o"), "--verify"]) == 0
    assert "verified: OK" in capsys.readouterr().out


def test_tf_truncated_graph(tmp_path):
    pb = tf_graphs.write_frozen("mlp", tmp_path / "mlp.pb")
    pb.write_bytes(pb.read_bytes()[:100])
    with pytest.raises(xc.InvalidModelError, match="mlp.pb"):
        xc.convert_tensorflow(pb, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_tf_two_conversions_in_one_process(tmp_path):
    """Without tf-fresh-graph the second conversion decodes the first graph's nodes too."""
    first = tf_graphs.write_frozen("cnn", tmp_path / "a.pb")
    second = tf_graphs.write_frozen("mlp", tmp_path / "b.pb")

    def run(name):
        xc.convert_tensorflow(first, tmp_path / f"{name}_a")
        out = xc.convert_tensorflow(second, tmp_path / f"{name}_b")
        inputs = sources.tf_inputs(second)
        return verify(out, inputs, sources.run_tensorflow(second, inputs), predictors=False)

    with xc.without_fix("tf-fresh-graph"):
        try:
            report = run("without")
        except xc.ConversionError:
            pass
        else:
            assert not report.ok
    report = run("with")
    assert report.ok, report.table()
