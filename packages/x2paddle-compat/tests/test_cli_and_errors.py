"""CLI, deploy.json / create_predictor, and bad input: clear errors, nothing half-written."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_graphs
import pytest
import torch_models
from harness import export_onnx

import x2paddle_compat as xc
from x2paddle_compat import InvalidModelError, VerificationError
from x2paddle_compat.cli import main
from x2paddle_compat.verify import create_predictor


@pytest.fixture(scope="module")
def upsample_onnx(tmp_path_factory):
    """A model whose oneDNN predictor fails on Paddle 3.3.1 (R12)."""
    module, inputs = torch_models.build("upsample_seg")
    return export_onnx(module, inputs, tmp_path_factory.mktemp("m") / "up.onnx", 13)


def test_cli_verify_writes_deploy_and_predictor_matches(upsample_onnx, tmp_path, capsys):
    out = tmp_path / "paddle"
    assert main(["-f", "onnx", "-m", str(upsample_onnx), "-s", str(out), "--verify"]) == 0
    text = capsys.readouterr().out
    assert "max abs diff" in text and "verified: OK" in text
    for f in (
        "x2paddle_code.py",
        "model.pdparams",
        "inference_model/model.json",
        "inference_model/model.pdiparams",
        "deploy.json",
    ):
        assert (out / f).exists(), f
    deploy = json.loads((out / "deploy.json").read_text())
    assert deploy["verified"] is True and deploy["use_onednn"] is False  # R12
    predictor = create_predictor(out)
    from x2paddle_compat import sources

    inputs = sources.onnx_inputs(upsample_onnx, seed=3)
    ref = sources.run_onnx(upsample_onnx, inputs)[0]
    name = predictor.get_input_names()[0]
    handle = predictor.get_input_handle(name)
    handle.reshape(list(inputs["x0"].shape))
    handle.copy_from_cpu(inputs["x0"])
    predictor.run()
    got = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)


def test_create_predictor_refuses_unverified_folder(tmp_path):
    with pytest.raises(VerificationError, match="deploy.json"):
        create_predictor(tmp_path)


def test_cli_exit_1_when_wrong(tmp_path, capsys):
    """A wrong conversion (Resize fix removed) is reported and exits 1."""
    model = onnx_graphs.resize_scales_only()
    path = tmp_path / "r.onnx"
    onnx.save(model, path)
    with xc.without_fix("resize-scales-only"):
        code = main(["-f", "onnx", "-m", str(path), "-s", str(tmp_path / "o"), "--verify"])
    assert code == 1
    assert "VERIFICATION FAILED" in capsys.readouterr().err


def test_cli_help_and_fix_list(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "--verify" in capsys.readouterr().out
    assert main(["--list-fixes"]) == 0
    out = capsys.readouterr().out
    assert "R17" in out and "resize-scales-only" in out


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "is empty"),
        (b"not an onnx model at all", "not a readable ONNX model|empty graph"),
    ],
)
def test_corrupt_onnx(content, match, tmp_path, capsys):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(InvalidModelError, match=match):
        xc.convert_onnx(path, tmp_path / "out")
    assert main(["-f", "onnx", "-m", str(path), "-s", str(tmp_path / "out")]) == 2
    assert str(path) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_truncated_onnx(upsample_onnx, tmp_path):
    data = upsample_onnx.read_bytes()
    path = tmp_path / "trunc.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidModelError, match="trunc.onnx"):
        xc.convert_onnx(path, tmp_path / "out")
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_missing_file(tmp_path):
    with pytest.raises(InvalidModelError, match="does not exist"):
        xc.convert_onnx(tmp_path / "nope.onnx", tmp_path / "out")


def test_truncated_caffemodel(tmp_path):
    import caffe_models

    proto, weights, _, _ = caffe_models.write_net("conv_bn_scale_pool_fc", tmp_path / "src")
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])
    with pytest.raises(InvalidModelError, match="net.caffemodel"):
        xc.convert_caffe(proto, weights, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failed_conversion_leaves_no_folder(tmp_path):
    with pytest.raises(xc.UnsupportedOpsError):
        path = tmp_path / "u.onnx"
        onnx.save(onnx_graphs.unsupported_ops(), path)
        xc.convert_onnx(path, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.onnx"]


def test_existing_output_not_overwritten(upsample_onnx, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    from x2paddle_compat._atomic import OutputExistsError

    with pytest.raises(OutputExistsError, match="--overwrite"):
        xc.convert_onnx(upsample_onnx, out)
    assert (out / "keep.txt").exists()


def test_wrong_input_shape_is_a_clear_error(upsample_onnx, tmp_path):
    from x2paddle_compat.verify import run_predictor

    out = xc.convert_onnx(upsample_onnx, tmp_path / "o")
    with pytest.raises(ValueError, match=r"input '\w*x0'.* shape \[1, 5, 16, 16\] does not match"):
        run_predictor(out, {"x0": np.zeros((1, 5, 16, 16), "float32")}, use_onednn=False)


def test_cli_shows_conversion_warnings_as_one_line(monkeypatch, capsys):
    """A fix's ConversionWarning, raised while X2Paddle's output goes to a log, reaches the
    terminal once the conversion returns, as one ``warning:`` line (other warnings unchanged)."""
    import warnings

    from x2paddle_compat import cli, convert
    from x2paddle_compat.errors import ConversionWarning

    def converting(*args, **kwargs):
        print("X2Paddle's own chatter")
        warnings.warn(ConversionWarning("an argument frozen to 16000"), stacklevel=1)

    def fake_main(argv):
        convert._run(converting, source="model.pt")
        return 0

    monkeypatch.setattr(cli, "_main", fake_main)
    assert main([]) == 0
    err = capsys.readouterr().err
    assert "warning: an argument frozen to 16000\n" in err
    assert "ConversionWarning" not in err and "chatter" not in err
