"""One normalised decoder configuration for every supported Hugging Face layout.

transformers 4.x and 5.x write the same model with different ``config.json`` keys:
``rope_theta`` + ``rope_scaling`` (4.x) versus ``rope_parameters`` (5.x), ``torch_dtype`` versus
``dtype``, missing ``head_dim`` versus an explicit one.  PaddleNLP silently falls back to
``rope_theta=10000`` when it meets the 5.x layout (logits off by ~0.09), so everything in this
package goes through :func:`normalize_hf_config` first and never reads a raw HF dict again.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, UnsupportedArchitectureError

#: model_type -> short description of what differs from plain Llama.
SUPPORTED_ARCHITECTURES: dict[str, str] = {
    "llama": "Llama 2 / 3 / 3.1 / 3.2 (rope scaling llama3, linear, dynamic, yarn)",
    "mistral": "Mistral (sliding-window attention)",
    "qwen2": "Qwen2 / Qwen2.5 (bias on q/k/v projections)",
    "qwen3": "Qwen3 (RMSNorm on q and k per head)",
}
SUPPORTED_ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3")
SUPPORTED_ACTIVATIONS = ("silu", "swish", "gelu", "gelu_pytorch_tanh", "gelu_new", "relu")
CONFIG_NAME = "config.json"
SIDE_CONFIG_NAME = "x2paddle_llm_config.json"  # next to a PaddleNLP config.json
FORMAT = "x2paddle_llm/1"


def supported_text() -> str:
    return "; ".join(f"{k}: {v}" for k, v in SUPPORTED_ARCHITECTURES.items())


@dataclass
class DecoderConfig:
    """Everything the Paddle decoder needs, with family differences as explicit fields."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int
    rms_norm_eps: float = 1e-6
    hidden_act: str = "silu"
    rope_theta: float = 10000.0
    rope_type: str = "default"
    #: parameters of the rope type (factor, low_freq_factor, original_max_position_embeddings, ...)
    rope_scaling: dict[str, Any] = field(default_factory=dict)
    qkv_bias: bool = False  # Qwen2: True; Llama/Qwen3: attention_bias
    o_bias: bool = False  # Llama/Qwen3: attention_bias
    mlp_bias: bool = False  # Llama: mlp_bias
    qk_norm: bool = False  # Qwen3
    sliding_window: int | None = None
    #: "full_attention" or "sliding_attention" per layer
    layer_types: list[str] = field(default_factory=list)
    tie_word_embeddings: bool = False
    bos_token_id: int | None = None
    eos_token_id: list[int] = field(default_factory=list)
    pad_token_id: int | None = None
    source_dtype: str = "float32"
    dtype: str = "float32"
    format: str = FORMAT

    def __post_init__(self) -> None:
        if not self.layer_types:
            kind = "sliding_attention" if self.sliding_window else "full_attention"
            self.layer_types = [kind] * self.num_hidden_layers

    @property
    def num_key_value_groups(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown keys in {CONFIG_NAME}: {sorted(unknown)}")
        return cls(**data)

    def save(self, folder: str | Path, name: str = CONFIG_NAME) -> Path:
        path = Path(folder) / name
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> DecoderConfig:
        folder = Path(folder)
        for name in (SIDE_CONFIG_NAME, CONFIG_NAME):
            path = folder / name
            if path.is_file():
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("format") != FORMAT:
                    raise ConfigError(
                        f"{path}: not written by `x2paddle-llm convert` (no format {FORMAT!r}); "
                        "convert the Hugging Face folder first"
                    )
                return cls.from_dict(data)
        raise ConfigError(f"{folder}: no {CONFIG_NAME}; is this a folder written by `x2paddle-llm convert`?")

    # ------------------------------------------------------------------ rope
    def rope_inv_freq(self) -> tuple[np.ndarray, float]:
        """Inverse frequencies (float32, ``head_dim // 2``) and the cos/sin scale (YaRN)."""
        return rope_inv_freq(self)


def _first(value):
    """A token id that some configs store as a list: its first element."""
    return value[0] if isinstance(value, list) else value


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)]


