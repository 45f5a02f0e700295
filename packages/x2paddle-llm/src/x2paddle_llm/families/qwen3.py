"""Qwen3: RMSNorm on q and k per head before rope; head_dim defaults to 128."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register
from .qwen2 import qwen_layer_types


def normalize(hf: HFConfig) -> DecoderConfig:
    w, types = qwen_layer_types(hf)
    bias = hf.bool("attention_bias")
    return DecoderConfig(
        **base_config(
            hf,
            head_dim=hf.int("head_dim", default=128),
            qk_norm="head",
            qkv_bias=bias,
            o_bias=bias,
            sliding_window=w,
            layer_types=types,
        )
    )


register(Family("qwen3", "Qwen3 (RMSNorm on q and k per head)", normalize))
