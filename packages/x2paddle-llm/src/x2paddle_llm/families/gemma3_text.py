"""Gemma 3 text (``Gemma3ForCausalLM``: 270M / 1B, and the text tower's config): Gemma 2's
block with q/k norms per head and a separate rope per layer type (local base for sliding
layers, possibly scaled for global ones)."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register
from .gemma2 import GEMMA2_RENAMES, sandwich_fields


def normalize(hf: HFConfig) -> DecoderConfig:
    fields = sandwich_fields(hf)
    cfg = base_config(hf, qk_norm="head", **fields)
    if not cfg["rope_per_layer_type"] and hf.has("rope_local_base_freq"):  # transformers 4.x layout
        cfg["rope_per_layer_type"] = {
            "full_attention": cfg["rope"],
            "sliding_attention": {
                "theta": hf.float("rope_local_base_freq", positive=True),
                "type": "default",
                "params": {},
            },
        }
    return DecoderConfig(**cfg)


register(
    Family(
        "gemma3_text",
        "Gemma 3 text (q/k norm, per-layer-type rope)",
        normalize,
        renames=GEMMA2_RENAMES,
    )
)
