"""Config normalisation (4.x / 5.x layouts) and rope frequencies against transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from conftest import BASE, VARIANTS
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from x2paddle_llm import ConfigError, UnsupportedArchitectureError, normalize_hf_config

V4_LLAMA31 = {  # the transformers 4.x layout of a Llama 3.1 config
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 96,
    "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
    "torch_dtype": "bfloat16",
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "eos_token_id": [128001, 128008, 128009],
    "tie_word_embeddings": False,
}


def test_transformers4_and_5_layouts_normalise_identically():
    v5 = transformers.LlamaConfig(
        **{k: v for k, v in V4_LLAMA31.items() if k not in ("model_type",)}
    ).to_dict()
    assert "rope_parameters" in v5 and "rope_theta" not in v5  # transformers 5 moved it
    a, b = normalize_hf_config(V4_LLAMA31), normalize_hf_config(v5)
    assert a.rope["theta"] == b.rope["theta"] == 500000.0
    assert a.rope["type"] == b.rope["type"] == "llama3"
    assert a.rope["params"] == b.rope["params"]
    assert a.source_dtype == b.source_dtype == "bfloat16"
    assert a.eos_token_id == [128001, 128008, 128009]
    assert a.head_dim == 16 and a.num_key_value_groups == 2


def test_legacy_type_key_and_family_fields():
    c = normalize_hf_config({**V4_LLAMA31, "rope_scaling": {"type": "linear", "factor": 2.0}})
    assert c.rope["type"] == "linear" and c.rope["params"] == {"factor": 2.0}
    q2 = normalize_hf_config({**V4_LLAMA31, "model_type": "qwen2", "rope_scaling": None})
    assert q2.qkv_bias and not q2.o_bias and not q2.qk_norm
    q3 = normalize_hf_config({**V4_LLAMA31, "model_type": "qwen3", "rope_scaling": None})
    assert q3.qk_norm and q3.head_dim == 128  # Qwen3Config default head_dim
    m = normalize_hf_config(
        {**V4_LLAMA31, "model_type": "mistral", "rope_scaling": None, "sliding_window": 4096}
    )
    assert m.layer_types == ["sliding_attention"] * 2 and m.sliding_window == 4096
    q2sw = normalize_hf_config(
        {
            **V4_LLAMA31,
            "model_type": "qwen2",
            "rope_scaling": None,
            "use_sliding_window": True,
            "sliding_window": 8,
            "max_window_layers": 1,
        }
    )
    assert q2sw.layer_types == ["full_attention", "sliding_attention"]


def test_bad_configs():
    with pytest.raises(UnsupportedArchitectureError, match="Supported"):
        normalize_hf_config({**V4_LLAMA31, "model_type": "bert"})
    with pytest.raises(ConfigError, match="needs"):
        normalize_hf_config({**V4_LLAMA31, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})
    with pytest.raises(ConfigError, match="hidden_size"):
        normalize_hf_config({k: v for k, v in V4_LLAMA31.items() if k != "hidden_size"})
    with pytest.raises(ConfigError, match="divisible"):
        normalize_hf_config({**V4_LLAMA31, "num_key_value_heads": 3})


@pytest.mark.parametrize(
    "variant", ["llama", "llama3-rope", "llama-linear", "llama-dynamic", "llama-yarn"]
)
def test_rope_frequencies_match_transformers(variant):
    _, extra = VARIANTS[variant]
    hf_cfg = transformers.LlamaConfig(**{**BASE, **extra})
    ours = normalize_hf_config(hf_cfg.to_dict())
    rope_type = hf_cfg.rope_parameters["rope_type"]
    fn = ROPE_INIT_FUNCTIONS[rope_type] if rope_type != "default" else None
    if fn is None:
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

        ref_inv, ref_scale = LlamaRotaryEmbedding.compute_default_rope_parameters(
            config=hf_cfg, device=torch.device("cpu")
        )
    else:
        ref_inv, ref_scale = fn(hf_cfg, torch.device("cpu"))
    inv, scale = ours.rope_inv_freq()
    np.testing.assert_allclose(inv, ref_inv.numpy(), rtol=1e-6, atol=0)
    assert scale == pytest.approx(ref_scale, rel=1e-7)


def test_top_level_original_max_position_embeddings_takes_priority():
    """As in transformers: a YaRN Qwen2 whose config.json carries it at the top level."""
    _, extra = VARIANTS["qwen2-yarn-orig"]
    hf_cfg = transformers.Qwen2Config(**{**BASE, **extra})
    ours = normalize_hf_config(hf_cfg.to_dict())
    assert ours.rope["params"]["original_max_position_embeddings"] == 32
    ref_inv, ref_scale = ROPE_INIT_FUNCTIONS["yarn"](hf_cfg, torch.device("cpu"))
    inv, scale = ours.rope_inv_freq()
    np.testing.assert_allclose(inv, ref_inv.numpy(), rtol=1e-6, atol=0)
    assert scale == pytest.approx(ref_scale, rel=1e-7)


def test_import_error_names_both_wheels(monkeypatch):
    import builtins

    from x2paddle_llm import _paddle

    real_import = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "paddle":
            raise ImportError("No module named 'paddle'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match="paddlepaddle.*paddlepaddle-gpu"):
        _paddle.require_paddle()
