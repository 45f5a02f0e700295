"""The tensors of a model, declared once: Paddle names and shapes, and where each comes from.

:func:`model_tensors` lists the parameters of the Paddle decoder for a config (the blocks it
uses decide which); the family maps each one to its Hugging Face tensor (a rename, optionally a
slice of a fused tensor such as Phi-3's ``qkv_proj``).  The same list drives the streaming
converter (which source tensor, which shape, transposed or not), the loader, and the test that
compares the names with transformers' own state dict of a real-size config on the ``meta``
device.  It needs no Paddle.

Hugging Face ``nn.Linear`` stores ``[out, in]``; ``paddle.nn.Linear`` stores ``[in, out]``, so
every projection weight is transposed.  Embeddings, norms and biases keep their layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import DecoderConfig


@dataclass(frozen=True)
class TensorSpec:
    name: str  # Paddle parameter name
    shape: tuple[int, ...]  # Paddle shape
    hf_name: str  # source tensor
    hf_shape: tuple[int, ...]  # source shape as stored by Hugging Face
    transpose: bool
    #: numpy index applied to the source before transposing (a fused source), or None
    index: tuple[Any, ...] | None = None

    def describe_index(self) -> str | None:
        if self.index is None:
            return None
        parts = []
        for item in self.index:
            if isinstance(item, slice):
                parts.append(
                    f"{'' if item.start is None else item.start}:{'' if item.stop is None else item.stop}"
                    + ("" if item.step in (None, 1) else f":{item.step}")
                )
            elif isinstance(item, (list, tuple)):
                parts.append(f"[{len(item)} rows]")
            else:
                parts.append(str(item))
        return "[" + ", ".join(parts) + "]"


def _norm(prefix: str, size: int, cfg: DecoderConfig) -> list[tuple[str, tuple[int, ...], bool]]:
    if cfg.norm_type == "layer_noparam":
        return []
    out = [(prefix + ".weight", (size,), False)]
    if cfg.norm_type == "layer" and cfg.norm_bias:
        out.append((prefix + ".bias", (size,), False))
    return out


def _linear(
    prefix: str, n_in: int, n_out: int, bias: bool
) -> list[tuple[str, tuple[int, ...], bool]]:
    out = [(prefix + ".weight", (n_in, n_out), True)]
    if bias:
        out.append((prefix + ".bias", (n_out,), False))
    return out


def _mlp(prefix: str, cfg: DecoderConfig, inter: int, bias: bool) -> list:
    h = cfg.hidden_size
    out = _linear(prefix + ".gate", h, inter, bias) if cfg.mlp_gated else []
    return out + _linear(prefix + ".up", h, inter, bias) + _linear(prefix + ".down", inter, h, bias)


def _attention(p: str, cfg: DecoderConfig) -> list:
    h, hd = cfg.hidden_size, cfg.head_dim
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    if cfg.mla:
        m = cfg.mla
        qk_dim = m["qk_nope_head_dim"] + m["qk_rope_head_dim"]
        out = []
        if m["q_lora_rank"]:
            out += _linear(p + "q_a", h, m["q_lora_rank"], cfg.qkv_bias)
            out += _norm(p + "q_a_norm", m["q_lora_rank"], cfg)
            out += _linear(p + "q_b", m["q_lora_rank"], heads * qk_dim, False)
        else:
            out += _linear(p + "q", h, heads * qk_dim, False)
        out += _linear(p + "kv_a", h, m["kv_lora_rank"] + m["qk_rope_head_dim"], cfg.qkv_bias)
        out += _norm(p + "kv_a_norm", m["kv_lora_rank"], cfg)
        out += _linear(
            p + "kv_b", m["kv_lora_rank"], heads * (m["qk_nope_head_dim"] + m["v_head_dim"]), False
        )
        return out + _linear(p + "o", heads * m["v_head_dim"], h, cfg.o_bias)
    out = (
        _linear(p + "q", h, heads * hd, cfg.qkv_bias)
        + _linear(p + "k", h, kv * hd, cfg.qkv_bias)
        + _linear(p + "v", h, kv * hd, cfg.qkv_bias)
        + _linear(p + "o", heads * hd, h, cfg.o_bias)
    )
    if cfg.qk_norm == "head":
        out += [(p + "q_norm.weight", (hd,), False), (p + "k_norm.weight", (hd,), False)]
    elif cfg.qk_norm == "full":
        out += [
            (p + "q_norm.weight", (heads * hd,), False),
            (p + "k_norm.weight", (kv * hd,), False),
        ]
    if cfg.attn_sinks:
        out.append((p + "sinks", (heads,), False))
    return out


def _moe(p: str, cfg: DecoderConfig) -> list:
    m, h = cfg.moe, cfg.hidden_size
    out = _linear(p + "router", h, m["num_experts"], m.get("router_bias", False))
    if m.get("score_bias"):
        out.append((p + "router.score_bias", (m["num_experts"],), False))
    for e in range(m["num_experts"]):
        out += _mlp(f"{p}experts.{e}", cfg, m["moe_intermediate_size"], m.get("expert_bias", False))
    if m.get("shared_intermediate_size"):
        out += _mlp(p + "shared", cfg, m["shared_intermediate_size"], False)
        if m.get("shared_gate"):
            out += _linear(p + "shared_gate", h, 1, False)
    return out


def model_tensors(cfg: DecoderConfig) -> list[tuple[str, tuple[int, ...], bool]]:
    """``(name, paddle_shape, is_linear_weight)`` of every parameter of the Paddle decoder."""
    h = cfg.hidden_size
    out: list = [("embed.weight", (cfg.vocab_size, h), False)]
    if cfg.learned_positions:
        out.append(("pos_embed.weight", (cfg.max_position_embeddings, h), False))
    for i in range(cfg.num_hidden_layers):
        p = f"layers.{i}."
        for norm in cfg.layer_norms:
            out += _norm(p + norm, h, cfg)
        out += _attention(p + "attn.", cfg)
        if cfg.moe and cfg.moe_layers[i]:
            out += _moe(p + "moe.", cfg)
        else:
            out += _mlp(p + "mlp", cfg, cfg.intermediate_size, cfg.mlp_bias)
    out += _norm("norm", h, cfg)
    if not cfg.tie_word_embeddings:
        out += _linear("lm_head", h, cfg.vocab_size, cfg.lm_head_bias)
    elif cfg.lm_head_bias:
        out.append(("lm_head.bias", (cfg.vocab_size,), False))
    return out


def expected_tensors(cfg: DecoderConfig) -> dict[str, TensorSpec]:
    """Every Paddle tensor of ``cfg`` with its Hugging Face source, by Paddle name."""
    from .families import get_family

    family = get_family(cfg.model_type)
    return {spec.name: spec for spec in (family.source(cfg, *t) for t in model_tensors(cfg))}


def by_source(specs: dict[str, TensorSpec]) -> dict[str, list[TensorSpec]]:
    """The specs grouped by Hugging Face tensor (a fused source feeds several Paddle tensors)."""
    out: dict[str, list[TensorSpec]] = {}
    for spec in specs.values():
        out.setdefault(spec.hf_name, []).append(spec)
    return out
