"""GLM-4.5 / 4.6 (``glm4_moe``): partial rotary (rotate-half), optional q/k norm, DeepSeek-V3
routing (sigmoid, score bias, groups, scaling) with shared experts after dense first layers."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, partial_rotary, register
from .deepseek_v2 import MLA_RENAMES, moe_fields


def v3_moe(hf: HFConfig, layers: int) -> tuple[dict, list[bool]]:
    experts = hf.int("n_routed_experts", "num_experts")
    moe = moe_fields(hf, experts)
    moe.update(
        scoring="sigmoid",
        score_bias=True,
        norm_topk_prob=hf.bool("norm_topk_prob", True),
        norm_eps=1e-20,
        group_score="top2_sum",
    )
    first_dense = hf.int("first_k_dense_replace", default=0, minimum=0)
    return moe, [i >= first_dense for i in range(layers)]


def normalize(hf: HFConfig) -> DecoderConfig:
    fields = base_config(hf)
    moe, layers = v3_moe(hf, fields["num_hidden_layers"])
    bias = hf.bool("attention_bias")
    return DecoderConfig(
        **{
            **fields,
            "rotary_dim": partial_rotary(hf, fields["head_dim"], default=0.5),
            "qk_norm": "head" if hf.bool("use_qk_norm") else "",
            "qkv_bias": bias,
            "moe": moe,
            "moe_layers": layers,
        }
    )


register(
    Family(
        "glm4_moe",
        "GLM-4.5 / 4.6 (partial rotary, DeepSeek-V3-style routing)",
        normalize,
        renames=MLA_RENAMES,
    )
)
