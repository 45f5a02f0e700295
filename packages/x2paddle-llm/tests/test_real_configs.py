"""Real-size configs: tensor names and shapes against transformers' own models on ``meta``.

Two sources of real-size configs: five published ``config.json`` files in the transformers 4.x
layout (below), and, for every family, the default configuration of its transformers class,
which is its flagship checkpoint's (Llama-2-7B, Mixtral-8x7B, DeepSeek-V3, ERNIE-4.5-21B-A3B,
Phi-3-mini, ...) with the layer count cut to keep the test fast (every layer kind kept).
transformers builds the model on the ``meta`` device (no memory); the tensors it would save
(its state dict turned back into the checkpoint layout by its own ``revert_weight_conversion``)
must be exactly the ones the converter expects, by name and shape.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers.core_model_loading import revert_weight_conversion

from x2paddle_llm import normalize_hf_config
from x2paddle_llm.families import get_family, supported
from x2paddle_llm.schema import expected_tensors

REAL = {
    "Llama-2-7b": {
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "max_position_embeddings": 4096,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 32,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "vocab_size": 32000,
    },
    "Llama-3.2-1B": {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "head_dim": 64,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "max_position_embeddings": 131072,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 16,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "vocab_size": 128256,
    },
    "Mistral-7B-v0.1": {
        "architectures": ["MistralForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
        "model_type": "mistral",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 32000,
    },
    "Qwen2.5-0.5B": {
        "architectures": ["Qwen2ForCausalLM"],
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "hidden_act": "silu",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "max_position_embeddings": 32768,
        "max_window_layers": 21,
        "model_type": "qwen2",
        "num_attention_heads": 14,
        "num_hidden_layers": 24,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_sliding_window": False,
        "vocab_size": 151936,
    },
    "Qwen3-0.6B": {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "head_dim": 128,
        "hidden_act": "silu",
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "max_position_embeddings": 40960,
        "max_window_layers": 28,
        "model_type": "qwen3",
        "num_attention_heads": 16,
        "num_hidden_layers": 28,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_sliding_window": False,
        "vocab_size": 151936,
    },
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_expected_tensors_match_transformers_state_dict(name):
    raw = dict(REAL[name])
    hf_cfg = transformers.AutoConfig.for_model(raw.pop("model_type"), **raw)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(hf_cfg)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ours = normalize_hf_config(REAL[name])
    expected = {s.hf_name: s.hf_shape for s in expected_tensors(ours).values()}
    if ours.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # tied: not saved by save_pretrained
    assert expected == state

    params = hf_cfg.rope_parameters
    assert ours.rope["theta"] == params["rope_theta"] and ours.rope["type"] == params["rope_type"]
    assert ours.head_dim == getattr(
        hf_cfg, "head_dim", hf_cfg.hidden_size // hf_cfg.num_attention_heads
    )
    hf_layer_types = getattr(hf_cfg, "layer_types", None)
    if hf_layer_types:
        assert ours.layer_types == list(hf_layer_types)
    assert ours.sliding_window == (
        getattr(hf_cfg, "sliding_window", None) if "sliding_attention" in ours.layer_types else None
    )


def _layers_to_keep(raw: dict) -> int:
    first_dense = raw.get("first_k_dense_replace") or 0
    start = raw.get("moe_layer_start_index") or 0
    return max(2, first_dense + 2, start + 2, len(set(raw.get("layer_types") or [])) + 1)


@pytest.mark.parametrize("model_type", sorted(supported()))
def test_flagship_config_names_and_shapes(model_type):
    hf_cfg = transformers.AutoConfig.for_model(model_type)
    raw = hf_cfg.to_dict()
    layers = _layers_to_keep(raw)
    key = "n_layer" if "n_layer" in raw else "num_hidden_layers"
    raw[key] = layers
    if raw.get("layer_types"):
        raw["layer_types"] = raw["layer_types"][:layers]
    if raw.get("moe_layer_end_index") not in (None, -1):
        raw["moe_layer_end_index"] = layers - 1
    raw.pop("transformers_version", None)
    if "n_routed_experts" in raw and not raw.get(
        "n_routed_experts"
    ):  # classes without expert defaults
        raw.update(n_routed_experts=64, num_experts_per_tok=6, n_shared_experts=2)
    if raw.get("n_routed_experts") and not raw.get(
        "num_experts_per_tok"
    ):  # DeepSeek-V2's published value
        raw["num_experts_per_tok"] = 6
    if (
        model_type == "glm4_moe"
    ):  # the class default leaves head_dim to 4096 // 96; GLM-4.5 publishes 128
        raw["head_dim"] = 128
    hf_cfg = transformers.AutoConfig.for_model(
        model_type, **{k: v for k, v in raw.items() if k != "model_type"}
    )
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(hf_cfg)
    saved = revert_weight_conversion(model, model.state_dict())
    ours = normalize_hf_config(raw)
    family = get_family(model_type)
    state = {k: tuple(v.shape) for k, v in saved.items() if not family.is_ignored(k, ours)}
    expected = {s.hf_name: s.hf_shape for s in expected_tensors(ours).values()}
    assert sorted(set(expected) - set(state)) == [] and sorted(set(state) - set(expected)) == []
    assert expected == state
