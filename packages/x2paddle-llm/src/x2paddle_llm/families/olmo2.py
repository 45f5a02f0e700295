"""OLMo 2: norms after attention and MLP (no pre-norm), RMSNorm over the whole q and k."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import LLAMA_RENAMES, Family, base_config, register


def normalize(hf: HFConfig) -> DecoderConfig:
    bias = hf.bool("attention_bias")
    return DecoderConfig(
        **base_config(
            hf,
            layer_norms=["post_attn_norm", "post_mlp_norm"],
            qk_norm="full",
            qkv_bias=bias,
            o_bias=bias,
        )
    )


register(
    Family(
        "olmo2",
        "OLMo 2 (post-norm, q/k norm over all heads)",
        normalize,
        renames={
            **LLAMA_RENAMES,
            "post_attn_norm": "post_attention_layernorm",
            "post_mlp_norm": "post_feedforward_layernorm",
        },
    )
)
