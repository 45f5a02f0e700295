"""Granite 3.x: Llama with embedding, residual, attention and logits multipliers."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register


def granite_fields(hf: HFConfig) -> dict:
    bias = hf.bool("attention_bias")
    return dict(
        embed_scale=hf.float("embedding_multiplier", default=1.0),
        residual_scale=hf.float("residual_multiplier", default=1.0),
        attn_scale=hf.float("attention_multiplier", default=0.0),
        logits_scale=1.0 / hf.float("logits_scaling", default=1.0, positive=True),
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=hf.bool("mlp_bias"),
    )


def normalize(hf: HFConfig) -> DecoderConfig:
    return DecoderConfig(**base_config(hf, **granite_fields(hf)))


register(
    Family("granite", "Granite 3.x (embedding/residual/attention/logit multipliers)", normalize)
)