def _normalize_rope(hf: dict[str, Any], source: str) -> tuple[float, str, dict[str, Any]]:
    params = hf.get("rope_parameters")
    if isinstance(params, dict) and params:
        if any(isinstance(v, dict) for v in params.values()):
            raise ConfigError(f"{source}: per-layer-type rope_parameters are not supported: {params}")
        params = dict(params)
    else:
        params = dict(hf.get("rope_scaling") or {})
    theta = params.pop("rope_theta", None)
    if theta is None:
        theta = hf.get("rope_theta", 10000.0)
    rope_type = params.pop("rope_type", None) or params.pop("type", None) or "default"
    params.pop("type", None)
    if rope_type == "su":  # old alias
        rope_type = "longrope"
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ConfigError(
            f"{source}: rope type {rope_type!r} is not supported (supported: {', '.join(SUPPORTED_ROPE_TYPES)})"
        )
    if float(params.get("partial_rotary_factor", 1.0)) != 1.0:
        raise ConfigError(f"{source}: partial_rotary_factor != 1 is not supported")
    params.pop("partial_rotary_factor", None)
    if rope_type in ("llama3", "yarn"):
        params.setdefault("original_max_position_embeddings", hf.get("max_position_embeddings"))
    required = {
        "linear": ["factor"],
        "dynamic": ["factor"],
        "yarn": ["factor", "original_max_position_embeddings"],
        "llama3": ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"],
    }.get(rope_type, [])
    missing = [k for k in required if params.get(k) is None]
    if missing:
        raise ConfigError(f"{source}: rope type {rope_type!r} needs {missing}")
    if rope_type == "default":
        params = {}
    return float(theta), rope_type, params


