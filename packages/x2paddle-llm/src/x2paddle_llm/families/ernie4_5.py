"""ERNIE 4.5 (dense, e.g. ERNIE-4.5-0.3B): Llama block with GLM-style interleaved rope and one
``use_bias`` switch for every projection."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register


def ernie_fields(hf: HFConfig) -> dict:
    bias = hf.bool("use_bias")
    return dict(qkv_bias=bias, o_bias=bias, mlp_bias=bias, rope_interleave=True)


def normalize(hf: HFConfig) -> DecoderConfig:
    return DecoderConfig(**base_config(hf, **ernie_fields(hf)))


register(Family("ernie4_5", "ERNIE 4.5 dense (interleaved rope)", normalize))
