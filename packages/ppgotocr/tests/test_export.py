"""Paddle Inference export: the predictor's greedy tokens equal dygraph's and transformers',
kernels are verified then chosen by speed (and recorded), the start-up check falls back from
oneDNN, and a damaged export is refused."""

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
    assert model.recorded  # the export chose the kernels and recorded the choice
    for name, choice in model.choices.items():
        chosen = choice["chosen"]
        assert choice["verified"][chosen]["ok"], name
    # the decoder step is checked on every recorded call: prefill and two decode steps
    assert len(model.choices["decoder"]["verified"]["plain"]["cases"]) == 3


def _copy_without_choice(exported, tmp_path):
    import shutil

    from ppgotocr.inference_kernels import KERNELS_NAME

    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    (copy / KERNELS_NAME).unlink()
    return copy


def test_kernels_chosen_by_speed_and_tokens_unchanged(
    pipe, exported, images, tmp_path, monkeypatch
):
    """Among verified configurations the faster one runs: with oneDNN timed twice as fast
    (simulated), every program whose oneDNN predictor passed the probe runs on oneDNN, and the
    greedy tokens stay those of dygraph."""
    from ppgotocr import _predictor, export
    from ppgotocr.inference_kernels import KERNELS_NAME

    copy = _copy_without_choice(exported, tmp_path)

    def time(self, graph, candidates, cases, **kw):
        return {"ok": True, "medians": [0.002 if s.onednn else 0.004 for s in candidates]}

    monkeypatch.setattr(_predictor.Worker, "time", time)
    model = export.InferenceModel(copy)
    assert not model.recorded and (copy / KERNELS_NAME).is_file()
    for name, choice in model.choices.items():
        onednn_ok = choice["verified"]["onednn"].get("ok")
        assert model.onednn[name] == bool(onednn_ok), (name, choice)
        if onednn_ok:
            assert choice["seconds"] == {"plain": 0.004, "onednn": 0.002}
    p = pipe.prepare(images[1])
    infer = GotOcrPipeline(model, pipe.tokenizer)
    assert infer.generate_ids([p], 24) == pipe.generate_ids([p], 24)
    # the next start reads the recorded choice instead of timing again
    again = export.InferenceModel(copy)
    assert again.recorded and again.onednn == model.onednn


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


def test_onednn_disagreement_falls_back_to_plain_kernels(exported, tmp_path, monkeypatch, capsys):
    """A oneDNN predictor that runs but returns wrong numbers (the 3.3.1 defect), simulated:
    every oneDNN check in the worker reports a large difference; the runner must fall back."""
    from ppgotocr import _predictor, export

    copy = _copy_without_choice(exported, tmp_path)
    real_check = _predictor.Worker.check_cases

    def check_cases(self, graph, settings, cases, tolerance=1e-4, **kw):
        res = real_check(self, graph, settings, cases, tolerance, **kw)
        if settings.onednn:
            return {"ok": False, "max_rel": 1.0, "reason": "simulated disagreement"}
        return res

    monkeypatch.setattr(_predictor.Worker, "check_cases", check_cases)
    model = export.InferenceModel(copy)
    assert model.onednn == {"vision": False, "decoder": False} and model.probe_diff <= 1e-4
    for choice in model.choices.values():
        assert choice["verified"]["onednn"]["reason"] == "simulated disagreement"
    assert "using the plain CPU kernels" in capsys.readouterr().err
    with pytest.raises(Exception, match="no predictor configuration reproduces"):
        export.InferenceModel(copy, mode="onednn")


def test_damaged_export_is_refused(exported, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    probe = dict(np.load(bad / "probe.npz"))
    probe["decoder_0_out_0"] = probe["decoder_0_out_0"] + 1.0  # the stored answer is wrong
    np.savez(bad / "probe.npz", **probe)
    assert main(["ocr", "x.png", "--model", str(bad), "--inference"]) == 2  # missing input first
    page = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (64, 64), "white").save(page)
    assert main(["ocr", str(page), "--model", str(bad), "--inference"]) == 2
    assert "no predictor configuration reproduces the exported probe" in capsys.readouterr().err
    assert main(["ocr", str(page), "--model", str(tmp_path), "--inference"]) == 2
    assert "not a Paddle Inference export" in capsys.readouterr().err


def _with_recorded_onednn_decoder(exported, tmp_path):
    """A copy whose recorded choice runs the decoder on oneDNN (verified there on this tiny
    graph), so the process creates a oneDNN predictor and Paddle's oneDNN checks run."""
    import json
    import shutil

    from ppgotocr.inference_kernels import KERNELS_NAME

    copy = tmp_path / "onednn"
    shutil.copytree(exported, copy)
    data = json.loads((copy / KERNELS_NAME).read_text())
    decoder = data["programs"]["decoder"]
    assert decoder["verified"]["onednn"]["ok"]
    decoder["settings"]["onednn"], decoder["chosen"] = True, "onednn"
    (copy / KERNELS_NAME).write_text(json.dumps(data))
    return copy


@pytest.mark.parametrize("verbose", [[], ["--verbose"]])
def test_ocr_json_stdout_parses(tiny, exported, images, tmp_path, verbose):
    """stdout of `ocr --json` is exactly one JSON document, with a oneDNN predictor in the
    process (whose native stdout lines are dropped, or sent to stderr with --verbose), and
    its texts equal the dygraph run's."""
    import json
    import subprocess
    import sys

    folder = _with_recorded_onednn_decoder(exported, tmp_path)
    common = [str(images[1]), str(images[0]), "--max-new-tokens", "8", "--json"]
    run = [sys.executable, "-m", "ppgotocr", *verbose, "ocr"]
    infer = subprocess.run(
        [*run, *common, "--model", str(folder), "--inference"],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(infer.stdout)
    assert "decoder: oneDNN" in doc["inference"], doc["inference"]
    dygraph = subprocess.run(
        [*run, *common, "--model", str(tiny["hf_dir"])], capture_output=True, text=True, check=True
    )
    ref = json.loads(dygraph.stdout)
    assert ref["inference"] is None
    assert [p["name"] for p in doc["pages"]] == [str(images[1]), str(images[0])]
    assert doc["pages"] == ref["pages"]
