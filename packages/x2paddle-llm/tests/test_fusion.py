"""Fused projections: the blocks' ``FUSE`` declarations, applied at load.

A loaded model runs one matrix product for the projections that read the same input (q/k/v,
gate/up of every MLP and expert, MLA's two down-projections); its published state dict still
has the checkpoint's names and tensors, and the unfused model gives the same logits.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_hf_model, random_prompts
from safetensors.numpy import load_file

from x2paddle_llm.blocks import FusableLinears, default_dtype
from x2paddle_llm.config import DecoderConfig
from x2paddle_llm.convert import convert
from x2paddle_llm.generation import generate, left_pad
from x2paddle_llm.modeling_decoder import DecoderForCausalLM
from x2paddle_llm.schema import model_tensors
from x2paddle_llm.weights import load_state_into

# GQA, qkv biases, per-head and all-head q/k norms, a fused source (Phi-3), MLA with and
# without a q rank, MoE experts with biases and clamped gates (GPT-OSS), partial rotary
VARIANTS = [
    "llama",
    "qwen2",
    "qwen3",
    "olmo2",
    "phi3",
    "deepseek_v2-lite",
    "deepseek_v3",
    "gpt_oss",
    "stablelm",
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_model_keeps_published_names_and_numbers(tmp_path, variant):
    import paddle

    build_hf_model(tmp_path / "hf", variant)
    convert(tmp_path / "hf", tmp_path / "pd", progress=False)
    fused = DecoderForCausalLM.from_pretrained(tmp_path / "pd")
    cfg = DecoderConfig.load(tmp_path / "pd")

    # every declared group whose parts all exist was fused, and the parts are gone
    groups = 0
    for layer in fused.sublayers():
        if isinstance(layer, FusableLinears):
            for name, parts in layer.FUSE.items():
                if getattr(layer, name) is not None:
                    groups += 1
                    assert all(getattr(layer, p) is None for p in parts)
    assert groups >= cfg.num_hidden_layers  # at least the attention of every layer

    # published names and values are the checkpoint's
    stored = load_file(str(tmp_path / "pd" / "model.safetensors"))
    published = {k: v.numpy() for k, v in fused.published_state_dict().items()}
    published = {k: v for k, v in published.items() if not k.endswith(("inv_freq", "exponents"))}
    assert sorted(published) == sorted(name for name, _, _ in model_tensors(cfg))
    assert sorted(published) == sorted(stored)
    for name, value in stored.items():
        np.testing.assert_array_equal(published[name], value, err_msg=name)

    # the unfused model agrees; a saved fused model reloads to the same logits
    unfused = DecoderForCausalLM(cfg)
    load_state_into(unfused, tmp_path / "pd", cfg)
    unfused.eval()
    fused.save_pretrained(tmp_path / "saved")
    reloaded = DecoderForCausalLM.from_pretrained(tmp_path / "saved")
    prompts = random_prompts(seed=2, lengths=(4, 9))
    ids, mask = left_pad(prompts, 0)
    with paddle.no_grad():
        logits = [
            m(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask))[0].numpy()
            for m in (fused, unfused, reloaded)
        ]
    keep = mask.astype(bool)
    assert np.abs(logits[0] - logits[1])[keep].max() <= 1e-5
    np.testing.assert_array_equal(logits[0], logits[2])
    kw = dict(max_new_tokens=8, eos_token_id=[], pad_token_id=0)
    assert generate(fused, prompts, **kw) == generate(unfused, prompts, **kw)


def test_default_dtype_is_restored_after_the_block_and_on_error():
    import paddle

    before = paddle.get_default_dtype()
    other = "float64" if before != "float64" else "float32"
    with default_dtype(other):
        assert paddle.get_default_dtype() == other
        assert paddle.nn.Linear(2, 3).weight.dtype == getattr(paddle, other)
    assert paddle.get_default_dtype() == before
    with pytest.raises(RuntimeError, match="inside"):
        with default_dtype(other):
            raise RuntimeError("inside")
    assert paddle.get_default_dtype() == before
