"""Seed-OSS (ByteDance): Llama block with separate switches for q/k/v and output biases."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register


def normalize(hf: HFConfig) -> DecoderConfig:
    return DecoderConfig(
        **base_config(
            hf,
            qkv_bias=hf.bool("attention_bias", True),
            o_bias=hf.bool("attention_out_bias"),
            mlp_bias=hf.bool("mlp_bias"),
        )
    )


register(Family("seed_oss", "Seed-OSS (q/k/v bias)", normalize))
