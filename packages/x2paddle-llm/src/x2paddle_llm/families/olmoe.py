"""OLMoE: RMSNorm over the whole q and k projections, softmax top-k routing."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError
from . import Family, base_config, register


def normalize(hf: HFConfig) -> DecoderConfig:
    if hf.get("clip_qkv") is not None:
        raise ConfigError(f"{hf.source}: clip_qkv is not supported")
    moe = dict(
        num_experts=hf.int("num_experts", "num_local_experts"),
        top_k=hf.int("num_experts_per_tok"),
        moe_intermediate_size=hf.int("intermediate_size"),
        scoring="softmax",
        norm_topk_prob=hf.bool("norm_topk_prob"),
    )
    bias = hf.bool("attention_bias")
    return DecoderConfig(**base_config(hf, qk_norm="full", qkv_bias=bias, o_bias=bias, moe=moe))


register(Family("olmoe", "OLMoE (q/k norm over all heads, sparse MoE)", normalize))
