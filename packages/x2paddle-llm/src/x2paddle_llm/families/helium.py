"""Helium (Kyutai): Llama block with interleaved rope."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register


def normalize(hf: HFConfig) -> DecoderConfig:
    bias = hf.bool("attention_bias")
    return DecoderConfig(
        **base_config(
            hf, rope_interleave=True, qkv_bias=bias, o_bias=bias, mlp_bias=hf.bool("mlp_bias")
        )
    )


register(Family("helium", "Helium (interleaved rope)", normalize))
