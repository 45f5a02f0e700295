"""Falcon (7B-style multi-query with parallel attention, and the grouped "new decoder
architecture" of 40B/180B): fused ``query_key_value`` split while streaming, LayerNorm, plain
GELU MLP.  ALiBi variants are refused."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError
from . import Family, base_config, register, split_qkv

RENAMES = {
    "embed": "transformer.word_embeddings",
    "norm": "transformer.ln_f",
    "layers": "transformer.h",
    "attn_norm": "input_layernorm",
    "mlp_norm": "post_attention_layernorm",
    "attn": "self_attention",
    "o": "dense",
    "mlp": "mlp",
    "up": "dense_h_to_4h",
    "down": "dense_4h_to_h",
}


def _layout(hf: HFConfig) -> str:
    if hf.bool("new_decoder_architecture"):
        return "grouped"
    return "concat" if hf.bool("multi_query", True) else "per_head"


def normalize(hf: HFConfig) -> DecoderConfig:
    if hf.bool("alibi"):
        raise ConfigError(f"{hf.source}: ALiBi Falcon variants are not supported")
    heads = hf.int("num_attention_heads", "n_head")
    layout = _layout(hf)
    kv = {"grouped": hf.int("num_kv_heads", default=heads), "concat": 1, "per_head": heads}[layout]
    bias = hf.bool("bias")
    parallel = hf.bool("parallel_attn", True)
    two_norms = layout == "grouped" and hf.int("num_ln_in_parallel_attn", default=2) == 2
    norms = ["attn_norm", "mlp_norm"] if (two_norms or not parallel) else ["attn_norm"]
    hidden = hf.int("hidden_size")
    fields = base_config(hf, hidden_act=hf.act("activation", default="gelu"))
    return DecoderConfig(
        **{
            **fields,
            "num_key_value_heads": kv,
            "intermediate_size": hf.int("ffn_hidden_size", default=4 * hidden),
            "norm_type": "layer",
            "norm_bias": True,
            "norm_eps": hf.float("layer_norm_epsilon", default=1e-5),
            "layer_norms": norms,
            "parallel_block": parallel or layout == "grouped",
            "qkv_bias": bias,
            "o_bias": bias,
            "mlp_gated": False,
            "mlp_bias": bias,
            "source_layout": {"qkv": layout, "split_norms": two_norms},
            "tie_word_embeddings": hf.bool("tie_word_embeddings", True),
        }
    )


def fused(cfg: DecoderConfig, name: str, shape):
    layout = cfg.source_layout.get("qkv", "concat")
    parts = name.split(".")
    if (
        cfg.source_layout.get("split_norms")
        and len(parts) == 4
        and parts[2] in ("attn_norm", "mlp_norm")
    ):
        hf = {"attn_norm": "ln_attn", "mlp_norm": "ln_mlp"}[parts[2]]
        return f"transformer.h.{parts[1]}.{hf}.{parts[3]}", tuple(shape), None, False
    return split_qkv(
        cfg, name, shape, "transformer.h.{i}.self_attention.query_key_value", layout=layout
    )


register(
    Family(
        "falcon",
        "Falcon (multi-query or grouped fused qkv, parallel attention)",
        normalize,
        renames=RENAMES,
        fused=fused,
    )
)
