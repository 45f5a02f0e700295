"""Rotary position embedding parameters: normalising ``config.json`` and inverse frequencies.

transformers 4.x writes ``rope_theta`` + ``rope_scaling``; 5.x writes ``rope_parameters``, which
may also be nested per layer type (Gemma 3: ``full_attention`` / ``sliding_attention``).  A
top-level ``original_max_position_embeddings`` takes priority over the one inside the scaling
dict for ``llama3`` / ``yarn`` / ``longrope``, as transformers does (Phi-3, DeepSeek-V3, YaRN
Qwen2 checkpoints carry it there).  Everything here is numpy: conversion needs no Paddle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import ConfigError

SUPPORTED_ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3", "longrope")
_REQUIRED = {
    "linear": ["factor"],
    "dynamic": ["factor"],
    "yarn": ["original_max_position_embeddings"],
    "llama3": ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"],
    "longrope": ["long_factor", "short_factor", "original_max_position_embeddings"],
}


def _one_rope(
    params: dict[str, Any], hf: dict[str, Any], source: str, default_theta: float
) -> dict[str, Any]:
    params = dict(params)
    theta = params.pop("rope_theta", None)
    if theta is None:
        theta = hf.get("rope_theta", default_theta)
    rope_type = params.pop("rope_type", None) or params.pop("type", None) or "default"
    params.pop("type", None)
    params.pop("partial_rotary_factor", None)  # handled as the rotary dimension
    if rope_type == "su":  # old alias of longrope
        rope_type = "longrope"
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ConfigError(
            f"{source}: rope type {rope_type!r} is not supported (supported: {', '.join(SUPPORTED_ROPE_TYPES)})"
        )
    if rope_type in ("llama3", "yarn", "longrope"):
        if hf.get("original_max_position_embeddings") is not None:
            params["original_max_position_embeddings"] = hf["original_max_position_embeddings"]
        else:
            params.setdefault("original_max_position_embeddings", hf.get("max_position_embeddings"))
    missing = [k for k in _REQUIRED.get(rope_type, []) if params.get(k) is None]
    if missing:
        raise ConfigError(f"{source}: rope type {rope_type!r} needs {missing}")
    try:
        theta = float(theta)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: rope_theta must be a number, got {theta!r}") from None
    if not theta > 0:
        raise ConfigError(f"{source}: rope_theta must be > 0, got {theta}")
    for key in (
        "factor",
        "low_freq_factor",
        "high_freq_factor",
        "original_max_position_embeddings",
    ):
        value = params.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
        ):
            raise ConfigError(
                f"{source}: rope parameter {key} must be a positive number, got {value!r}"
            )
    return {"theta": theta, "type": rope_type, "params": {} if rope_type == "default" else params}


def normalize_rope(
    hf: dict[str, Any], source: str, default_theta: float = 10000.0
) -> tuple[dict, dict]:
    """``(rope, per_layer_type)``: the main rope and the ones that differ per layer type."""
    params = hf.get("rope_parameters")
    if params is not None and not isinstance(params, dict):
        raise ConfigError(
            f"{source}: rope_parameters must be an object, got {type(params).__name__}"
        )
    scaling = hf.get("rope_scaling")
    if scaling is not None and not isinstance(scaling, dict):
        raise ConfigError(f"{source}: rope_scaling must be an object, got {type(scaling).__name__}")
    if params and any(isinstance(v, dict) for v in params.values()):
        per_type = {
            k: _one_rope(v, hf, source, default_theta)
            for k, v in params.items()
            if isinstance(v, dict)
        }
        main = per_type.get("full_attention") or next(iter(per_type.values()))
        return main, per_type
    return _one_rope(params or scaling or {}, hf, source, default_theta), {}


def _default_inv_freq(base: float, dim: int) -> np.ndarray:
    exponents = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    return (1.0 / (np.float32(base) ** exponents)).astype(np.float32)


def rope_inv_freq(
    rope: dict[str, Any], dim: int, max_positions: int, long: bool = False
) -> tuple[np.ndarray, float]:
    """Inverse frequencies (float32, ``dim // 2``) and the cos/sin scale.

    ``dynamic`` (NTK) grows its base past ``max_positions`` at run time and ``longrope``
    switches to ``long_factor`` past the original length: the model does both (``long=True``
    gives longrope's long set).
    """
    base, kind, p = rope["theta"], rope["type"], rope["params"]
    inv = _default_inv_freq(base, dim)
    if kind in ("default", "dynamic"):
        return inv, 1.0
    if kind == "linear":
        return (inv / np.float32(p["factor"])).astype(np.float32), 1.0
    if kind == "llama3":
        factor = float(p["factor"])
        low, high = float(p["low_freq_factor"]), float(p["high_freq_factor"])
        old_len = float(p["original_max_position_embeddings"])
        low_wavelen, high_wavelen = old_len / low, old_len / high
        wavelen = (2 * math.pi / inv).astype(np.float32)
        scaled = np.where(wavelen > low_wavelen, inv / np.float32(factor), inv).astype(np.float32)
        smooth = ((old_len / wavelen - low) / (high - low)).astype(np.float32)
        smoothed = ((1 - smooth) * scaled / np.float32(factor) + smooth * scaled).astype(np.float32)
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        return np.where(medium, smoothed, scaled).astype(np.float32), 1.0
    if kind == "longrope":
        orig = int(p["original_max_position_embeddings"])
        factor = p.get("factor") or max_positions / orig
        attn = p.get("attention_factor")
        if attn is None:
            attn = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
        ext = np.asarray(p["long_factor" if long else "short_factor"], dtype=np.float32)
        if ext.shape != (dim // 2,):
            raise ConfigError(f"longrope factors need {dim // 2} entries, got {ext.shape}")
        shape = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
        return (1.0 / (ext * np.float32(base) ** shape)).astype(np.float32), float(attn)
    if kind == "yarn":
        orig = int(p["original_max_position_embeddings"])
        factor = float(p.get("factor") or max_positions / orig)

        def mscale(scale: float, m: float = 1.0) -> float:
            return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

        attn = p.get("attention_factor")
        if attn is None:
            if p.get("mscale") and p.get("mscale_all_dim"):
                attn = mscale(factor, p["mscale"]) / mscale(factor, p["mscale_all_dim"])
            else:
                attn = mscale(factor)
        beta_fast = p.get("beta_fast") or 32
        beta_slow = p.get("beta_slow") or 1

        def corr_dim(rot: float) -> float:
            return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

        lo, hi = corr_dim(beta_fast), corr_dim(beta_slow)
        if p.get("truncate", True):
            lo, hi = math.floor(lo), math.ceil(hi)
        lo, hi = max(lo, 0), min(hi, dim - 1)
        if lo == hi:
            hi += 0.001
        pos_freqs = (
            np.float32(base) ** (np.arange(0, dim, 2).astype(np.float32) / np.float32(dim))
        ).astype(np.float32)
        extra = (1.0 / pos_freqs).astype(np.float32)
        inter = (1.0 / (np.float32(factor) * pos_freqs)).astype(np.float32)
        ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - lo) / (hi - lo), 0, 1).astype(
            np.float32
        )
        extra_factor = (1 - ramp).astype(np.float32)
        inv = (inter * (1 - extra_factor) + extra * extra_factor).astype(np.float32)
        return inv, float(attn)
    raise ConfigError(f"rope type {kind!r} not supported")
