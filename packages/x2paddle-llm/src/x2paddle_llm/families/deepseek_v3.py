"""DeepSeek-V3 / R1 (and Kimi-K2-style configs): MLA, sigmoid routing with a selection-only
score bias, group-limited top-k (group score = sum of its two best), renormalised weights times
``routed_scaling_factor``, shared experts, dense first layers."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, register
from .deepseek_v2 import MLA_RENAMES, mla_fields, moe_fields


def normalize(hf: HFConfig) -> DecoderConfig:
    fields = mla_fields(hf)
    experts = hf.int("n_routed_experts", "num_experts", default=0, minimum=0)
    if experts:
        moe = moe_fields(hf, experts)
        moe.update(
            scoring="sigmoid",
            score_bias=True,
            norm_topk_prob=hf.bool("norm_topk_prob", True),
            norm_eps=1e-20,
            group_score="top2_sum",
        )
        fields["moe"] = moe
    return DecoderConfig(**fields, rope_interleave=hf.bool("rope_interleave", True))


register(
    Family(
        "deepseek_v3",
        "DeepSeek-V3 / R1 (MLA, sigmoid routing with score bias, groups)",
        normalize,
        renames=MLA_RENAMES,
    )
)
