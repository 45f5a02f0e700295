"""Arcee (AFM): Llama attention with a plain ReLU² MLP (``up``/``down``, no gate)."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register


def normalize(hf: HFConfig) -> DecoderConfig:
    bias = hf.bool("attention_bias")
    return DecoderConfig(
        **base_config(
            hf,
            hidden_act=hf.act("hidden_act", default="relu2"),
            mlp_gated=False,
            qkv_bias=bias,
            o_bias=bias,
            mlp_bias=hf.bool("mlp_bias"),
        )
    )


register(Family("arcee", "Arcee AFM (plain ReLU² MLP)", normalize))
