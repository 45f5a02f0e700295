"""Mistral: Llama with sliding-window attention on every layer."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, register, window


def normalize(hf: HFConfig) -> DecoderConfig:
    w = window(hf)
    return DecoderConfig(
        **base_config(
            hf,
            sliding_window=w,
            layer_types=["sliding_attention" if w else "full_attention"]
            * hf.int("num_hidden_layers"),
        )
    )


register(
    Family("mistral", "Mistral (sliding-window attention)", normalize, paddlenlp_prefix="mistral")
)
