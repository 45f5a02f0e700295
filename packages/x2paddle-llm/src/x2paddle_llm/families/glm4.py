"""GLM-4-0414 (``glm4``): GLM with extra norms after attention and after the MLP."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import LLAMA_RENAMES, Family, register
from .glm import fused, glm_fields


def normalize(hf: HFConfig) -> DecoderConfig:
    return DecoderConfig(
        **glm_fields(hf), layer_norms=["attn_norm", "post_attn_norm", "mlp_norm", "post_mlp_norm"]
    )


register(
    Family(
        "glm4",
        "GLM-4-0414 (sandwich norms, fused gate_up, interleaved partial rotary)",
        normalize,
        renames={
            **LLAMA_RENAMES,
            "post_attn_norm": "post_self_attn_layernorm",
            "post_mlp_norm": "post_mlp_layernorm",
        },
        fused=fused,
    )
)
