"""One normalised decoder configuration for every supported family.

transformers 4.x and 5.x write the same model with different ``config.json`` keys, and every
family names its knobs differently (``rms_norm_eps`` / ``layer_norm_eps`` /
``layer_norm_epsilon``, ``rope_scaling`` / ``rope_parameters``, ``n_routed_experts`` /
``num_local_experts`` ...).  Each family file (``families/<name>.py``) maps its ``config.json``
onto :class:`DecoderConfig`, whose fields say *which shared block* a layer uses; nothing else in
the package reads a raw Hugging Face dict.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import read_json_object
from .errors import ConfigError
from .rope import rope_inv_freq

CONFIG_NAME = "config.json"
SIDE_CONFIG_NAME = "x2paddle_llm_config.json"  # next to a PaddleNLP config.json
FORMAT = "x2paddle_llm/2"
READABLE_FORMATS = ("x2paddle_llm/2",)
SUPPORTED_ACTIVATIONS = (
    "silu",
    "swish",
    "gelu",
    "gelu_pytorch_tanh",
    "gelu_new",
    "gelu_fast",
    "relu",
    "relu2",
)


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
    hidden_act: str = "silu"
    # -- norms: "rms" | "layer" (weight + optional bias) | "layer_noparam" (OLMo)
    norm_type: str = "rms"
    norm_eps: float = 1e-6
    norm_bias: bool = False
    norm_unit_offset: bool = False  # Gemma: scale by (1 + weight)
    #: which of attn_norm / post_attn_norm / mlp_norm / post_mlp_norm a layer has
    layer_norms: list[str] = field(default_factory=lambda: ["attn_norm", "mlp_norm"])
    parallel_block: bool = False  # x + attn(n(x)) + mlp(n'(x)) (Phi, GPT-NeoX, Cohere, Falcon)
    # -- positions
    rope: dict[str, Any] = field(
        default_factory=lambda: {"theta": 10000.0, "type": "default", "params": {}}
    )
    rope_per_layer_type: dict[str, dict[str, Any]] = field(default_factory=dict)
    rotary_dim: int = 0  # 0 = head_dim; Phi / GPT-NeoX / StableLM / GLM rotate a part only
    rope_interleave: bool = False  # GLM / ERNIE / Cohere: rotate (even, odd) pairs
    learned_positions: bool = False  # GPT-2
    # -- attention
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: str = ""  # "" | "head" (one norm over head_dim) | "full" (over all heads, OLMo 2)
    attn_scale: float = 0.0  # 0 = head_dim ** -0.5
    attn_softcap: float = 0.0
    attn_sinks: bool = False
    sliding_window: int | None = None
    #: "full_attention" or "sliding_attention" per layer
    layer_types: list[str] = field(default_factory=list)
    #: DeepSeek multi-head latent attention: q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim
    mla: dict[str, int] = field(default_factory=dict)
    # -- MLP / mixture of experts
    mlp_gated: bool = True
    mlp_bias: bool = False
    #: empty = dense; else num_experts, top_k, moe_intermediate_size, scoring, norm_topk_prob, ...
    moe: dict[str, Any] = field(default_factory=dict)
    #: per layer: True = MoE, False = dense MLP
    moe_layers: list[bool] = field(default_factory=list)
    # -- scalings (Gemma, Granite, MiniCPM, Cohere)
    embed_scale: float = 1.0
    residual_scale: float = 1.0
    logits_scale: float = 1.0
    final_softcap: float = 0.0
    tie_word_embeddings: bool = False
    lm_head_bias: bool = False
    bos_token_id: int | None = None
    eos_token_id: list[int] = field(default_factory=list)
    pad_token_id: int | None = None
    #: facts about the source layout a family needs while converting (e.g. Falcon's fused qkv order)
    source_layout: dict[str, Any] = field(default_factory=dict)
    source_dtype: str = "float32"
    dtype: str = "float32"
    format: str = FORMAT

    def __post_init__(self) -> None:
        if not self.layer_types:
            kind = "sliding_attention" if self.sliding_window else "full_attention"
            self.layer_types = [kind] * self.num_hidden_layers
        if self.moe and not self.moe_layers:
            self.moe_layers = [True] * self.num_hidden_layers

    @property
    def num_key_value_groups(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def rope_dim(self) -> int:
        if self.mla:
            return self.mla["qk_rope_head_dim"]
        return self.rotary_dim or self.head_dim

    @property
    def cache_head_dims(self) -> tuple[int, int]:
        """(key, value) head dims of the KV cache."""
        if self.mla:
            return self.mla["qk_nope_head_dim"] + self.mla["qk_rope_head_dim"], self.mla[
                "v_head_dim"
            ]
        return self.head_dim, self.head_dim

    def layer_rope(self, layer_type: str) -> dict[str, Any]:
        return self.rope_per_layer_type.get(layer_type, self.rope)

    def rope_inv_freq(
        self, layer_type: str = "full_attention", long: bool = False
    ) -> tuple[np.ndarray, float]:
        return rope_inv_freq(
            self.layer_rope(layer_type), self.rope_dim, self.max_position_embeddings, long
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = CONFIG_NAME) -> DecoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def save(self, folder: str | Path, name: str = CONFIG_NAME) -> Path:
        path = Path(folder) / name
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> DecoderConfig:
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"{folder}: not a folder")
        for name in (SIDE_CONFIG_NAME, CONFIG_NAME):
            path = folder / name
            if path.is_file():
                data = read_json_object(path, what=name)
                if data.get("format") not in READABLE_FORMATS:
                    raise ConfigError(
                        f"{path}: not written by this version of `x2paddle-llm convert` (format "
                        f"{data.get('format')!r}, expected {FORMAT!r}); convert the Hugging Face folder (again)"
                    )
                return cls.from_dict(data, str(path))
        raise ConfigError(
            f"{folder}: no {CONFIG_NAME}; is this a folder written by `x2paddle-llm convert`?"
        )


# ------------------------------------------------------------ reading raw values
class HFConfig:
    """Typed, validated access to a raw ``config.json`` dict: every error names the file and key."""

    def __init__(self, raw: dict[str, Any], source: str):
        self.raw, self.source = raw, source

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.raw.get(key)
        return default if value is None else value

    def int(self, *keys: str, default: int | None = None, minimum: int = 1) -> int:
        for key in keys:
            value = self.raw.get(key)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or int(value) != value
            ):
                raise ConfigError(f"{self.source}: {key} must be an integer, got {value!r}")
            if value < minimum:
                raise ConfigError(f"{self.source}: {key} must be >= {minimum}, got {value}")
            return int(value)
        if default is None:
            raise ConfigError(f"{self.source}: required key {keys[0]!r} is missing")
        return default

    def float(self, *keys: str, default: float | None = None, positive: bool = False) -> float:
        for key in keys:
            value = self.raw.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{self.source}: {key} must be a number, got {value!r}")
            if positive and not value > 0:
                raise ConfigError(f"{self.source}: {key} must be > 0, got {value}")
            return float(value)
        if default is None:
            raise ConfigError(f"{self.source}: required key {keys[0]!r} is missing")
        return default

    def bool(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.source}: {key} must be true or false, got {value!r}")
        return value

    def act(self, *keys: str, default: str = "silu") -> str:
        value = default
        for key in keys:
            if self.raw.get(key) is not None:
                value = self.raw[key]
                break
        if value not in SUPPORTED_ACTIVATIONS:
            raise ConfigError(
                f"{self.source}: activation {value!r} not supported ({', '.join(SUPPORTED_ACTIVATIONS)})"
            )
        return value

    def token_ids(self, key: str) -> list[int]:
        value = self.raw.get(key)
        if value is None:
            return []
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
            raise ConfigError(
                f"{self.source}: {key} must be a token id or a list of them, got {value!r}"
            )
        return [int(v) for v in values]

    def token_id(self, key: str) -> int | None:
        ids = self.token_ids(key)
        return ids[0] if ids else None

    def dtype(self) -> str:
        value = self.raw.get("dtype") or self.raw.get("torch_dtype") or "float32"
        return str(value).replace("torch.", "")


def normalize_hf_config(hf: dict[str, Any], source: str = CONFIG_NAME) -> DecoderConfig:
    """Map a Hugging Face ``config.json`` dict (transformers 4.x or 5.x) to :class:`DecoderConfig`."""
    from .families import get_family

    if not isinstance(hf, dict):
        raise ConfigError(f"{source}: must hold a JSON object, found {type(hf).__name__}")
    family = get_family(hf.get("model_type"), hf.get("architectures"), source)
    cfg = family.normalize(HFConfig(hf, source))
    check_config(cfg, source)
    return cfg


def check_config(cfg: DecoderConfig, source: str) -> None:
    """Consistency checks shared by every family (divisibility, layer lists)."""
    if cfg.num_attention_heads % cfg.num_key_value_heads:
        raise ConfigError(
            f"{source}: num_attention_heads {cfg.num_attention_heads} not divisible by "
            f"num_key_value_heads {cfg.num_key_value_heads}"
        )
    if len(cfg.layer_types) != cfg.num_hidden_layers:
        raise ConfigError(
            f"{source}: layer_types has {len(cfg.layer_types)} entries for {cfg.num_hidden_layers} layers"
        )
    bad = sorted(set(cfg.layer_types) - {"full_attention", "sliding_attention"})
    if bad:
        raise ConfigError(
            f"{source}: layer types {bad} are not supported (full_attention, sliding_attention)"
        )
    if "sliding_attention" in cfg.layer_types and not cfg.sliding_window:
        raise ConfigError(
            f"{source}: layer_types asks for sliding attention but sliding_window is not set"
        )
    if cfg.rope_dim % 2 or cfg.rope_dim > max(cfg.cache_head_dims):
        raise ConfigError(f"{source}: rotary dimension {cfg.rope_dim} must be even and <= head_dim")
    if cfg.moe and len(cfg.moe_layers) != cfg.num_hidden_layers:
        raise ConfigError(
            f"{source}: MoE layer list has {len(cfg.moe_layers)} entries for {cfg.num_hidden_layers}"
        )
    if cfg.moe and not 0 < cfg.moe["top_k"] <= cfg.moe["num_experts"]:
        raise ConfigError(
            f"{source}: top-k {cfg.moe['top_k']} must be in 1..num_experts ({cfg.moe['num_experts']})"
        )


def load_hf_config(folder: str | Path) -> tuple[dict[str, Any], DecoderConfig]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder (expected a Hugging Face checkpoint folder)")
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"{path}: not found (a Hugging Face checkpoint folder has a config.json)")
    raw = read_json_object(path, what=CONFIG_NAME)
    return raw, normalize_hf_config(raw, str(path))
