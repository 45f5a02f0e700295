"""Gemma: RMSNorm scaled by ``(1 + w)``, embeddings times ``sqrt(hidden_size)``, GeGLU (tanh),
tied head, head_dim 256."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register


def gemma_fields(hf: HFConfig) -> dict:
    hidden = hf.int("hidden_size")
    return dict(
        norm_unit_offset=True,
        embed_scale=float(hidden) ** 0.5,
        hidden_act=hf.act("hidden_activation", "hidden_act", default="gelu_pytorch_tanh"),
        tie_word_embeddings=hf.bool("tie_word_embeddings", True),
    )


def normalize(hf: HFConfig) -> DecoderConfig:
    bias = hf.bool("attention_bias")
    return DecoderConfig(**base_config(hf, qkv_bias=bias, o_bias=bias, **gemma_fields(hf)))


register(Family("gemma", "Gemma (1 + w norms, scaled embeddings, GeGLU)", normalize))
