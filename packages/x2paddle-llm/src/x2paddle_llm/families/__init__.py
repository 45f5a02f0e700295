"""Model families: one small file each, on top of the shared blocks.

A family declares three things and nothing else:

* ``normalize(hf) -> DecoderConfig``: its ``config.json`` keys onto the shared fields (which
  norm, which attention, which MLP or mixture of experts, which scalings);
* ``renames``: how the Paddle parameter path components (``layers``, ``attn``, ``q`` ...) are
  called in its checkpoints (``model.layers``, ``self_attn``, ``q_proj`` ...);
* optionally ``fused(cfg, name)``: where a Paddle tensor is a slice of a fused source tensor.

From that one declaration :mod:`x2paddle_llm.schema` derives the tensors the converter streams,
the loader expects and the tests compare with transformers' own state dicts.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError, UnsupportedArchitectureError
from ..rope import normalize_rope
from ..schema import TensorSpec

#: Paddle path component -> Hugging Face path component, shared by the Llama-style families
LLAMA_RENAMES = {
    "embed": "model.embed_tokens",
    "norm": "model.norm",
    "layers": "model.layers",
    "attn_norm": "input_layernorm",
    "mlp_norm": "post_attention_layernorm",
    "attn": "self_attn",
    "q": "q_proj",
    "k": "k_proj",
    "v": "v_proj",
    "o": "o_proj",
    "mlp": "mlp",
    "gate": "gate_proj",
    "up": "up_proj",
    "down": "down_proj",
    "moe": "mlp",
    "router": "gate",
    "shared": "shared_expert",
    "shared_gate": "shared_expert_gate",
}


@dataclass
class Family:
    model_type: str
    description: str
    normalize: Callable[[HFConfig], DecoderConfig]
    renames: dict[str, str] = field(default_factory=lambda: dict(LLAMA_RENAMES))
    #: (cfg, paddle name) -> (hf name, hf shape, numpy index, transpose) for sliced sources
    fused: Callable[[DecoderConfig, str, tuple[int, ...]], tuple | None] | None = None
    #: source tensors that are recomputed (rotary caches, causal-mask buffers), never converted
    ignored: tuple[str, ...] = ()
    #: name of this family's class in PaddleNLP 3.0.0b4 (``--target paddlenlp``), if any
    paddlenlp_prefix: str | None = None

    def hf_name(self, name: str) -> str:
        return ".".join(self.renames.get(part, part) for part in name.split("."))

    def source(
        self, cfg: DecoderConfig, name: str, shape: tuple[int, ...], linear: bool
    ) -> TensorSpec:
        if self.fused is not None:
            hit = self.fused(cfg, name, shape)
            if hit is not None:
                hf_name, hf_shape, index, transpose = hit
                return TensorSpec(name, tuple(shape), hf_name, tuple(hf_shape), transpose, index)
        hf_shape = tuple(reversed(shape)) if linear else tuple(shape)
        return TensorSpec(name, tuple(shape), self.hf_name(name), hf_shape, linear)

    def is_ignored(self, hf_name: str, cfg: DecoderConfig) -> bool:
        if (
            hf_name.endswith(("rotary_emb.inv_freq", ".masked_bias", ".attn.bias"))
            or hf_name in self.ignored
        ):
            return True
        # Tied checkpoints sometimes still store lm_head.weight (a copy of the embedding).
        return cfg.tie_word_embeddings and hf_name == self.hf_name("lm_head.weight")


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.model_type] = family
    return family


def _load_all() -> None:
    if FAMILIES:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def supported() -> dict[str, str]:
    _load_all()
    return {k: FAMILIES[k].description for k in sorted(FAMILIES)}


def get_family(model_type: Any, architectures: Any = None, source: str = "config.json") -> Family:
    _load_all()
    if isinstance(model_type, str) and model_type in FAMILIES:
        return FAMILIES[model_type]
    raise UnsupportedArchitectureError(
        f"{source}: model_type {model_type!r} (architectures {architectures}) is not supported. "
        f"Supported: {', '.join(sorted(FAMILIES))}"
    )


# --------------------------------------------------------------- shared normalisation
def base_config(hf: HFConfig, **fields: Any) -> dict[str, Any]:
    """The keys every decoder has, validated; ``fields`` are the family's own settings."""
    hidden = hf.int("hidden_size", "n_embd", "d_model")
    heads = hf.int("num_attention_heads", "n_head")
    layers = hf.int("num_hidden_layers", "n_layer")
    kv_heads = hf.int("num_key_value_heads", default=heads)
    if kv_heads > heads:
        raise ConfigError(
            f"{hf.source}: num_key_value_heads {kv_heads} > num_attention_heads {heads}"
        )
    if "head_dim" not in fields:  # transformers: config.head_dim, else hidden_size // heads (floor)
        fields["head_dim"] = hf.int("head_dim", default=max(1, hidden // heads))
    if "rope" not in fields:
        fields["rope"], fields["rope_per_layer_type"] = normalize_rope(hf.raw, hf.source)
    out = dict(
        model_type=hf.raw["model_type"],
        vocab_size=hf.int("vocab_size"),
        hidden_size=hidden,
        intermediate_size=hf.int(
            "intermediate_size", "n_inner", "ffn_hidden_size", default=4 * hidden
        ),
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=hf.int(
            "max_position_embeddings", "n_positions", "seq_length", default=2048
        ),
        hidden_act=hf.act("hidden_act"),
        norm_eps=hf.float(
            "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", default=1e-6, positive=True
        ),
        tie_word_embeddings=hf.bool("tie_word_embeddings", False),
        bos_token_id=hf.token_id("bos_token_id"),
        eos_token_id=hf.token_ids("eos_token_id"),
        pad_token_id=hf.token_id("pad_token_id"),
        source_dtype=hf.dtype(),
        dtype=hf.dtype(),
    )
    out.update(fields)
    return out


def partial_rotary(
    hf: HFConfig, head_dim: int, key: str = "partial_rotary_factor", default: float = 1.0
) -> int:
    factor = hf.get(key)
    params = hf.get("rope_parameters") or {}
    if factor is None and isinstance(params, dict):
        factor = params.get("partial_rotary_factor")
    factor = default if factor is None else factor
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= 1:
        raise ConfigError(f"{hf.source}: {key} must be in (0, 1], got {factor!r}")
    return int(head_dim * factor)


def sliding_layers(hf: HFConfig, layers: int, window: int | None) -> list[str]:
    """``layer_types`` if given, else every layer sliding when a window is set."""
    types = hf.get("layer_types")
    if types is not None:
        if not isinstance(types, list):
            raise ConfigError(f"{hf.source}: layer_types must be a list")
        return list(types)
    return ["sliding_attention" if window else "full_attention"] * layers


def window(hf: HFConfig) -> int | None:
    value = hf.get("sliding_window")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{hf.source}: sliding_window must be a positive integer, got {value!r}")
    return value


def qkv_rows(cfg: DecoderConfig, name: str, hf_name: str, layout: str = "concat"):
    """Source rows of q / k / v (weight or bias) in a fused projection.

    ``concat``: ``[q; k; v]`` (Phi-3, GPT-2 after transposing, StableLM-free); ``per_head``:
    ``[heads, 3, head_dim]`` (GPT-NeoX, Falcon without multi-query); ``grouped``:
    ``[kv_heads, groups + 2, head_dim]`` (Falcon's new decoder architecture).
    """
    hd, heads, kv = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    part = name.split(".")[-2]
    if layout == "concat":
        q, k = heads * hd, kv * hd
        return {
            "q": list(range(0, q)),
            "k": list(range(q, q + k)),
            "v": list(range(q + k, q + 2 * k)),
        }[part]
    if layout == "per_head":
        slot = "qkv".index(part)
        return [n * 3 * hd + slot * hd + d for n in range(heads) for d in range(hd)]
    groups = heads // kv
    rows = []
    for g in range(kv):
        base = g * (groups + 2) * hd
        if part == "q":
            rows += list(range(base, base + groups * hd))
        else:
            start = base + (groups + (part == "v")) * hd
            rows += list(range(start, start + hd))
    return rows


def fused_rows(hf_name: str, hf_shape: tuple[int, ...], rows: list[int], linear: bool):
    """A ``fused`` answer: ``rows`` of the Hugging Face tensor (then transposed if a weight)."""
    index = (
        (slice(rows[0], rows[-1] + 1),) if rows == list(range(rows[0], rows[-1] + 1)) else (rows,)
    )
    return hf_name, hf_shape, index, linear


def split_qkv(cfg: DecoderConfig, name: str, shape, hf_attn: str, layout: str = "concat"):
    """Map ``layers.i.attn.{q,k,v}.{weight,bias}`` to rows of a fused projection ``hf_attn``
    (its full Hugging Face prefix with ``{i}``)."""
    parts = name.split(".")
    if len(parts) != 5 or parts[2] != "attn" or parts[3] not in ("q", "k", "v"):
        return None
    fused_out = (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * cfg.head_dim
    linear = parts[4] == "weight"
    hf_shape = (fused_out, cfg.hidden_size) if linear else (fused_out,)
    rows = qkv_rows(cfg, name, "", layout)
    return fused_rows(hf_attn.format(i=parts[1]) + "." + parts[4], hf_shape, rows, linear)


def split_gate_up(cfg: DecoderConfig, name: str, shape, hf_mlp: str):
    """``layers.i.mlp.{gate,up}.weight`` from a fused ``gate_up_proj`` (gate first, then up)."""
    parts = name.split(".")
    if len(parts) != 5 or parts[2] != "mlp" or parts[3] not in ("gate", "up"):
        return None
    inter = cfg.intermediate_size
    linear = parts[4] == "weight"
    hf_shape = (2 * inter, cfg.hidden_size) if linear else (2 * inter,)
    start = 0 if parts[3] == "gate" else inter
    return fused_rows(
        hf_mlp.format(i=parts[1]) + "." + parts[4],
        hf_shape,
        list(range(start, start + inter)),
        linear,
    )
