"""GPT-2 (and DistilGPT-2): learned positions, LayerNorm with bias, fused ``c_attn`` stored as
``Conv1D`` (already ``[in, out]``: split by columns, not transposed), plain GELU MLP."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError
from . import Family, base_config, register

RENAMES = {
    "embed": "transformer.wte",
    "pos_embed": "transformer.wpe",
    "norm": "transformer.ln_f",
    "layers": "transformer.h",
    "attn_norm": "ln_1",
    "mlp_norm": "ln_2",
    "attn": "attn",
    "o": "c_proj",
    "mlp": "mlp",
    "up": "c_fc",
    "down": "c_proj",
}


def normalize(hf: HFConfig) -> DecoderConfig:
    if hf.bool("scale_attn_by_inverse_layer_idx") or hf.bool("reorder_and_upcast_attn"):
        raise ConfigError(
            f"{hf.source}: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported"
        )
    hidden = hf.int("n_embd", "hidden_size")
    fields = base_config(
        hf,
        hidden_act=hf.act("activation_function", default="gelu_new"),
        rope={"theta": 10000.0, "type": "default", "params": {}},
        rope_per_layer_type={},
    )
    return DecoderConfig(
        **{
            **fields,
            "intermediate_size": hf.int("n_inner", default=4 * hidden),
            "norm_type": "layer",
            "norm_bias": True,
            "norm_eps": hf.float("layer_norm_epsilon", default=1e-5),
            "learned_positions": True,
            "qkv_bias": True,
            "o_bias": True,
            "mlp_gated": False,
            "mlp_bias": True,
            "attn_scale": 0.0 if hf.bool("scale_attn_weights", True) else 1.0,
            "tie_word_embeddings": hf.bool("tie_word_embeddings", True),
        }
    )


def fused(cfg: DecoderConfig, name: str, shape):
    parts = name.split(".")
    if len(parts) == 5 and parts[2] == "attn" and parts[3] in ("q", "k", "v"):
        h = cfg.hidden_size
        start = "qkv".index(parts[3]) * h
        cols = slice(start, start + h)
        if parts[4] == "weight":  # Conv1D: [in, 3 * hidden]
            return (
                f"transformer.h.{parts[1]}.attn.c_attn.weight",
                (h, 3 * h),
                (slice(None), cols),
                False,
            )
        return f"transformer.h.{parts[1]}.attn.c_attn.bias", (3 * h,), (cols,), False
    if name.endswith(".weight") and len(parts) == 5 and parts[3] in ("o", "up", "down"):
        return Family.hf_name(FAMILY, name), tuple(shape), None, False  # Conv1D keeps [in, out]
    return None


FAMILY = register(
    Family(
        "gpt2",
        "GPT-2 (learned positions, Conv1D fused c_attn)",
        normalize,
        renames=RENAMES,
        fused=fused,
    )
)
