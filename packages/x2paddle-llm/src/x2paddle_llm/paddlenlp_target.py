"""``--target paddlenlp``: a folder PaddleNLP 3.0.0b4 ``AutoModelForCausalLM`` loads.

PaddleNLP reads ``config.json`` with its own keys (``rope_theta`` at top level,
``rope_scaling_type`` / ``rope_scaling_factor`` for linear, a ``rope_scaling`` dict for
llama3) and state-dict names with the class's ``base_model_prefix`` instead of ``model``.
Linear weights are ``[in, out]`` like every Paddle Linear.
"""

from __future__ import annotations

from typing import Any

from .config import DecoderConfig
from .errors import UnsupportedArchitectureError

ARCHITECTURE_CLASS = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "mistral": "MistralForCausalLM",
}


def check_supported(cfg: DecoderConfig) -> None:
    if cfg.model_type not in ARCHITECTURE_CLASS:
        raise UnsupportedArchitectureError(
            f"--target paddlenlp: this package targets PaddleNLP 3.0.0b4 only for {sorted(ARCHITECTURE_CLASS)}, "
            f"not model_type {cfg.model_type!r}; use --target paddle"
        )
    allowed = {"llama": ("default", "linear", "llama3")}.get(cfg.model_type, ("default",))
    if cfg.rope["type"] not in allowed:
        raise UnsupportedArchitectureError(
            f"--target paddlenlp: PaddleNLP's {cfg.model_type} does not implement rope type {cfg.rope['type']!r} "
            f"the way transformers does (supported: {allowed}); use --target paddle"
        )
    if cfg.mlp_bias or cfg.o_bias or (cfg.qkv_bias and cfg.model_type != "qwen2"):
        raise UnsupportedArchitectureError(
            "--target paddlenlp: attention_bias / mlp_bias are not supported there"
        )
    if any(t == "sliding_attention" for t in cfg.layer_types):
        # Measured: PaddleNLP 3.0.0b4's Mistral ignores sliding_window (logits off by 0.72 with a
        # 4-token window on 10 tokens), so such a folder would be silently wrong past the window.
        raise UnsupportedArchitectureError(
            f"--target paddlenlp: PaddleNLP 3.0.0b4 does not apply sliding-window attention "
            f"(sliding_window={cfg.sliding_window}); its logits would be wrong past the window. Use --target paddle"
        )


def paddlenlp_config(cfg: DecoderConfig) -> dict[str, Any]:
    out: dict[str, Any] = {
        "architectures": [ARCHITECTURE_CLASS[cfg.model_type]],
        "model_type": cfg.model_type,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "max_position_embeddings": cfg.max_position_embeddings,
        "rms_norm_eps": cfg.norm_eps,
        "hidden_act": cfg.hidden_act,
        "rope_theta": cfg.rope["theta"],
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id[0]
        if len(cfg.eos_token_id) == 1
        else (cfg.eos_token_id or None),
        "pad_token_id": cfg.pad_token_id,
        "dtype": cfg.dtype,
        "use_cache": True,
    }
    if cfg.model_type == "mistral":
        out["sliding_window"] = cfg.sliding_window
        # PaddleNLP's Mistral builds nn.Embedding(padding_idx=pad_token_id), which returns zeros for
        # that token in the forward pass (transformers only uses padding_idx at init): a generated
        # pad token would then derail generation. The model never needs pad_token_id itself.
        out["pad_token_id"] = None
    if cfg.model_type == "qwen2":
        out["use_sliding_window"] = False
    if cfg.rope["type"] == "linear":
        out["rope_scaling_type"] = "linear"
        out["rope_scaling_factor"] = float(cfg.rope["params"]["factor"])
    elif cfg.rope["type"] == "llama3":
        out["rope_scaling"] = {"rope_type": "llama3", **cfg.rope["params"]}
    return out
