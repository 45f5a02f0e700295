"""Both source layouts (transformers, original stepfun) convert to identical Paddle weights and
outputs; conversion back to transformers / original round-trips exactly."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import paddle
import pytest
import torch
from safetensors.numpy import load_file, save_file

from ppgotocr.cli import main
from ppgotocr.convert import (
    ConversionError,
    convert,
    detect_layout,
    is_linear_weight,
    transformers_to_paddle_name,
)
from ppgotocr.modeling_got_ocr2 import GotOcr2ForConditionalGeneration


def _logits(model, p):
    with paddle.no_grad():
        out, _ = model(
            paddle.to_tensor([p.input_ids]), pixel_values=paddle.to_tensor(p.pixel_values)
        )
    return out.numpy()


@pytest.fixture(scope="module")
def converted(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("conv")
    assert main(["convert", str(tiny["hf_dir"]), str(root / "from_hf")]) == 0
    assert main(["convert", str(tiny["orig_dir"]), str(root / "from_orig")]) == 0
    return root


def test_layouts_detected(tiny, converted):
    assert detect_layout(tiny["hf_dir"]) == "transformers"
    assert detect_layout(tiny["orig_dir"]) == "original"
    assert detect_layout(converted / "from_hf") == "ppgotocr"


def test_both_conversion_paths_identical(tiny, converted, pipe, images):
    a = load_file(str(converted / "from_hf" / "model.safetensors"))
    b = load_file(str(converted / "from_orig" / "model.safetensors"))
    assert sorted(a) == sorted(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert "lm_head.weight" not in a  # tied head, verified then dropped
    cfg_a = json.loads((converted / "from_hf" / "config.json").read_text())
    cfg_b = json.loads((converted / "from_orig" / "config.json").read_text())
    assert cfg_a["vision"] == cfg_b["vision"]  # original vision dims inferred from shapes
    assert cfg_a["text"] == cfg_b["text"]
    assert cfg_a["text"]["rope_theta"] == 1000000.0
    for key in ("image_token_id", "img_start_token_id", "img_end_token_id", "eos_token_id"):
        assert cfg_a[key] == cfg_b[key]
    p = pipe.prepare(images[0])
    ref = _logits(pipe.model, p)
    for folder in (converted / "from_hf", converted / "from_orig", tiny["orig_dir"]):
        assert np.array_equal(
            _logits(GotOcr2ForConditionalGeneration.from_pretrained(folder), p), ref
        )
    assert (converted / "from_hf" / "tokenizer.json").is_file()


def test_lm_head_copy_is_checked(tiny, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny["orig_dir"], bad)
    w = load_file(str(bad / "model.safetensors"))
    w["lm_head.weight"] = w["lm_head.weight"] + 1e-3
    save_file(w, str(bad / "model.safetensors"))
    with pytest.raises(ConversionError, match="lm_head.weight differs"):
        convert(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob("out.tmp-*"))  # nothing half-written


def test_back_to_transformers(tiny, converted, pipe, images):
    from transformers import GotOcr2ForConditionalGeneration as HF

    out = converted / "to_hf"
    assert main(["convert", str(converted / "from_hf"), str(out), "--to", "transformers"]) == 0
    hf2 = HF.from_pretrained(out).eval()
    p = pipe.prepare(images[1])
    with torch.no_grad():
        a = tiny["hf"](
            input_ids=torch.tensor([p.input_ids]), pixel_values=torch.tensor(p.pixel_values)
        ).logits
        b = hf2(
            input_ids=torch.tensor([p.input_ids]), pixel_values=torch.tensor(p.pixel_values)
        ).logits
    assert torch.equal(a, b)


def test_back_to_original(tiny, converted):
    out = converted / "to_orig"
    assert main(["convert", str(converted / "from_orig"), str(out), "--to", "original"]) == 0
    a = load_file(str(tiny["orig_dir"] / "model.safetensors"))
    b = load_file(str(out / "model.safetensors"))
    assert sorted(a) == sorted(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    cfg = json.loads((out / "config.json").read_text())
    src = json.loads((tiny["orig_dir"] / "config.json").read_text())
    for key in ("im_patch_token", "im_start_token", "im_end_token", "hidden_size", "vocab_size"):
        assert cfg[key] == src[key]


def test_convert_refuses_existing_output(tiny, converted, capsys):
    assert main(["convert", str(tiny["hf_dir"]), str(converted / "from_hf")]) == 2
    assert "exists" in capsys.readouterr().err


def test_convert_bad_source(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text("{not json")
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "out")]) == 2
    assert "invalid JSON" in capsys.readouterr().err


def test_bf16_checkpoint(tiny, tmp_path):
    """The published checkpoints are bf16; numpy has no bf16, so it is widened by hand."""
    hf16 = copy.deepcopy(tiny["hf"]).to(torch.bfloat16)
    hf16.save_pretrained(tmp_path / "bf16")
    shutil.copy(tiny["tok_path"], tmp_path / "bf16" / "tokenizer.json")
    from ppgotocr.convert import _read_header

    _, header = _read_header(tmp_path / "bf16" / "model.safetensors")
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}
    model = GotOcr2ForConditionalGeneration.from_pretrained(tmp_path / "bf16")
    ref = {transformers_to_paddle_name(k): v.float().numpy() for k, v in hf16.state_dict().items()}
    got = model.state_dict()
    for name, value in got.items():
        want = ref[name].T if is_linear_weight(name) else ref[name]
        assert np.array_equal(value.numpy(), want), name
