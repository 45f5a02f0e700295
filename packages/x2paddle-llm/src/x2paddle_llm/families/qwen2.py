"""Qwen2 / Qwen2.5: bias on q/k/v; optional sliding window on layers past ``max_window_layers``."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register, window


def qwen_layer_types(hf: HFConfig) -> tuple[int | None, list[str]]:
    layers = hf.int("num_hidden_layers")
    w = window(hf) if hf.bool("use_sliding_window") else None
    types = hf.get("layer_types")
    if types is None:
        start = hf.int("max_window_layers", default=layers, minimum=0)
        types = [
            "sliding_attention" if w and i >= start else "full_attention" for i in range(layers)
        ]
    elif not w:
        types = ["full_attention"] * len(types) if isinstance(types, list) else types
    return w, list(types)


def normalize(hf: HFConfig) -> DecoderConfig:
    w, types = qwen_layer_types(hf)
    return DecoderConfig(**base_config(hf, qkv_bias=True, sliding_window=w, layer_types=types))


register(
    Family(
        "qwen2", "Qwen2 / Qwen2.5 (bias on q/k/v projections)", normalize, paddlenlp_prefix="qwen2"
    )
)
