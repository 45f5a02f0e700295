"""Per-architecture name and layout tables: Hugging Face tensor -> Paddle tensor.

Hugging Face ``nn.Linear`` stores ``[out, in]``; ``paddle.nn.Linear`` stores ``[in, out]``, so
every projection weight is transposed.  Embeddings, norms and biases keep their layout.  The
only per-family differences are which optional tensors exist (biases, q/k norms, lm_head).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import DecoderConfig

#: tensors some checkpoints carry that are recomputed, never converted
IGNORED_PATTERNS = (re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$"),)

#: base_model_prefix of the PaddleNLP class for each model_type
PADDLENLP_PREFIX = {"llama": "llama", "qwen2": "qwen2", "mistral": "mistral"}


@dataclass(frozen=True)
class TensorSpec:
    hf_name: str
    shape: tuple[int, ...]  # as stored by Hugging Face
    transpose: bool


def expected_tensors(cfg: DecoderConfig) -> dict[str, TensorSpec]:
    """Every tensor a checkpoint of ``cfg`` must have, by Hugging Face name."""
    h, hd, inter = cfg.hidden_size, cfg.head_dim, cfg.intermediate_size
    q_out, kv_out = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    specs: list[TensorSpec] = [
        TensorSpec("model.embed_tokens.weight", (cfg.vocab_size, h), False),
        TensorSpec("model.norm.weight", (h,), False),
    ]
    if not cfg.tie_word_embeddings:
        specs.append(TensorSpec("lm_head.weight", (cfg.vocab_size, h), True))
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        specs += [
            TensorSpec(p + "input_layernorm.weight", (h,), False),
            TensorSpec(p + "post_attention_layernorm.weight", (h,), False),
            TensorSpec(p + "self_attn.q_proj.weight", (q_out, h), True),
            TensorSpec(p + "self_attn.k_proj.weight", (kv_out, h), True),
            TensorSpec(p + "self_attn.v_proj.weight", (kv_out, h), True),
            TensorSpec(p + "self_attn.o_proj.weight", (h, q_out), True),
            TensorSpec(p + "mlp.gate_proj.weight", (inter, h), True),
            TensorSpec(p + "mlp.up_proj.weight", (inter, h), True),
            TensorSpec(p + "mlp.down_proj.weight", (h, inter), True),
        ]
        if cfg.qkv_bias:
            specs += [
                TensorSpec(p + "self_attn.q_proj.bias", (q_out,), False),
                TensorSpec(p + "self_attn.k_proj.bias", (kv_out,), False),
                TensorSpec(p + "self_attn.v_proj.bias", (kv_out,), False),
            ]
        if cfg.o_bias:
            specs.append(TensorSpec(p + "self_attn.o_proj.bias", (h,), False))
        if cfg.mlp_bias:
            specs += [
                TensorSpec(p + "mlp.gate_proj.bias", (inter,), False),
                TensorSpec(p + "mlp.up_proj.bias", (inter,), False),
                TensorSpec(p + "mlp.down_proj.bias", (h,), False),
            ]
        if cfg.qk_norm:
            specs += [
                TensorSpec(p + "self_attn.q_norm.weight", (hd,), False),
                TensorSpec(p + "self_attn.k_norm.weight", (hd,), False),
            ]
    return {s.hf_name: s for s in specs}


def is_ignored(name: str, cfg: DecoderConfig) -> bool:
    if any(p.match(name) for p in IGNORED_PATTERNS):
        return True
    # Tied checkpoints sometimes still store lm_head.weight (a copy of the embedding).
    return cfg.tie_word_embeddings and name == "lm_head.weight"


def target_name(hf_name: str, cfg: DecoderConfig, target: str) -> str:
    """Paddle name of a tensor: the package's own model keeps HF names; PaddleNLP renames the base."""
    if target == "paddle":
        return hf_name
    if target == "paddlenlp":
        prefix = PADDLENLP_PREFIX[cfg.model_type]
        return prefix + hf_name[len("model"):] if hf_name.startswith("model.") else hf_name
    raise ValueError(f"unknown target {target!r}")