def normalize_hf_config(hf: dict[str, Any], source: str = "config.json") -> DecoderConfig:
    """Map a Hugging Face ``config.json`` dict (transformers 4.x or 5.x) to :class:`DecoderConfig`."""
    model_type = hf.get("model_type")
    if model_type not in SUPPORTED_ARCHITECTURES:
        archs = hf.get("architectures")
        raise UnsupportedArchitectureError(
            f"{source}: model_type {model_type!r} (architectures {archs}) is not supported. "
            f"Supported: {supported_text()}"
        )
    try:
        hidden = int(hf["hidden_size"])
        heads = int(hf["num_attention_heads"])
        layers = int(hf["num_hidden_layers"])
        vocab = int(hf["vocab_size"])
        inter = int(hf["intermediate_size"])
    except KeyError as exc:
        raise ConfigError(f"{source}: required key {exc.args[0]!r} is missing") from None
    kv_heads = int(hf.get("num_key_value_heads") or heads)
    if heads % kv_heads:
        raise ConfigError(f"{source}: num_attention_heads {heads} not divisible by num_key_value_heads {kv_heads}")
    # Qwen3Config defaults head_dim to 128 when config.json omits it; the others derive it.
    head_dim = int(hf.get("head_dim") or (128 if model_type == "qwen3" else hidden // heads))
    act = hf.get("hidden_act", "silu")
    if act not in SUPPORTED_ACTIVATIONS:
        raise ConfigError(f"{source}: hidden_act {act!r} not supported ({', '.join(SUPPORTED_ACTIVATIONS)})")
    theta, rope_type, rope_params = _normalize_rope(hf, source)
    attention_bias = bool(hf.get("attention_bias", False))
    qkv_bias = {"qwen2": True, "mistral": False}.get(model_type, attention_bias)
    o_bias = {"qwen2": False, "mistral": False}.get(model_type, attention_bias)
    mlp_bias = bool(hf.get("mlp_bias", False)) if model_type == "llama" else False

    sliding_window = hf.get("sliding_window")
    layer_types = list(hf.get("layer_types") or [])
    if model_type == "mistral":
        layer_types = ["sliding_attention" if sliding_window else "full_attention"] * layers
    elif model_type in ("qwen2", "qwen3"):
        if not hf.get("use_sliding_window", False):
            sliding_window = None
        if not layer_types:
            start = int(hf.get("max_window_layers", layers))
            layer_types = [
                "sliding_attention" if sliding_window and i >= start else "full_attention"
                for i in range(layers)
            ]
    else:  # llama has no sliding window
        sliding_window = None
        layer_types = ["full_attention"] * layers
    if len(layer_types) != layers:
        raise ConfigError(f"{source}: layer_types has {len(layer_types)} entries for {layers} layers")
    if any(t == "sliding_attention" for t in layer_types) and not sliding_window:
        raise ConfigError(f"{source}: layer_types asks for sliding attention but sliding_window is not set")
    src_dtype = hf.get("dtype") or hf.get("torch_dtype") or "float32"
    if isinstance(src_dtype, str):
        src_dtype = src_dtype.replace("torch.", "")
    return DecoderConfig(
        model_type=model_type,
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=int(hf.get("max_position_embeddings", 2048)),
        rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        hidden_act=act,
        rope_theta=theta,
        rope_type=rope_type,
        rope_scaling=rope_params,
        qkv_bias=qkv_bias,
        o_bias=o_bias,
        mlp_bias=mlp_bias,
        qk_norm=model_type == "qwen3",
        sliding_window=int(sliding_window) if sliding_window else None,
        layer_types=layer_types,
        tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
        bos_token_id=_first(hf.get("bos_token_id")),
        eos_token_id=_as_list(hf.get("eos_token_id")),
        pad_token_id=_first(hf.get("pad_token_id")),
        source_dtype=str(src_dtype),
        dtype=str(src_dtype),
    )


def load_hf_config(folder: str | Path) -> tuple[dict[str, Any], DecoderConfig]:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{path}: not found (a Hugging Face checkpoint folder has a config.json)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON ({exc})") from None
    return raw, normalize_hf_config(raw, str(path))


# ---------------------------------------------------------------------- rope
def _default_inv_freq(base: float, dim: int) -> np.ndarray:
    exponents = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    return (1.0 / (np.float32(base) ** exponents)).astype(np.float32)


def rope_inv_freq(cfg: DecoderConfig) -> tuple[np.ndarray, float]:
    """Inverse frequencies for positions up to ``max_position_embeddings``.

    ``dynamic`` (NTK) changes the base only past ``max_position_embeddings``; the model applies
    that growth itself at run time (see ``modeling_decoder.RotaryEmbedding``).
    """
    dim, base, p = cfg.head_dim, cfg.rope_theta, cfg.rope_scaling
    inv = _default_inv_freq(base, dim)
    if cfg.rope_type in ("default", "dynamic"):
        return inv, 1.0
    if cfg.rope_type == "linear":
        return (inv / np.float32(p["factor"])).astype(np.float32), 1.0
    if cfg.rope_type == "llama3":
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
    if cfg.rope_type == "yarn":
        factor = p.get("factor")
        orig = int(p["original_max_position_embeddings"])
        if factor is None:
            factor = cfg.max_position_embeddings / orig
        factor = float(factor)

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
        pos_freqs = (np.float32(base) ** (np.arange(0, dim, 2).astype(np.float32) / np.float32(dim))).astype(np.float32)
        extra = (1.0 / pos_freqs).astype(np.float32)
        inter = (1.0 / (np.float32(factor) * pos_freqs)).astype(np.float32)
        ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - lo) / (hi - lo), 0, 1).astype(np.float32)
        extra_factor = (1 - ramp).astype(np.float32)
        inv = (inter * (1 - extra_factor) + extra * extra_factor).astype(np.float32)
        return inv, float(attn)
    raise ConfigError(f"rope type {cfg.rope_type!r} not supported")
