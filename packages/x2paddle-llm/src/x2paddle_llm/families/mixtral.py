"""Mixtral: Mistral with a top-k softmax mixture of experts (``w1``/``w3``/``w2`` experts)."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import LLAMA_RENAMES, Family, base_config, register, window


def normalize(hf: HFConfig) -> DecoderConfig:
    w = window(hf)
    moe = dict(
        num_experts=hf.int("num_local_experts"),
        top_k=hf.int("num_experts_per_tok"),
        moe_intermediate_size=hf.int("intermediate_size"),
        scoring="softmax",
        norm_topk_prob=True,
    )
    return DecoderConfig(
        **base_config(
            hf,
            moe=moe,
            sliding_window=w,
            layer_types=["sliding_attention" if w else "full_attention"]
            * hf.int("num_hidden_layers"),
        )
    )


register(
    Family(
        "mixtral",
        "Mixtral (sparse MoE, sliding window)",
        normalize,
        renames={
            **LLAMA_RENAMES,
            "moe": "block_sparse_moe",
            "gate": "w1",
            "up": "w3",
            "down": "w2",
        },
    )
)
