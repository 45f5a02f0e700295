"""Phi-3 / Phi-3.5 / Phi-4(-mini): fused ``qkv_proj`` and ``gate_up_proj`` (split while
streaming), ``longrope`` scaling, optional partial rotary and sliding window."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, partial_rotary, register, split_gate_up, split_qkv, window


def normalize(hf: HFConfig) -> DecoderConfig:
    fields = base_config(hf)
    w = window(hf)
    return DecoderConfig(
        **{
            **fields,
            "rotary_dim": partial_rotary(hf, fields["head_dim"]),
            "sliding_window": w,
            "layer_types": ["sliding_attention" if w else "full_attention"]
            * fields["num_hidden_layers"],
        }
    )


def fused(cfg: DecoderConfig, name: str, shape):
    return split_qkv(cfg, name, shape, "model.layers.{i}.self_attn.qkv_proj") or split_gate_up(
        cfg, name, shape, "model.layers.{i}.mlp.gate_up_proj"
    )


register(
    Family(
        "phi3",
        "Phi-3 / Phi-3.5 / Phi-4-mini (fused qkv and gate_up, longrope)",
        normalize,
        fused=fused,
    )
)
