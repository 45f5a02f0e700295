"""``--target paddlenlp`` in PaddleNLP 3.0.0b4's own environment (no transformers, no torch).

References come from files written by ``make_fixtures.py`` with transformers 5 (logits, greedy
tokens) and from this package's own Paddle model, converted in the test from the same folder.
Tolerance: max |logits diff| <= 1e-4 on real (non-padding) positions; greedy tokens identical.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import paddle
import pytest

from x2paddle_llm import UnsupportedArchitectureError
from x2paddle_llm.convert import convert
from x2paddle_llm.modeling_decoder import DecoderForCausalLM

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SUPPORTED = ["llama", "llama3-rope", "llama-linear", "qwen2", "qwen2-tied", "mistral"]
ATOL = 1e-4


@pytest.mark.parametrize("name", SUPPORTED)
def test_paddlenlp_loads_converted_folder_with_same_logits(tmp_path, name):
    from paddlenlp.transformers import AutoModelForCausalLM

    src = FIXTURES / name
    ref = np.load(src / "reference.npz")
    convert(src, tmp_path / "nlp", target="paddlenlp", progress=False)
    convert(src, tmp_path / "own", target="paddle", progress=False)
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "nlp"), dtype="float32")
    model.eval()
    ids, mask = ref["input_ids"], ref["attention_mask"]
    with paddle.no_grad():
        out = model(input_ids=paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask))
        nlp_logits = (out[0] if isinstance(out, tuple) else out.logits).numpy()
        own_logits = DecoderForCausalLM.from_pretrained(tmp_path / "own")(
            paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask)
        )[0].numpy()
    real = mask.astype(bool)
    vs_transformers = np.abs(nlp_logits - ref["logits"])[real].max()
    vs_own = np.abs(nlp_logits - own_logits)[real].max()
    assert vs_transformers <= ATOL, f"{name}: PaddleNLP vs transformers {vs_transformers:.3e}"
    assert vs_own <= ATOL, f"{name}: PaddleNLP vs x2paddle_llm {vs_own:.3e}"

    with paddle.no_grad():
        gen = model.generate(
            input_ids=paddle.to_tensor(ids[:1]),
            attention_mask=paddle.ones_like(paddle.to_tensor(ids[:1])),
            decode_strategy="greedy_search",
            max_new_tokens=16,
            eos_token_id=-1,
            pad_token_id=0,
        )
    tokens = gen[0].numpy()[0].tolist()
    assert tokens == ref["greedy"].tolist(), (
        f"{name}: PaddleNLP greedy tokens differ from transformers"
    )


def test_config_is_normalised_for_paddlenlp(tmp_path):
    """transformers 5 moved rope_theta into rope_parameters; PaddleNLP would fall back to 10000."""
    raw = json.loads((FIXTURES / "llama" / "config.json").read_text())
    assert "rope_theta" not in raw and raw["rope_parameters"]["rope_theta"] == 500000.0
    convert(FIXTURES / "llama", tmp_path / "nlp", target="paddlenlp", progress=False)
    from paddlenlp.transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(str(tmp_path / "nlp"))
    assert cfg.rope_theta == 500000.0 and cfg.num_key_value_heads == 2


def test_sliding_window_mistral_is_refused(tmp_path):
    with pytest.raises(UnsupportedArchitectureError, match="sliding"):
        convert(FIXTURES / "mistral-window", tmp_path / "nlp", target="paddlenlp", progress=False)
    assert not (tmp_path / "nlp").exists()


def test_qwen3_is_refused_for_paddlenlp(tmp_path):
    src = tmp_path / "qwen3"
    shutil.copytree(FIXTURES / "llama", src)
    cfg = json.loads((src / "config.json").read_text())
    cfg["model_type"] = "qwen3"
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitectureError, match="qwen3"):
        convert(src, tmp_path / "nlp", target="paddlenlp", progress=False)
    assert not (tmp_path / "nlp").exists()
