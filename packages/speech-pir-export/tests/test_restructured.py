"""WaveRNN and DiffSinger, restructured for the predictor (their loops draw random numbers
and run thousands of steps; PIR gets the step functions, Python drives the loop):

* the exported graphs are verified (dygraph vs predictor, 1e-4 relative);
* the Python loop over the predictor reproduces upstream's own dygraph ``generate`` /
  ``inference`` when both see the same random draws (upstream's sampler / randn patched to
  replay the driver's draws), tolerance stated per test.
"""

import numpy as np
import paddle
import pytest

import speech_pir_export as spe
from speech_pir_export import configs, exporter
from speech_pir_export.infer import diffsinger_generate, wavernn_generate


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("restructured")
    for name in ("wavernn", "diffsinger"):
        m = spe.export(name, configs.path(name), root / name, onednn_check=False, progress=False)
        assert m["predictor"]["verified"], m["verification"]
    return root


class _ReplayCategorical:
    """Stands in for paddle.distribution.Categorical in upstream WaveRNN.generate: samples
    by inverse CDF of softmax(logits) with uniforms drawn like wavernn_generate draws them."""

    rng = None

    def __init__(self, logits):
        self.logits = logits

    def sample(self, shape):
        probs = paddle.nn.functional.softmax(self.logits, axis=-1).numpy()
        u = _ReplayCategorical.rng.random((probs.shape[0], 1)).astype("float32")
        idx = np.minimum((np.cumsum(probs, axis=-1) < u).sum(-1), probs.shape[-1] - 1)
        return paddle.to_tensor(idx[None].astype("int64"))


def test_wavernn_loop_matches_upstream_generate(exports, monkeypatch):
    out = exports / "wavernn"
    graphs = {g["name"] for g in exporter.read_manifest(out)["graphs"]}
    assert graphs == {"conditioner", "step"}
    dyg = spe.DygraphModel(out)
    logmel = np.random.default_rng(3).standard_normal((12, 80)).astype("float32")
    got = wavernn_generate(spe.ExportedModel(out), logmel, seed=11)
    assert got.shape == (12 * 300,) and np.isfinite(got).all()
    # same driver, dygraph graphs: identical sample path
    ref_dy = wavernn_generate(dyg, logmel, seed=11)
    assert np.abs(got - ref_dy).max() <= 1e-4
    # upstream's own generate (normalised input: the export folds the ZScore in)
    _ReplayCategorical.rng = np.random.default_rng(11)
    monkeypatch.setattr(paddle.distribution, "Categorical", _ReplayCategorical)
    norm = dyg.built.graphs[0].layer.normalizer
    with paddle.no_grad():
        c = norm(paddle.to_tensor(logmel))
        ref = dyg.built.model.generate(c, batched=True, target=120, overlap=30).numpy()[:, 0]
    assert ref.shape == got.shape
    # a uniform draw landing within float error of a CDF step could flip one sample; with
    # this seed none does, so the whole waveform must agree
    assert np.abs(got - ref).max() <= 1e-4


def test_diffsinger_loop_matches_upstream_inference(exports, monkeypatch):
    out = exports / "diffsinger"
    assert {g["name"] for g in exporter.read_manifest(out)["graphs"]} == {"fs2", "denoiser"}
    text = np.array([3, 8, 5, 12, 7, 9], np.int64)
    note = np.array([60, 62, 64, 65, 67, 69], np.int64)
    dur = np.array([0.1, 0.2, 0.15, 0.1, 0.3, 0.2], np.float32)
    slur = np.array([0, 0, 1, 0, 0, 1], np.int64)
    got = diffsinger_generate(spe.ExportedModel(out), text, note, dur, slur, seed=4)
    assert got.ndim == 2 and got.shape[1] == 80 and got.shape[0] > 0
    # upstream DiffSinger.inference with its randn replaying the driver's draws
    import ppdiffusers.utils.paddle_utils as pu

    rng = np.random.default_rng(4)

    def randn(shape, dtype=None, name=None):
        return paddle.to_tensor(rng.standard_normal(list(shape)).astype("float32"))

    monkeypatch.setattr(pu, "randn", randn)
    dyg = spe.DygraphModel(out)
    with paddle.no_grad():
        ref = dyg.built.model.inference(
            paddle.to_tensor(text),
            paddle.to_tensor(note),
            paddle.to_tensor(dur),
            paddle.to_tensor(slur),
        ).numpy()
    assert ref.shape == got.shape
    # 60 DDPM steps in float32 on both sides; tolerance 1e-4 relative to the mel range
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_cli_sings_through_diffsinger_and_wavernn(exports, tmp_path, capsys):
    import soundfile

    from speech_pir_export import cli

    out = tmp_path / "song.wav"
    rc = cli.main(
        [
            "infer",
            str(exports / "diffsinger"),
            "--phones",
            "3 8 5 12",
            "--notes",
            "60 62 64 65",
            "--note-durs",
            "0.1 0.1 0.2 0.1",
            "--vocoder",
            str(exports / "wavernn"),
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    wav, sr = soundfile.read(out)
    assert sr == 24000 and len(wav) > 0 and len(wav) % 300 == 0 and np.isfinite(wav).all()
    capsys.readouterr()
    rc = cli.main(
        [
            "infer",
            str(exports / "diffsinger"),
            "--phones",
            "3 8 5 12",
            "--notes",
            "60 62 64 65",
            "--note-durs",
            "0.1 0.1",
            "--vocoder",
            str(exports / "wavernn"),
        ]
    )
    assert rc != 0
    assert "--note-durs: 2 values for 4 phones" in capsys.readouterr().err
