"""ERNIE 4.5 MoE (e.g. ERNIE-4.5-21B-A3B): softmax routing whose top-k choice adds a score
bias (``moe_statics``), renormalised; shared experts; MoE on layers from
``moe_layer_start_index`` to ``moe_layer_end_index`` every ``moe_layer_interval``."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import LLAMA_RENAMES, Family, base_config, register
from .ernie4_5 import ernie_fields


def normalize(hf: HFConfig) -> DecoderConfig:
    layers = hf.int("num_hidden_layers")
    start = hf.int("moe_layer_start_index", default=1, minimum=0)
    end = hf.get("moe_layer_end_index", -1)
    end = layers - 1 if end == -1 else hf.int("moe_layer_end_index", minimum=0)
    interval = hf.int("moe_layer_interval", default=1)
    inter = hf.int("moe_intermediate_size")
    moe = dict(
        num_experts=hf.int("moe_num_experts", "num_experts"),
        top_k=hf.int("moe_k", "num_experts_per_tok"),
        moe_intermediate_size=inter,
        scoring="softmax",
        norm_topk_prob=True,
        score_bias=True,
        shared_intermediate_size=inter * hf.int("moe_num_shared_experts", default=0, minimum=0),
    )
    moe_layers = [(i + 1) % interval == 0 and start <= i <= end for i in range(layers)]
    return DecoderConfig(**base_config(hf, moe=moe, moe_layers=moe_layers, **ernie_fields(hf)))


def fused(cfg: DecoderConfig, name: str, shape):
    if name.endswith("router.score_bias"):  # stored as [1, num_experts]
        layer = name.split(".")[1]
        return (
            f"model.layers.{layer}.mlp.moe_statics.e_score_correction_bias",
            (1, shape[0]),
            (0, slice(None)),
            False,
        )
    return None


register(
    Family(
        "ernie4_5_moe",
        "ERNIE 4.5 MoE (score-bias routing, shared experts)",
        normalize,
        renames={**LLAMA_RENAMES, "shared": "shared_experts"},
        fused=fused,
    )
)
