"""DeepSeek-V2 / V2-Lite: multi-head latent attention (MLA, compressed q and kv, a shared rope
key) and a softmax mixture of experts with shared experts, greedy or group-limited greedy
selection (group score = max), after ``first_k_dense_replace`` dense layers."""

from __future__ import annotations

import math

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError
from . import LLAMA_RENAMES, Family, base_config, register

MLA_RENAMES = {
    **LLAMA_RENAMES,
    "q_a": "q_a_proj",
    "q_a_norm": "q_a_layernorm",
    "q_b": "q_b_proj",
    "kv_a": "kv_a_proj_with_mqa",
    "kv_a_norm": "kv_a_layernorm",
    "kv_b": "kv_b_proj",
    "shared": "shared_experts",
    "score_bias": "e_score_correction_bias",
}


def mla_fields(hf: HFConfig) -> dict:
    """The MLA sizes, the softmax scale (YaRN ``mscale_all_dim`` squared, as DeepSeek does) and
    the MoE layer list."""
    q_rank = hf.get("q_lora_rank")
    mla = dict(
        q_lora_rank=0 if q_rank is None else hf.int("q_lora_rank"),
        kv_lora_rank=hf.int("kv_lora_rank"),
        qk_nope_head_dim=hf.int("qk_nope_head_dim"),
        qk_rope_head_dim=hf.int("qk_rope_head_dim"),
        v_head_dim=hf.int("v_head_dim"),
    )
    fields = base_config(hf)
    scale = (mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"]) ** -0.5
    rope = fields["rope"]
    if rope["type"] != "default" and rope["params"].get("mscale_all_dim"):
        factor = float(rope["params"]["factor"])
        m = (
            0.1 * float(rope["params"]["mscale_all_dim"]) * math.log(factor) + 1.0
            if factor > 1
            else 1.0
        )
        scale *= m * m
    layers = fields["num_hidden_layers"]
    first_dense = hf.int("first_k_dense_replace", default=0, minimum=0)
    freq = hf.int("moe_layer_freq", default=1)
    experts = hf.int("n_routed_experts", "num_experts", default=0, minimum=0)
    moe_layers = [bool(experts) and i >= first_dense and i % freq == 0 for i in range(layers)]
    bias = hf.bool("attention_bias")
    fields.update(
        mla=mla,
        attn_scale=scale,
        qkv_bias=bias,
        o_bias=bias,
        moe_layers=moe_layers,
        num_key_value_heads=fields["num_attention_heads"],
    )
    return fields


def moe_fields(hf: HFConfig, experts: int) -> dict:
    n_group = hf.int("n_group", default=1)
    if experts % n_group:
        raise ConfigError(
            f"{hf.source}: n_routed_experts {experts} not divisible by n_group {n_group}"
        )
    return dict(
        num_experts=experts,
        top_k=hf.int("num_experts_per_tok"),
        moe_intermediate_size=hf.int("moe_intermediate_size"),
        shared_intermediate_size=hf.int("moe_intermediate_size")
        * hf.int("n_shared_experts", default=0, minimum=0),
        routed_scaling_factor=hf.float("routed_scaling_factor", default=1.0),
        n_group=n_group,
        topk_group=hf.int("topk_group", default=1),
    )


def normalize(hf: HFConfig) -> DecoderConfig:
    fields = mla_fields(hf)
    experts = hf.int("n_routed_experts", "num_experts", default=0, minimum=0)
    if experts:
        method = hf.get("topk_method", "greedy")
        if method not in ("greedy", "group_limited_greedy"):
            raise ConfigError(
                f"{hf.source}: topk_method {method!r} is not supported (greedy, group_limited_greedy)"
            )
        moe = moe_fields(hf, experts)
        moe.update(scoring="softmax", norm_topk_prob=False, group_score="max")
        if method == "greedy":
            moe.update(n_group=1, topk_group=1)
        fields["moe"] = moe
    return DecoderConfig(**fields, rope_interleave=True)


register(
    Family(
        "deepseek_v2",
        "DeepSeek-V2 / V2-Lite (MLA, MoE with shared experts, group-limited routing)",
        normalize,
        renames=MLA_RENAMES,
    )
)
