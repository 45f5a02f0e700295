"""OLMo (1, 1.7): LayerNorm without weight or bias."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError
from . import Family, base_config, register


def normalize(hf: HFConfig) -> DecoderConfig:
    if hf.get("clip_qkv") is not None:
        raise ConfigError(f"{hf.source}: clip_qkv is not supported")
    bias = hf.bool("attention_bias")
    return DecoderConfig(
        **base_config(hf, norm_type="layer_noparam", norm_eps=1e-5, qkv_bias=bias, o_bias=bias)
    )


register(Family("olmo", "OLMo (non-parametric LayerNorm)", normalize))
