"""Paddle Inference export: the predictor's greedy tokens equal dygraph's and transformers',
the start-up check falls back from oneDNN, and a damaged export is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ppgotocr.cli import main
from ppgotocr.pipeline import GotOcrPipeline


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "got-infer"
    assert main(["export", str(tiny["hf_dir"]), str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def infer_pipe(exported):
    return GotOcrPipeline.from_inference(exported)


def test_start_up_check_passes(infer_pipe):
    model = infer_pipe.model
    assert model.probe_diff <= 1e-4
    assert set(model.predictors) == {"vision", "decoder"}
    accepted = [
        a for a in model.attempts if a.get("max_rel_diff") is not None and a["max_rel_diff"] <= 1e-4
    ]
    assert {a["program"] for a in accepted} == {"vision", "decoder"}


@pytest.mark.parametrize(
    "kw", [{}, {"ocr_type": "format"}, {"crop": True}, {"box": "10,20,100,90"}]
)
def test_greedy_tokens_equal_dygraph(pipe, infer_pipe, images, kw):
    p = pipe.prepare(images[1], **kw)
    assert infer_pipe.generate_ids([p], 24) == pipe.generate_ids([p], 24)


def test_batch_equals_dygraph_and_each_row_alone(pipe, infer_pipe, images):
    prepared = [pipe.prepare(im) for im in images[:3]]
    batch = infer_pipe.generate_ids(prepared, 12)
    assert batch == pipe.generate_ids(prepared, 12)
    assert batch == [infer_pipe.generate_ids([p], 12)[0] for p in prepared]


def test_greedy_tokens_equal_transformers(tiny, infer_pipe, images):
    p = infer_pipe.prepare(images[0], no_repeat_ngram_size=0)
    ours = infer_pipe.generate_ids([p], 20)
    with torch.no_grad():
        out = tiny["hf"].generate(
            input_ids=torch.tensor([p.input_ids]),
            pixel_values=torch.tensor(p.pixel_values),
            do_sample=False,
            max_new_tokens=20,
            min_new_tokens=20,
        )
    ref = out[0, len(p.input_ids) :].tolist()
    n = len(ours[0])  # ours stops at the GOT stop tokens; transformers was told not to
    assert n > 0 and ours[0] == ref[:n]


def test_onednn_disagreement_falls_back_to_plain_kernels(exported, monkeypatch, capsys):
    """A oneDNN predictor that runs but returns wrong numbers (the 3.3.1 defect), simulated:
    the first attempt's check reports a large difference; the runner must fall back."""
    from ppgotocr import export

    real_check, real_create = export.InferenceModel._check_program, export.InferenceModel._create

    def create(self, name, onednn):
        self._asked_onednn = onednn
        return real_create(self, name, False)  # oneDNN itself fails on this tiny graph here

    def check(self, name, predictor, probe, expected):
        diff = real_check(self, name, predictor, probe, expected)
        return 1.0 if self._asked_onednn else diff

    monkeypatch.setattr(export.InferenceModel, "_check_program", check)
    monkeypatch.setattr(export.InferenceModel, "_create", create)
    model = export.InferenceModel(exported)
    assert model.onednn == {"vision": False, "decoder": False} and model.probe_diff <= 1e-4
    assert [a.get("max_rel_diff") for a in model.attempts] == [
        1.0,
        model.probe_diffs["vision"],
        1.0,
        model.probe_diffs["decoder"],
    ]
    assert "using the plain CPU kernels" in capsys.readouterr().err
    with pytest.raises(Exception, match="no predictor configuration reproduces"):
        export.InferenceModel(exported, mode="onednn")


def test_damaged_export_is_refused(exported, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    probe = dict(np.load(bad / "probe.npz"))
    probe["expected_1"] = probe["expected_1"] + 1.0  # the stored answer no longer matches
    np.savez(bad / "probe.npz", **probe)
    assert main(["ocr", "x.png", "--model", str(bad), "--inference"]) == 2  # missing input first
    page = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (64, 64), "white").save(page)
    assert main(["ocr", str(page), "--model", str(bad), "--inference"]) == 2
    assert "no predictor configuration reproduces the exported probe" in capsys.readouterr().err
    assert main(["ocr", str(page), "--model", str(tmp_path), "--inference"]) == 2
    assert "not a Paddle Inference export" in capsys.readouterr().err
