"""Qwen2-MoE / Qwen1.5-MoE: softmax top-k routing (renormalised when ``norm_topk_prob``), one
shared expert behind a sigmoid gate, dense layers where ``mlp_only_layers`` or
``decoder_sparse_step`` say so, bias on q/k/v."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register
from .qwen2 import qwen_layer_types


def moe_layers(hf: HFConfig) -> list[bool]:
    layers = hf.int("num_hidden_layers")
    step = hf.int("decoder_sparse_step", default=1)
    dense = hf.get("mlp_only_layers") or []
    if not isinstance(dense, list):
        dense = []
    return [i not in dense and (i + 1) % step == 0 for i in range(layers)]


def normalize(hf: HFConfig) -> DecoderConfig:
    w, types = qwen_layer_types(hf)
    moe = dict(
        num_experts=hf.int("num_experts", "num_local_experts"),
        top_k=hf.int("num_experts_per_tok"),
        moe_intermediate_size=hf.int("moe_intermediate_size"),
        scoring="softmax",
        norm_topk_prob=hf.bool("norm_topk_prob"),
        shared_intermediate_size=hf.int("shared_expert_intermediate_size", default=0, minimum=0),
        shared_gate=True,
    )
    return DecoderConfig(
        **base_config(
            hf,
            qkv_bias=hf.bool("qkv_bias", True),
            moe=moe,
            moe_layers=moe_layers(hf),
            sliding_window=w,
            layer_types=types,
        )
    )


register(Family("qwen2_moe", "Qwen2-MoE / Qwen1.5-MoE (shared expert with gate)", normalize))
