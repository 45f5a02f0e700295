"""MiniCPM3: DeepSeek-V2's multi-head latent attention (with rotate-half rope, not interleaved)
and a dense gated MLP, with MiniCPM's scalings: embeddings times ``scale_emb``, every residual
branch times ``scale_depth / sqrt(num_hidden_layers)``, hidden states divided by
``hidden_size / dim_model_base`` before the head (here: the logits, the head has no bias)."""

from __future__ import annotations

import math

from ..config import DecoderConfig, HFConfig
from . import Family, register
from .deepseek_v2 import MLA_RENAMES, mla_fields


def _value(hf: HFConfig, key: str, absent: float, null: float) -> float:
    """transformers' MiniCPM3Config: a missing key takes the class default (MiniCPM3-4B's value),
    an explicit null a neutral value."""
    if key not in hf.raw:
        return absent
    return null if hf.raw[key] is None else hf.float(key, positive=True)


def normalize(hf: HFConfig) -> DecoderConfig:
    hidden = hf.int("hidden_size")
    heads = hf.int("num_attention_heads")
    layers = hf.int("num_hidden_layers")
    if hf.get("v_head_dim") is None:  # transformers: hidden_size // num_attention_heads
        hf = HFConfig({**hf.raw, "v_head_dim": hidden // heads}, hf.source)
    fields = mla_fields(hf)
    # transformers builds the q and kv latent norms with RMSNorm's default eps, not rms_norm_eps
    fields["mla"]["latent_norm_eps"] = 1e-6
    scale_depth = _value(hf, "scale_depth", 1.4, math.sqrt(layers))
    dim_model_base = _value(hf, "dim_model_base", 256.0, float(hidden))
    fields.update(
        embed_scale=hf.float("scale_emb", default=12.0),
        residual_scale=scale_depth / math.sqrt(layers),
        logits_scale=dim_model_base / hidden,
        tie_word_embeddings=hf.bool("tie_word_embeddings", True),
        mlp_bias=hf.bool("mlp_bias"),
    )
    return DecoderConfig(**fields, rope_interleave=False)


register(
    Family(
        "minicpm3",
        "MiniCPM3 (MLA with a dense MLP, embedding / residual / logit scaling)",
        normalize,
        renames=MLA_RENAMES,
    )
)
