"""Llama 2 / 3 / 3.1 / 3.2: the reference block (RMSNorm, GQA, gated SiLU MLP, rope scaling)."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register


def normalize(hf: HFConfig) -> DecoderConfig:
    bias = hf.bool("attention_bias")
    return DecoderConfig(
        **base_config(hf, qkv_bias=bias, o_bias=bias, mlp_bias=hf.bool("mlp_bias"))
    )


register(
    Family(
        "llama",
        "Llama 2 / 3 / 3.1 / 3.2 (rope scaling llama3, linear, dynamic, yarn)",
        normalize,
        paddlenlp_prefix="llama",
    )
)
