"""GPT-NeoX / Pythia: fused ``query_key_value`` laid out per head (split while streaming),
parallel residual with two LayerNorms, partial rotary, plain GELU MLP."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, partial_rotary, register, split_qkv

RENAMES = {
    "embed": "gpt_neox.embed_in",
    "norm": "gpt_neox.final_layer_norm",
    "layers": "gpt_neox.layers",
    "attn_norm": "input_layernorm",
    "mlp_norm": "post_attention_layernorm",
    "attn": "attention",
    "o": "dense",
    "mlp": "mlp",
    "up": "dense_h_to_4h",
    "down": "dense_4h_to_h",
    "lm_head": "embed_out",
}


def normalize(hf: HFConfig) -> DecoderConfig:
    fields = base_config(hf, hidden_act=hf.act("hidden_act", default="gelu"))
    factor_key = "rotary_pct" if hf.has("rotary_pct") else "partial_rotary_factor"
    bias = hf.bool("attention_bias", True)
    return DecoderConfig(
        **{
            **fields,
            "rotary_dim": partial_rotary(hf, fields["head_dim"], factor_key, 0.25),
            "norm_type": "layer",
            "norm_bias": True,
            "norm_eps": hf.float("layer_norm_eps", default=1e-5),
            "parallel_block": hf.bool("use_parallel_residual", True),
            "qkv_bias": bias,
            "o_bias": bias,
            "mlp_gated": False,
            "mlp_bias": True,
        }
    )


def fused(cfg: DecoderConfig, name: str, shape):
    return split_qkv(
        cfg, name, shape, "gpt_neox.layers.{i}.attention.query_key_value", layout="per_head"
    )


register(
    Family(
        "gpt_neox",
        "GPT-NeoX / Pythia (fused per-head qkv, parallel residual, partial rotary)",
        normalize,
        renames=RENAMES,
        fused=fused,
    )
)
