"""Real-size configs in the layouts published checkpoints use (transformers 4.x config.json).

For each, transformers 5 builds the model on the ``meta`` device (no memory); the tensor names
and shapes it would save must be exactly what the converter expects, and our normalised
rope/attention settings must equal what transformers derived from the same file.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from x2paddle_llm import normalize_hf_config
from x2paddle_llm.mapping import expected_tensors

REAL = {
    "Llama-2-7b": {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
                   "hidden_size": 4096, "intermediate_size": 11008, "max_position_embeddings": 4096,
                   "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
                   "num_key_value_heads": 32, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
                   "tie_word_embeddings": False, "torch_dtype": "float16", "vocab_size": 32000},
    "Llama-3.2-1B": {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 128000,
                     "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
                     "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": False,
                     "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16,
                     "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
                     "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                      "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                     "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
                     "vocab_size": 128256},
    "Mistral-7B-v0.1": {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
                        "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
                        "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
                        "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
                        "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": False,
                        "torch_dtype": "bfloat16", "vocab_size": 32000},
    "Qwen2.5-0.5B": {"architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151645,
                     "hidden_act": "silu", "hidden_size": 896, "intermediate_size": 4864,
                     "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2",
                     "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
                     "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
                     "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_sliding_window": False,
                     "vocab_size": 151936},
    "Qwen3-0.6B": {"architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "bos_token_id": 151643,
                   "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024,
                   "intermediate_size": 3072, "max_position_embeddings": 40960, "max_window_layers": 28,
                   "model_type": "qwen3", "num_attention_heads": 16, "num_hidden_layers": 28,
                   "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000,
                   "sliding_window": None, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
                   "use_sliding_window": False, "vocab_size": 151936},
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_expected_tensors_match_transformers_state_dict(name):
    raw = dict(REAL[name])
    hf_cfg = transformers.AutoConfig.for_model(raw.pop("model_type"), **raw)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(hf_cfg)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ours = normalize_hf_config(REAL[name])
    expected = {k: s.shape for k, s in expected_tensors(ours).items()}
    if ours.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # tied: not saved by save_pretrained
    assert expected == state

    params = hf_cfg.rope_parameters
    assert ours.rope_theta == params["rope_theta"] and ours.rope_type == params["rope_type"]
    assert ours.head_dim == getattr(hf_cfg, "head_dim", hf_cfg.hidden_size // hf_cfg.num_attention_heads)
    hf_layer_types = getattr(hf_cfg, "layer_types", None)
    if hf_layer_types:
        assert ours.layer_types == list(hf_layer_types)
    assert ours.sliding_window == (getattr(hf_cfg, "sliding_window", None) if "sliding_attention" in ours.layer_types else None)
