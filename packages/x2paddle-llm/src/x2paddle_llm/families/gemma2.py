"""Gemma 2: Gemma plus norms after attention and MLP, attention and final logit soft-capping,
``query_pre_attn_scalar`` and sliding-window layers alternating with global ones."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import LLAMA_RENAMES, Family, base_config, register, sliding_layers, window
from .gemma import gemma_fields

GEMMA2_RENAMES = {
    **LLAMA_RENAMES,
    "post_attn_norm": "post_attention_layernorm",
    "mlp_norm": "pre_feedforward_layernorm",
    "post_mlp_norm": "post_feedforward_layernorm",
}
SANDWICH = ["attn_norm", "post_attn_norm", "mlp_norm", "post_mlp_norm"]


def sandwich_fields(hf: HFConfig) -> dict:
    w = window(hf)
    layers = hf.int("num_hidden_layers")
    bias = hf.bool("attention_bias")
    return dict(
        layer_norms=SANDWICH,
        sliding_window=w,
        layer_types=sliding_layers(hf, layers, w),
        attn_scale=hf.float("query_pre_attn_scalar", positive=True) ** -0.5,
        attn_softcap=hf.float("attn_logit_softcapping", default=0.0),
        final_softcap=hf.float("final_logit_softcapping", default=0.0),
        qkv_bias=bias,
        o_bias=bias,
        **gemma_fields(hf),
    )


def normalize(hf: HFConfig) -> DecoderConfig:
    return DecoderConfig(**base_config(hf, **sandwich_fields(hf)))


register(
    Family(
        "gemma2",
        "Gemma 2 (sandwich norms, soft-capping, alternating sliding window)",
        normalize,
        renames=GEMMA2_RENAMES,
    )
)
