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


# --- TF2 / Keras 3 frozen graphs: each fix with a small Keras model that needs it ---------


def _keras_swish_dotted():
    """Keras names with dots (IdentityN from swish's custom gradient, NoOp control deps)."""
    import keras

    inp = keras.Input((8, 8, 3), name="input")
    x = keras.layers.Conv2D(4, 3, activation="swish", name="conv_0.5")(inp)
    return keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x), name="net_0.25")


def _keras_embedding():
    import keras

    ids = keras.Input((6,), dtype="int32", name="ids")
    x = keras.layers.Embedding(10, 4)(ids)
    return keras.Model(ids, keras.layers.Dense(3)(x))


def _keras_two_outputs():
    import keras

    inp = keras.Input((5,), name="input")
    h = keras.layers.Dense(4, activation="tanh")(inp)
    return keras.Model(inp, [h, keras.layers.Dense(2)(h)])


def _keras_upsampling():
    import keras

    inp = keras.Input((4, 4, 2), name="input")
    x = keras.layers.UpSampling2D(2)(keras.layers.Conv2D(3, 1)(inp))
    return keras.Model(inp, x)


def _keras_bn_concat():
    """The zoo's RetinaFace: its SSH modules concatenate BatchNorm outputs (no activation);
    after X2Paddle's conv+BN fusion and transpose elimination the Concat lost its inputs."""
    import keras_zoo

    return keras_zoo.FAMILIES["RetinaFace"][1]()


@pytest.mark.parametrize(
    "fix_id,build",
    [
        ("graph-del-layer-lists", _keras_bn_concat),
        ("tf2-frozen-graphs", _keras_swish_dotted),
        ("tf-keras3-ops", _keras_embedding),
        ("tf-consumed-outputs", _keras_two_outputs),
        ("tf-pack-scalars", _keras_upsampling),
    ],
)
def test_tf_keras3_fix(fix_id, build, tmp_path):
    import keras
    import keras_zoo

    keras.utils.set_random_seed(0)
    model = build()
    keras_zoo.randomize(model)
    pb = keras_zoo.freeze(model, tmp_path / "k.pb")
    inputs = sources.tf_inputs(pb)
    refs = sources.run_tensorflow(pb, inputs)

    def run(name):
        out = xc.convert_tensorflow(pb, tmp_path / name)
        return verify(out, inputs, refs, atol=1e-5, rtol=1e-5, predictors=False)

    with xc.without_fix(fix_id):
        try:
            report = run("without")
        except (xc.ConversionError, xc.UnsupportedOpsError):
            pass
        else:
            assert not report.ok, f"{fix_id} is not needed by this model"
    report = run("with")
    assert report.ok, report.table()


@pytest.mark.parametrize("family", ["MobileNetV2", "KerasBert", "YOLOv3_darknet"])
def test_tf_keras_family(family, tmp_path):
    """Zoo families in CI: Keras application / BERT with two int inputs / darknet + upsample."""
    import keras_zoo

    pb = keras_zoo.write_family(family, tmp_path / "f.pb")
    out = xc.convert_tensorflow(pb, tmp_path / "paddle")
    inputs = sources.tf_inputs(pb)
    report = verify(out, inputs, sources.run_tensorflow(pb, inputs), atol=1e-5, rtol=1e-5)
    assert report.ok, report.table()
