"""Tacotron2 restructured for the predictor: the Python loop over the exported
encoder / decoder_step / postnet graphs reproduces upstream's dygraph Tacotron2.inference
when both draw the same prenet dropout masks. Tolerance 1e-4 relative."""

import numpy as np
import paddle

import speech_pir_export as spe
from speech_pir_export import configs, exporter
from speech_pir_export.infer import tacotron2_generate


class _MaskedDropout:
    """Stands in for paddle.nn.functional inside upstream's decoder: dropout uses the masks
    tacotron2_generate draws (same generator, same order)."""

    def __init__(self, real, layers, units, seed):
        self.real, self.layers, self.units = real, layers, units
        self.rng = np.random.default_rng(seed)
        self.calls = 0
        self.masks = None

    def __getattr__(self, item):
        return getattr(self.real, item)

    def dropout(self, x, p=0.5, *args, **kwargs):
        layer = self.calls % self.layers
        if layer == 0:
            self.masks = ((self.rng.random((self.layers, 1, self.units)) < 1 - p) / (1 - p)).astype(
                "float32"
            )
        self.calls += 1
        return x * paddle.to_tensor(self.masks[layer])


def test_tacotron2_loop_matches_upstream_inference(tmp_path, monkeypatch):
    out = tmp_path / "taco"
    manifest = spe.export(
        "tacotron2", configs.path("tacotron2"), out, onednn_check=False, progress=False
    )
    assert manifest["predictor"]["verified"]
    assert {g["name"] for g in manifest["graphs"]} == {"encoder", "decoder_step", "postnet"}
    _, built = exporter.rebuild(out)
    d = manifest["meta"]["decoder"]
    ids = np.array([3, 7, 1, 9, 4, 4, 12], np.int64)

    import paddlespeech.t2s.modules.tacotron2.decoder as dec_mod

    monkeypatch.setattr(
        dec_mod, "F", _MaskedDropout(dec_mod.F, d["prenet_layers"], d["prenet_units"], seed=5)
    )
    with paddle.no_grad():
        ref = built.model.inference(paddle.to_tensor(ids), maxlenratio=3.0)["feat_gen"].numpy()
    got = tacotron2_generate(spe.ExportedModel(out), ids, maxlenratio=3.0, seed=5)
    assert got.shape == ref.shape and got.shape[0] >= 1
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())
