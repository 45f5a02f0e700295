"""GPT-OSS (20B / 120B, bf16 checkpoints): attention sinks, q/k/v/o biases, alternating sliding
and full layers, YaRN; experts stored fused as ``[E, in, out]`` with gate and up interleaved
(split while streaming), a clamped SwiGLU, router with bias and softmax over the top-k."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError
from . import LLAMA_RENAMES, Family, base_config, register, sliding_layers, window


def normalize(hf: HFConfig) -> DecoderConfig:
    if hf.get("quantization_config") is not None:
        raise ConfigError(
            f"{hf.source}: quantized (MXFP4) GPT-OSS checkpoints are not supported; use a bf16 one"
        )
    w = window(hf)
    layers = hf.int("num_hidden_layers")
    inter = hf.int("intermediate_size")
    moe = dict(
        num_experts=hf.int("num_local_experts"),
        top_k=hf.int("num_experts_per_tok"),
        moe_intermediate_size=inter,
        scoring="softmax",
        norm_topk_prob=True,
        router_bias=True,
        expert_bias=True,
        swiglu_alpha=hf.float("swiglu_alpha", default=1.702),
        swiglu_limit=hf.float("swiglu_limit", default=7.0, positive=True),
    )
    bias = hf.bool("attention_bias", True)
    return DecoderConfig(
        **base_config(
            hf,
            attn_sinks=True,
            qkv_bias=bias,
            o_bias=bias,
            moe=moe,
            sliding_window=w,
            layer_types=sliding_layers(hf, layers, w),
        )
    )


def fused(cfg: DecoderConfig, name: str, shape):
    parts = name.split(".")  # layers.i.moe.experts.e.{gate,up,down}.{weight,bias}
    if len(parts) != 7 or parts[3] != "experts":
        return None
    i, e, proj, kind = parts[1], int(parts[4]), parts[5], parts[6]
    n, h, inter = cfg.moe["num_experts"], cfg.hidden_size, cfg.moe["moe_intermediate_size"]
    base = f"model.layers.{i}.mlp.experts."
    if proj == "down":
        if kind == "weight":
            return base + "down_proj", (n, inter, h), (e,), False
        return base + "down_proj_bias", (n, h), (e,), False
    cols = slice(0, None, 2) if proj == "gate" else slice(1, None, 2)
    if kind == "weight":
        return base + "gate_up_proj", (n, h, 2 * inter), (e, slice(None), cols), False
    return base + "gate_up_proj_bias", (n, 2 * inter), (e, cols), False


register(
    Family(
        "gpt_oss",
        "GPT-OSS (attention sinks, clamped SwiGLU experts, alternating sliding window)",
        normalize,
        renames={**LLAMA_RENAMES, "router": "router"},
        fused=fused,
    )
)
