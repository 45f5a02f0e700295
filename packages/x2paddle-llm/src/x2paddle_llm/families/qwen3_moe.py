"""Qwen3-MoE: Qwen3 attention (q/k RMSNorm per head) with a softmax top-k mixture of experts."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register
from .qwen2 import qwen_layer_types
from .qwen2_moe import moe_layers


def normalize(hf: HFConfig) -> DecoderConfig:
    w, types = qwen_layer_types(hf)
    bias = hf.bool("attention_bias")
    moe = dict(
        num_experts=hf.int("num_experts", "num_local_experts"),
        top_k=hf.int("num_experts_per_tok"),
        moe_intermediate_size=hf.int("moe_intermediate_size"),
        scoring="softmax",
        norm_topk_prob=hf.bool("norm_topk_prob"),
    )
    return DecoderConfig(
        **base_config(
            hf,
            qk_norm="head",
            qkv_bias=bias,
            o_bias=bias,
            moe=moe,
            moe_layers=moe_layers(hf),
            sliding_window=w,
            layer_types=types,
        )
    )


register(Family("qwen3_moe", "Qwen3-MoE (q/k norm, sparse MoE)", normalize))
