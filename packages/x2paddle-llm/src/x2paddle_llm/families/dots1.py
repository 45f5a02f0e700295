"""dots.llm1 (rednote): Qwen3 attention (q/k norm per head) with DeepSeek-V3 routing."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register, window
from .deepseek_v2 import MLA_RENAMES
from .glm4_moe import v3_moe


def normalize(hf: HFConfig) -> DecoderConfig:
    fields = base_config(hf)
    layers = fields["num_hidden_layers"]
    moe, moe_layers = v3_moe(hf, layers)
    w = window(hf)
    types = hf.get("layer_types") or [
        "sliding_attention"
        if w and i >= hf.int("max_window_layers", default=layers, minimum=0)
        else "full_attention"
        for i in range(layers)
    ]
    bias = hf.bool("attention_bias")
    return DecoderConfig(
        **{
            **fields,
            "qk_norm": "head",
            "qkv_bias": bias,
            "o_bias": bias,
            "moe": moe,
            "moe_layers": moe_layers,
            "sliding_window": w,
            "layer_types": list(types),
        }
    )


register(
    Family(
        "dots1", "dots.llm1 (q/k norm, DeepSeek-V3-style routing)", normalize, renames=MLA_RENAMES
    )
)
