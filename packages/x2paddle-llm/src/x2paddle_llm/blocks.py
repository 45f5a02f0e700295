"""The shared, tested building blocks every family is assembled from (Paddle).

Each block reads only :class:`~x2paddle_llm.config.DecoderConfig` fields, and its parameter
names are the ones :mod:`x2paddle_llm.schema` declares.  Everything is written with
shape-polymorphic tensor ops (no Python branching on tensor values), so the same code runs
eagerly and under ``paddle.jit.to_static`` for export.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from . import kernels
from ._paddle import require_paddle
from .config import DecoderConfig

paddle = require_paddle()
nn = paddle.nn
F = paddle.nn.functional
NEG_INF = float(np.finfo(np.float32).min)


def _as(t, dtype):
    """``t`` in ``dtype``, without a cast op when it already is (a decode step runs hundreds of ops:
    each one saved is per-step Python and dispatch overhead)."""
    return t if t.dtype == dtype else t.astype(dtype)


F32 = paddle.float32
_C = paddle._C_ops


# Hot-path tensor ops called as Paddle's own API functions end up calling (``_C_ops``), which
# work eagerly and while tracing for export alike.  The public wrappers re-check their
# arguments on every call: 5-15 µs each on CPU (measured), paid a dozen times per layer per
# decode step; the operators themselves are the same.
def _reshape(x, shape):
    if all(type(d) is int for d in shape):
        return _C.reshape(x, shape)
    return paddle.reshape(x, shape)  # a dimension only known at run time (export)


def _transpose(x, perm):
    return _C.transpose(x, perm)


def _split(x, sections, axis: int):
    """``sections``: sizes (a list) or a count (an int), as :func:`paddle.split`."""
    axis = axis % len(x.shape)  # the operator takes no negative axis
    if isinstance(sections, int):
        return _C.split_with_num(x, sections, axis)
    return _C.split(x, sections, axis)


def _matmul(x, y, transpose_y: bool = False):
    return _C.matmul(x, y, False, transpose_y)


try:  # one kernel instead of five ops (pow, mean, add, rsqrt, mul); on CPU too in Paddle >= 3.0
    from paddle.incubate.nn.functional import fused_rms_norm as _fused_rms_norm
except ImportError:  # pragma: no cover - older or stripped builds
    _fused_rms_norm = None


def _cpu_has_avx512f() -> bool:
    try:
        return bool(paddle.base.core.supports_avx512f())
    except AttributeError:  # pragma: no cover - not exposed: assume the worst
        return False


# Paddle 3.3.1's CPU kernel of fused_rms_norm (RmsNormAvxKernel) executes AVX-512 instructions
# whatever the processor: on an AVX2-only CPU (many AMD Zen 2/3 and client Intel parts) it
# kills the process with SIGILL. Used only where it can run.
if _fused_rms_norm is not None and not (
    "gpu" in str(paddle.device.get_device()) or _cpu_has_avx512f()
):
    _fused_rms_norm = None

# silu(a) * b of the two halves of one tensor in one kernel (CPU too in Paddle 3.3), used by
# the exported program only: there it replaces split / silu / multiply (five operators with
# their constants) per gated MLP, which matters for the experts of a MoE layer, each run every
# step, mostly on zero rows. Eagerly it is no faster than silu and a multiply (measured), so
# dygraph keeps those. Equal to them within a few float32 ulps (<= 1e-6 measured).
_swiglu = getattr(F, "swiglu", None)
if _swiglu is None:  # pragma: no cover - Paddle < 3.3 keeps it under incubate
    try:
        from paddle.incubate.nn.functional import swiglu as _swiglu
    except ImportError:
        _swiglu = None


@contextlib.contextmanager
def default_dtype(name: str) -> Iterator[None]:
    """Paddle's default dtype set to ``name`` (the dtype new layers' parameters take) inside the
    block, restored after it, also on error."""
    previous = paddle.get_default_dtype()
    paddle.set_default_dtype(name)
    try:
        yield
    finally:
        paddle.set_default_dtype(previous)


def activation(name: str):
    if name in ("silu", "swish"):
        return F.silu
    if name == "relu":
        return F.relu
    if name == "relu2":
        return lambda x: F.relu(x).square()
    if name in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return lambda x: F.gelu(x, approximate=True)
    return F.gelu


class Norm(nn.Layer):
    """RMSNorm (optionally ``(1 + w)``, Gemma), LayerNorm with or without bias, or OLMo's
    LayerNorm without parameters."""

    def __init__(self, size: int, cfg: DecoderConfig, eps: float | None = None):
        super().__init__()
        self.kind, self.size = cfg.norm_type, size
        self.eps = cfg.norm_eps if eps is None else eps
        self.unit_offset = cfg.norm_unit_offset
        self.weight = self.bias = None
        if self.kind != "layer_noparam":
            init = 0.0 if self.unit_offset else 1.0
            self.weight = self.create_parameter(
                [size], default_initializer=nn.initializer.Constant(init)
            )
        if self.kind == "layer" and cfg.norm_bias:
            self.bias = self.create_parameter([size], is_bias=True)

    def forward(self, x):
        dtype = x.dtype
        if (
            self.kind == "rms"
            and not self.unit_offset
            and dtype == F32
            and _fused_rms_norm is not None
        ):
            return _fused_rms_norm(x, self.weight, None, self.eps, len(x.shape) - 1)[0]
        x32 = _as(x, F32)
        if self.kind == "rms":
            x32 = x32 * paddle.rsqrt(x32.pow(2).mean(axis=-1, keepdim=True) + self.eps)
            if self.unit_offset:
                return _as(x32 * (1.0 + _as(self.weight, F32)), dtype)
            return self.weight * _as(x32, dtype)
        out = F.layer_norm(x32, [self.size], weight=None, bias=None, epsilon=self.eps)
        if self.weight is not None:
            out = out * _as(self.weight, F32)
        if self.bias is not None:
            out = out + _as(self.bias, F32)
        return _as(out, dtype)


class Rotary(nn.Layer):
    """cos/sin for integer positions, for one rope setting (a layer type).

    ``dynamic`` NTK grows its base past the trained length; ``longrope`` switches to its long
    factors once the sequence passes the original length — both as tensor ops.
    """

    def __init__(self, cfg: DecoderConfig, layer_type: str):
        super().__init__()
        rope = cfg.layer_rope(layer_type)
        inv_freq, self.attention_scaling = cfg.rope_inv_freq(layer_type)
        self.register_buffer("inv_freq", paddle.to_tensor(inv_freq), persistable=False)
        self.kind = rope["type"]
        if self.kind == "dynamic":
            dim = cfg.rope_dim
            self.base = float(rope["theta"])
            self.factor = float(rope["params"]["factor"])
            self.max_pos = float(cfg.max_position_embeddings)
            self.exponent = float(dim) / float(dim - 2)
            exps = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
            self.register_buffer("freq_exponents", paddle.to_tensor(exps), persistable=False)
        if self.kind == "longrope":
            long_inv, _ = cfg.rope_inv_freq(layer_type, long=True)
            self.register_buffer("long_inv_freq", paddle.to_tensor(long_inv), persistable=False)
            self.original = float(rope["params"]["original_max_position_embeddings"])

    def forward(self, position_ids, dtype):
        pos = position_ids.astype("float32")
        inv_freq = self.inv_freq
        if self.kind == "dynamic":
            seq_len = paddle.maximum(pos.max() + 1.0, paddle.full([], self.max_pos, "float32"))
            base = (
                self.base
                * ((self.factor * seq_len / self.max_pos) - (self.factor - 1.0)) ** self.exponent
            )
            inv_freq = 1.0 / (base**self.freq_exponents)
        elif self.kind == "longrope":
            use_long = (pos.max() + 1.0 > self.original).astype("float32")
            inv_freq = use_long * self.long_inv_freq + (1.0 - use_long) * self.inv_freq
        freqs = pos.unsqueeze(1).unsqueeze(-1) * inv_freq  # [B, 1, S, D/2]
        cos = paddle.cos(freqs)
        sin = paddle.sin(freqs)
        if self.attention_scaling != 1.0:
            cos, sin = cos * self.attention_scaling, sin * self.attention_scaling
        # rotate_half(x) * sin == roll(x, D/2) * (-sin, sin): the sign is folded in once per step
        cos = paddle.concat([cos, cos], axis=-1)
        sin = paddle.concat([-sin, sin], axis=-1)
        return _as(cos, dtype), _as(sin, dtype)


def _deinterleave(x):
    """(x0, x1, x2, x3, ...) -> (x0, x2, ..., x1, x3, ...): pairwise rotation becomes rotate-half.

    Scores are dot products over the same permutation of q and k, so they are unchanged.
    """
    d = x.shape[-1]
    return x.reshape([0, 0, 0, d // 2, 2]).transpose([0, 1, 2, 4, 3]).reshape([0, 0, 0, d])


def apply_rotary(x, cos, sin, rotary_dim: int, interleave: bool):
    """Rotate the first ``rotary_dim`` features of ``x [B, H, S, D]``.

    ``cos`` and ``sin`` are :class:`Rotary`'s ``[B, 1, S, R]``, ``sin`` with its first half
    negated, so that ``x * cos + rotate_half(x) * sin`` is ``x * cos + roll(x, R/2) * sin``:
    three elementwise ops and a roll, the same numbers (a sign flip and a copy are exact).
    """
    if rotary_dim == x.shape[-1]:
        rot, rest = x, None
    else:
        rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    if interleave:
        rot = _deinterleave(rot)
    rot = rot * cos + paddle.roll(rot, rotary_dim // 2, axis=-1) * sin
    return rot if rest is None else paddle.concat([rot, rest], axis=-1)


def attention_bias(mask2d, query_len, sliding_window: int | None, start=None):
    """Additive ``[B, 1, S, T]`` bias: 0 where key ``j`` is visible from query ``i``, else -inf.

    ``mask2d`` is ``[B, T]`` over past + current tokens (1 = real token, 0 = padding).  The
    queries sit at positions ``start .. start + S - 1`` of it (default: the last ``S``); with a
    preallocated cache ``T`` is its capacity, and the slots after the queries are masked out.
    """
    if paddle.in_dynamic_mode():  # the same numbers worked out on the host: one tensor to make
        return _attention_bias_host(mask2d, query_len, sliding_window, start)
    total = paddle.shape(mask2d)[1]
    k_pos = paddle.arange(0, total, dtype="int64").unsqueeze(0)  # [1, T]
    if start is None:
        start = total - query_len
    q_pos = (paddle.arange(0, query_len, dtype="int64") + start).unsqueeze(1)  # [S, 1]
    allowed = k_pos <= q_pos
    if sliding_window:
        allowed = paddle.logical_and(allowed, (q_pos - k_pos) < sliding_window)
    keep = mask2d.astype("bool").unsqueeze(1).unsqueeze(1)  # [B, 1, 1, T]
    allowed = paddle.logical_and(allowed.unsqueeze(0).unsqueeze(0), keep)
    return paddle.where(allowed, paddle.zeros([], "float32"), paddle.full([], NEG_INF, "float32"))


def _attention_bias_host(mask2d, query_len, sliding_window, start):
    """:func:`attention_bias` with numpy (eager mode): a dozen small tensor ops per step (about
    0.2 ms on CPU, measured) become one host computation and one tensor."""
    keep = mask2d.numpy().astype(bool)  # [B, T]
    total = keep.shape[1]
    query_len = int(query_len)
    start = total - query_len if start is None else int(start)
    k_pos = np.arange(total, dtype=np.int64)[None, :]
    q_pos = np.arange(query_len, dtype=np.int64)[:, None] + start
    allowed = k_pos <= q_pos
    if sliding_window:
        allowed &= (q_pos - k_pos) < sliding_window
    allowed = allowed[None, None] & keep[:, None, None, :]
    return paddle.to_tensor(np.where(allowed, np.float32(0.0), np.float32(NEG_INF)))


class CacheSlot:
    """One layer's preallocated cache ``[B, heads, capacity, D]`` (export path): the step's keys
    and values are written at ``start`` instead of concatenated, so every tensor keeps its shape
    from step to step (oneDNN builds its primitives once) and nothing is reallocated."""

    def __init__(self, key, value, start, bounds=None):
        """``bounds``: the ``[1]``-shaped first and end slots of the step, worked out once per
        step for every layer (export); without it, from ``start`` and the step's length."""
        self.key, self.value, self.start, self.bounds = key, value, start, bounds

    def _write(self, cache, new):
        if paddle.in_dynamic_mode():
            cache = cache.clone()
            cache[:, :, int(self.start) : int(self.start) + new.shape[2]] = new
            return cache
        if self.bounds is None:
            end = self.start + paddle.shape(new)[2]
            index = (slice(None), slice(None), slice(self.start, end))
            return paddle.static.setitem(cache, index, new)
        # the operator ``setitem`` emits, without its per-call stacking of the bounds
        first, end = self.bounds
        return _C.set_value_with_tensor(cache, new, first, end, [1], [2], [], [])

    def update(self, k, v):
        return self._write(self.key, k), self._write(self.value, v)


def extend_cache(past, k, v):
    """Keys and values of the past and this step: written into a :class:`CacheSlot`, or
    concatenated to a ``(key, value)`` pair (dygraph), or just ``(k, v)`` without a past."""
    if past is None:
        return k, v
    if isinstance(past, CacheSlot):
        return past.update(k, v)
    return paddle.concat([past[0], k], axis=2), paddle.concat([past[1], v], axis=2)


class Linear(nn.Linear):
    """``paddle.nn.Linear`` (same ``[in, out]`` weight and names) calling ``matmul`` directly:
    ``F.linear`` costs about 20 µs more per call on CPU at batch 1 (measured), a decode step
    makes seven or more per layer."""

    def forward(self, x):
        out = _matmul(x, self.weight)
        return out if self.bias is None else _C.add(out, self.bias)


def _linear(n_in: int, n_out: int, bias: bool):
    return Linear(n_in, n_out, bias_attr=None if bias else False)


class FusableLinears:
    """Mixin of the blocks whose projections read the same input: ``FUSE`` declares, per fused
    projection, the published projections it stands for, e.g. ``{"qkv": ("q", "k", "v")}``.

    :meth:`fuse` concatenates their ``[in, out]`` weights (and biases) along the output axis
    into one :class:`Linear`, so a decode step runs one matrix product instead of several
    (fewer operators to dispatch, one pass over the input).  The published names stay the
    checkpoint's: :meth:`published_parts` splits a fused tensor back (saving), and loading
    happens before fusing.
    """

    FUSE: dict = {}

    def fuse(self) -> None:
        if not hasattr(self, "_fused"):
            self._fused = {}
        for fused_name, parts in self.FUSE.items():
            if getattr(self, fused_name, None) is not None:
                continue
            mods = [getattr(self, p, None) for p in parts]
            if any(m is None for m in mods) or len({m.bias is None for m in mods}) != 1:
                continue
            weight = paddle.concat([m.weight for m in mods], axis=1)
            bias = None if mods[0].bias is None else paddle.concat([m.bias for m in mods])
            with default_dtype(str(weight.dtype).replace("paddle.", "")):
                fused = _linear(weight.shape[0], weight.shape[1], bias is not None)
            fused.weight.set_value(weight)
            if bias is not None:
                fused.bias.set_value(bias)
            self._fused[fused_name] = [(p, m.weight.shape[1]) for p, m in zip(parts, mods)]
            for p in parts:
                delattr(self, p)
                setattr(self, p, None)
            setattr(self, fused_name, fused)

    def published_parts(self, fused_name: str, suffix: str, value):
        """``[(published suffix, tensor)]`` of one fused tensor (``suffix``: weight or bias)."""
        parts = self._fused[fused_name]
        pieces = paddle.split(value, [n for _, n in parts], axis=-1)
        return [(f"{p}.{suffix}", t) for (p, _), t in zip(parts, pieces)]


def scaled_attention(module, q, k, v, bias, groups: int = 1):
    """softmax(q k^T * scale [soft-capped] + bias [+ sink]) v, in float32; ``[B, H, S, Dv]``.

    With grouped-query attention (``groups`` query heads per key/value head) the queries of a
    group are stacked along the sequence axis instead of repeating the cache ``groups`` times:
    the cache is never copied, which is what dominates decoding time on long caches.
    """
    # (a 0 in a reshape keeps that axis' size: every shape here is made of constants)
    if groups > 1:
        q = _reshape(q, [0, k.shape[1], -1, q.shape[-1]])  # [B, kv, groups * S, D]
    scores = _as(_matmul(q, k, transpose_y=True), F32) * module.scaling
    if groups > 1:
        scores = _reshape(scores, [0, module.num_heads, -1, 0])  # [B, H, S, T]
    if module.softcap:
        scores = paddle.tanh(scores / module.softcap) * module.softcap
    scores = scores + bias
    if module.sinks is not None:  # GPT-OSS: one learned logit per head that takes probability mass
        sink = (
            module.sinks.astype("float32")
            .reshape([1, -1, 1, 1])
            .expand([paddle.shape(scores)[0], -1, paddle.shape(scores)[2], 1])
        )
        scores = paddle.concat([scores, sink], axis=-1)
        probs = F.softmax(scores - scores.max(axis=-1, keepdim=True), axis=-1)[..., :-1]
    else:
        probs = _C.softmax(scores, -1)
    probs = _as(probs, q.dtype)
    if groups > 1:
        out = _matmul(_reshape(probs, [0, k.shape[1], -1, 0]), v)
        return _reshape(out, [0, module.num_heads, -1, v.shape[-1]])
    return _matmul(probs, v)


class Attention(FusableLinears, nn.Layer):
    """Multi-head / grouped-query attention with the optional parts families differ by:
    biases, q/k norms, partial or interleaved rope, soft-capping, sinks, sliding windows."""

    FUSE = {"qkv": ("q", "k", "v")}

    def __init__(self, cfg: DecoderConfig, layer_idx: int):
        super().__init__()
        self.num_heads, self.num_kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = hd = cfg.head_dim
        self.groups = cfg.num_key_value_groups
        self.scaling = cfg.attn_scale or hd**-0.5
        self.softcap = cfg.attn_softcap
        self.rotary_dim, self.interleave = cfg.rope_dim, cfg.rope_interleave
        h = cfg.hidden_size
        self.q = _linear(h, self.num_heads * hd, cfg.qkv_bias)
        self.k = _linear(h, self.num_kv_heads * hd, cfg.qkv_bias)
        self.v = _linear(h, self.num_kv_heads * hd, cfg.qkv_bias)
        self.o = _linear(self.num_heads * hd, h, cfg.o_bias)
        self.qkv = None  # see FusableLinears
        self.qk_norm = cfg.qk_norm
        if cfg.qk_norm:
            q_size, k_size = (
                (hd, hd) if cfg.qk_norm == "head" else (self.num_heads * hd, self.num_kv_heads * hd)
            )
            self.q_norm, self.k_norm = Norm(q_size, cfg), Norm(k_size, cfg)
        self.sinks = self.create_parameter([self.num_heads]) if cfg.attn_sinks else None

    def _heads_fused(self, x, cos, sin):
        """q, k, v ``[B, heads, S, D]`` from the fused projection: one reshape, one transpose,
        and (without per-head norms) the rotation of queries and keys together."""
        heads, kv = self.num_heads, self.num_kv_heads
        y = _transpose(_reshape(self.qkv(x), [0, 0, heads + 2 * kv, self.head_dim]), [0, 2, 1, 3])
        if self.qk_norm == "head":
            q, k, v = _split(y, [heads, kv, kv], 1)
            q, k = self.q_norm(q), self.k_norm(k)
            if cos is not None:
                q = apply_rotary(q, cos, sin, self.rotary_dim, self.interleave)
                k = apply_rotary(k, cos, sin, self.rotary_dim, self.interleave)
            return q, k, v
        qk, v = _split(y, [heads + kv, kv], 1)
        if cos is not None:  # None: learned absolute positions (GPT-2)
            qk = apply_rotary(qk, cos, sin, self.rotary_dim, self.interleave)
        q, k = _split(qk, [heads, kv], 1)
        return q, k, v

    def _heads(self, x, cos, sin):
        if self.qkv is not None and self.qk_norm != "full":
            return self._heads_fused(x, cos, sin)
        if self.qkv is not None:
            q, k, v = paddle.split(self.qkv(x), [n for _, n in self._fused["qkv"]], axis=-1)
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        if self.qk_norm == "full":  # OLMo 2: over all heads at once
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.reshape([0, 0, self.num_heads, self.head_dim])
        k = k.reshape([0, 0, self.num_kv_heads, self.head_dim])
        v = v.reshape([0, 0, self.num_kv_heads, self.head_dim])
        if self.qk_norm == "head":
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.transpose([0, 2, 1, 3]) for t in (q, k, v))  # [B, heads, S, D]
        if cos is not None:  # None: learned absolute positions (GPT-2)
            q = apply_rotary(q, cos, sin, self.rotary_dim, self.interleave)
            k = apply_rotary(k, cos, sin, self.rotary_dim, self.interleave)
        return q, k, v

    def forward(self, x, cos, sin, bias, past=None):
        q, k, v = self._heads(x, cos, sin)
        k, v = extend_cache(past, k, v)
        present = (k, v)
        out = _transpose(scaled_attention(self, q, k, v, bias, self.groups), [0, 2, 1, 3])
        return self.o(_reshape(out, [0, 0, self.num_heads * self.head_dim])), present


class LatentAttention(FusableLinears, nn.Layer):
    """DeepSeek-V2/V3 multi-head latent attention: q and kv through low-rank projections; the
    rope part of the key is shared by all heads.  The cache holds the expanded keys and values."""

    FUSE = {"qkv_a": ("q_a", "kv_a"), "q_kv_a": ("q", "kv_a")}  # with / without a q rank

    def __init__(self, cfg: DecoderConfig, layer_idx: int):
        super().__init__()
        m, h = cfg.mla, cfg.hidden_size
        self.num_heads = cfg.num_attention_heads
        self.nope, self.rope, self.v_dim = (
            m["qk_nope_head_dim"],
            m["qk_rope_head_dim"],
            m["v_head_dim"],
        )
        self.kv_rank = m["kv_lora_rank"]
        qk_dim = self.nope + self.rope
        self.scaling = cfg.attn_scale or qk_dim**-0.5
        self.softcap, self.sinks, self.interleave = 0.0, None, cfg.rope_interleave
        if m["q_lora_rank"]:
            self.q_a = _linear(h, m["q_lora_rank"], cfg.qkv_bias)
            self.q_a_norm = Norm(m["q_lora_rank"], cfg, m.get("latent_norm_eps"))
            self.q_b = _linear(m["q_lora_rank"], self.num_heads * qk_dim, False)
            self.q = None
        else:
            self.q = _linear(h, self.num_heads * qk_dim, False)
            self.q_a = None
        self.kv_a = _linear(h, self.kv_rank + self.rope, cfg.qkv_bias)
        self.kv_a_norm = Norm(self.kv_rank, cfg, m.get("latent_norm_eps"))
        self.kv_b = _linear(self.kv_rank, self.num_heads * (self.nope + self.v_dim), False)
        self.o = _linear(self.num_heads * self.v_dim, h, cfg.o_bias)
        self.qkv_a = self.q_kv_a = None  # see FusableLinears

    def forward(self, x, cos, sin, bias, past=None):
        name = "qkv_a" if self.qkv_a is not None else "q_kv_a"
        fused = getattr(self, name)
        if fused is not None:
            q, compressed = _split(fused(x), [n for _, n in self._fused[name]], -1)
            if self.qkv_a is not None:
                q = self.q_b(self.q_a_norm(q))
        else:
            q = self.q(x) if self.q is not None else self.q_b(self.q_a_norm(self.q_a(x)))
            compressed = self.kv_a(x)
        q = q.reshape([0, 0, self.num_heads, self.nope + self.rope]).transpose([0, 2, 1, 3])
        kv = self.kv_b(self.kv_a_norm(compressed[..., : self.kv_rank]))
        kv = kv.reshape([0, 0, self.num_heads, self.nope + self.v_dim]).transpose([0, 2, 1, 3])
        k_nope, v = kv[..., : self.nope], kv[..., self.nope :]
        k_rot = compressed[..., self.kv_rank :].unsqueeze(1)  # [B, 1, S, R]
        q_rot = apply_rotary(q[..., self.nope :], cos, sin, self.rope, self.interleave)
        k_rot = apply_rotary(k_rot, cos, sin, self.rope, self.interleave)
        q = paddle.concat([q[..., : self.nope], q_rot], axis=-1)
        k = paddle.concat([k_nope, k_rot.expand([-1, self.num_heads, -1, -1])], axis=-1)
        k, v = extend_cache(past, k, v)
        out = scaled_attention(self, q, k, v, bias).transpose([0, 2, 1, 3])
        return self.o(out.reshape([0, 0, self.num_heads * self.v_dim])), (k, v)


class FFNActivation:
    """What a feed-forward layer applies between its two projections: ``act(h)`` (plain), or
    ``act(gate) * up`` of the fused ``[gate, up]`` product (gated).

    ``clamp`` (GPT-OSS experts): ``(clip(up) + 1) * g * sigmoid(alpha * g)`` with
    ``g = min(gate, limit)``.
    """

    def __init__(self, name: str, gated: bool, clamp: tuple | None = None):
        self.act, self.gated, self.clamp = activation(name), gated, clamp
        self.swiglu = name in ("silu", "swish") and clamp is None and _swiglu is not None

    def __call__(self, h):
        if not self.gated:
            return self.act(h)
        if self.swiglu and not paddle.in_dynamic_mode():
            return _swiglu(h)  # export: see _swiglu (h holds [gate, up], the halves it expects)
        gate, up = _split(h, 2, -1)
        return self.pair(gate, up)

    def pair(self, gate, up):
        if self.clamp is not None:
            alpha, limit = self.clamp
            gate = paddle.clip(gate, max=limit)
            up = paddle.clip(up, min=-limit, max=limit)
            return (up + 1.0) * (gate * F.sigmoid(gate * alpha))
        return self.act(gate) * up


class MLP(FusableLinears, nn.Layer):
    """Gated (``down(act(gate(x)) * up(x))``) or plain (``down(act(up(x)))``) feed-forward;
    see :class:`FFNActivation`."""

    FUSE = {"gate_up": ("gate", "up")}

    def __init__(
        self, cfg: DecoderConfig, intermediate: int, bias: bool, clamp: tuple | None = None
    ):
        super().__init__()
        self.gate_up = None  # see FusableLinears
        h = cfg.hidden_size
        self.gate = _linear(h, intermediate, bias) if cfg.mlp_gated else None
        self.up = _linear(h, intermediate, bias)
        self.down = _linear(intermediate, h, bias)
        self.activation = FFNActivation(cfg.hidden_act, cfg.mlp_gated, clamp)

    def forward(self, x):
        if self.gate_up is not None:
            return self.down(self.activation(self.gate_up(x)))
        if self.gate is None:
            return self.down(self.activation(self.up(x)))
        return self.down(self.activation.pair(self.gate(x), self.up(x)))


class StackedLinear(nn.Layer):
    """One projection of every expert of a MoE layer, stacked: ``weight [E, in, out]`` and
    ``bias [E, out]`` (or none), run by the grouped matrix-product kernel
    (:mod:`x2paddle_llm.kernels`) on rows sorted by expert."""

    def __init__(self, linears):
        super().__init__()
        self._grouped = kernels.op("x2pl_grouped_matmul")  # see kernels.grouped_matmul
        weight = paddle.stack([m.weight for m in linears])
        self.weight = self.create_parameter(weight.shape, dtype=weight.dtype)
        self.weight.set_value(weight)
        del weight
        self.bias = None
        if linears[0].bias is not None:
            bias = paddle.stack([m.bias for m in linears])
            self.bias = self.create_parameter(bias.shape, dtype=bias.dtype, is_bias=True)
            self.bias.set_value(bias)

    def forward(self, x, bounds, expert_ids):
        """``x [N, in]`` rows sorted by expert, ``bounds [E + 1]`` each expert's first row,
        ``expert_ids [N]`` each row's expert (for the bias)."""
        out = self._grouped(x, bounds, self.weight)
        return out if self.bias is None else out + paddle.gather(self.bias, expert_ids)


class MoE(nn.Layer):
    """Top-k mixture of experts with the routing variants of Mixtral, Qwen-MoE, DeepSeek, OLMoE,
    ERNIE 4.5 and GPT-OSS: softmax or sigmoid scores, a selection-only score bias,
    group-limited selection, renormalised top-k, a routed scaling factor, shared experts with
    an optional sigmoid gate.

    Every path dispatches sparsely, each expert on the tokens that chose it:

    * stacked (:meth:`stack_experts`, done by ``from_pretrained`` when the compiled kernel is
      available, :mod:`x2paddle_llm.kernels`): the ``(token, expert)`` pairs sorted by expert,
      each projection of all experts one grouped matrix product over the stacked weights
      (:class:`StackedLinear`), eagerly and in exports alike: about 16 operators per
      layer, however many experts;
    * otherwise eagerly only the chosen experts run (as transformers does), and the exported
      program runs every expert on its slice of the sorted pairs, empty for the experts nobody
      chose (four operators per expert and step).
    """

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        m = cfg.moe
        self.num_experts, self.top_k = m["num_experts"], m["top_k"]
        self.scoring = m.get("scoring", "softmax")
        self.norm_topk = m.get("norm_topk_prob", True)
        self.norm_eps = m.get("norm_eps", 0.0)
        self.scale = m.get("routed_scaling_factor", 1.0)
        self.n_group, self.topk_group = m.get("n_group", 1) or 1, m.get("topk_group", 1) or 1
        self.group_score = m.get("group_score", "top2_sum")
        self.router = _linear(cfg.hidden_size, self.num_experts, m.get("router_bias", False))
        if m.get("score_bias"):
            self.router.score_bias = self.router.create_parameter(
                [self.num_experts], default_initializer=nn.initializer.Constant(0.0)
            )
        self.has_score_bias = bool(m.get("score_bias"))
        clamp = (m["swiglu_alpha"], m["swiglu_limit"]) if m.get("swiglu_limit") else None
        self.experts = nn.LayerList(
            [
                MLP(cfg, m["moe_intermediate_size"], m.get("expert_bias", False), clamp)
                for _ in range(self.num_experts)
            ]
        )
        self.shared = (
            MLP(cfg, m["shared_intermediate_size"], False)
            if m.get("shared_intermediate_size")
            else None
        )
        self.shared_gate = (
            _linear(cfg.hidden_size, 1, False) if m.get("shared_gate") and self.shared else None
        )
        self.stacked_in = self.stacked_down = None  # see stack_experts
        self._fused = {}

    def stack_experts(self) -> bool:
        """Replace the experts' projections by two stacked ones (``stacked_in``: the fused
        gate/up, or up; ``stacked_down``) run by the grouped kernel, after fusing. Whether the
        layer is stacked: not when the kernel is off or cannot be built here, or the experts'
        projections differ in kind. The published names stay the experts' own
        (:meth:`published_parts`)."""
        if self.stacked_in is not None:
            return True
        experts = list(self.experts)
        first = experts[0].activation
        ins = [m.gate_up if first.gated else m.up for m in experts]
        downs = [m.down for m in experts]
        if (
            any(p is None for p in ins)
            or any(str(p.weight.dtype) != "paddle.float32" for p in ins + downs)
            or len({p.bias is None for p in ins}) != 1
            or len({p.bias is None for p in downs}) != 1
        ):
            return False
        if not kernels.available():
            return False
        self.expert_activation = first
        self.stacked_in, self.stacked_down = StackedLinear(ins), StackedLinear(downs)
        # what each stacked tensor holds per expert: [(projection, width)] along its last axis
        self._fused = {
            "stacked_in": list(experts[0]._fused["gate_up"]) if first.gated else [("up", 0)],
            "stacked_down": [("down", 0)],
        }
        delattr(self, "experts")  # the stacks now hold the only copy
        self.experts = None
        return True

    def published_parts(self, fused_name: str, suffix: str, value):
        """``[(published suffix, tensor)]`` of one stacked tensor: each expert's projection(s)
        under ``experts.<e>.``."""
        parts = self._fused[fused_name]
        out = []
        for e in range(value.shape[0]):
            pieces = (
                [value[e]] if len(parts) == 1 else paddle.split(value[e], [n for _, n in parts], -1)
            )
            out += [(f"experts.{e}.{p}.{suffix}", t) for (p, _), t in zip(parts, pieces)]
        return out

    def routing(self, x2d):
        """The chosen experts ``[T, k]`` and their weights ``[T, k]`` (float32)."""
        # _as: no cast op for float32 models (one op saved per MoE layer per step each)
        logits = paddle.matmul(_as(x2d, F32), _as(self.router.weight, F32))
        if self.router.bias is not None:
            logits = logits + _as(self.router.bias, F32)
        scores = F.sigmoid(logits) if self.scoring == "sigmoid" else F.softmax(logits, axis=-1)
        choice = scores + _as(self.router.score_bias, F32) if self.has_score_bias else scores
        if self.n_group > 1:
            grouped = choice.reshape([-1, self.n_group, self.num_experts // self.n_group])
            if self.group_score == "max":
                group_scores = grouped.max(axis=-1)
            else:
                group_scores = paddle.topk(grouped, 2, axis=-1)[0].sum(axis=-1)
            group_idx = paddle.topk(group_scores, self.topk_group, axis=-1)[1]
            group_mask = F.one_hot(group_idx, self.n_group).sum(axis=1)  # [T, G]
            expert_mask = (
                group_mask.unsqueeze(-1).expand_as(grouped).reshape([-1, self.num_experts])
            )
            choice = paddle.where(
                expert_mask > 0, choice, paddle.full([], float("-inf"), "float32")
            )
        if self.has_score_bias:  # chosen by biased scores, weighted by the unbiased ones
            top_idx = paddle.topk(choice, self.top_k, axis=-1)[1]
            top_w = paddle.take_along_axis(scores, top_idx, axis=-1)
        else:  # the top-k values are the chosen scores (group masking never hides a chosen one)
            top_w, top_idx = paddle.topk(choice, self.top_k, axis=-1)
        if self.norm_topk:
            total = top_w.sum(axis=-1, keepdim=True)
            top_w = top_w / (total + self.norm_eps if self.norm_eps else total)
        return top_idx, (top_w * self.scale if self.scale != 1.0 else top_w)

    def _dispatch_eager(self, x2d, top_idx, top_w):
        """Only the experts some token chose run. With a few tokens (decoding) they run on all
        of them, weighted by the routing weight (zero where not chosen): no gathers; with many
        (prefill) each runs on its own tokens only (gather / index_add)."""
        chosen = F.one_hot(top_idx, self.num_experts)  # [T, k, E]
        weights = _as((chosen * top_w.unsqueeze(-1)).sum(axis=1), x2d.dtype)  # [T, E]
        chosen = chosen.sum(axis=1)
        out = paddle.zeros_like(x2d)
        hit = np.nonzero(chosen.sum(axis=0).numpy())[0].tolist()
        few = x2d.shape[0] <= 4
        for e in hit:
            if few:
                out = out + self.experts[e](x2d) * weights[:, e : e + 1]
                continue
            rows = paddle.nonzero(chosen[:, e]).flatten()
            y = self.experts[e](paddle.gather(x2d, rows))
            out = paddle.index_add(
                out, rows, 0, y * paddle.gather(weights[:, e], rows).unsqueeze(-1)
            )
        return out

    def _dispatch_sorted(self, x2d, top_idx, top_w):
        """Graph-friendly sparse dispatch (stacked experts, and exports): the ``T * k`` (token,
        expert) pairs are sorted by expert; stacked, each projection of all experts is one
        grouped product over them (an expert nobody chose costs nothing); otherwise each expert
        runs on its contiguous slice (possibly empty: a zero-row matmul costs nothing but its
        dispatch). The outputs are weighted by their routing weights together and added back to
        their tokens by one ``index_add``.

        No conditional blocks and no per-expert gathers or scatters (measured: a conditional
        block per expert cost the predictor more than the expert itself, and a nonzero / gather
        / index_add per expert about 3 ms a step on the 8-layer benchmark). The slice bounds
        come from one ``searchsorted`` of the sorted expert ids (instead of counting them with
        a one-hot sum and a cumulative sum), and the outputs return to their tokens by one
        ``index_add`` (instead of an inverse permutation, a gather and a sum over ``k``).
        """
        flat = top_idx.flatten()  # [T * k]
        order = paddle.argsort(flat, stable=True)
        experts = paddle.gather(flat, order)  # each sorted pair's expert
        rows = order // self.top_k  # each sorted pair's token
        # first pair of each expert (and the end): [E + 1]
        bounds = paddle.searchsorted(
            experts, paddle.arange(self.num_experts + 1, dtype=experts.dtype)
        )
        xs = paddle.gather(x2d, rows)  # rows grouped by expert
        if self.stacked_in is not None:
            h = self.expert_activation(self.stacked_in(xs, bounds, experts))
            ys = self.stacked_down(h, bounds, experts)
        else:
            # [1]-shaped bounds, which slice takes as they are (0-d scalars would each cost a
            # stack op)
            ends = paddle.split(bounds, self.num_experts + 1)
            ys = paddle.concat(
                [
                    expert(paddle.slice(xs, axes=[0], starts=ends[e], ends=ends[e + 1]))
                    for e, expert in enumerate(self.experts)
                ],
                axis=0,
            )
        ys = ys * paddle.gather(_as(top_w, x2d.dtype).flatten(), order).unsqueeze(-1)
        return paddle.index_add(paddle.zeros_like(x2d), rows, 0, ys)

    def forward(self, x):
        shape = paddle.shape(x)
        x2d = x.reshape([-1, x.shape[-1]])
        top_idx, top_w = self.routing(x2d)
        if self.stacked_in is None and paddle.in_dynamic_mode():
            out = self._dispatch_eager(x2d, top_idx, top_w)
        else:
            out = self._dispatch_sorted(x2d, top_idx, top_w)
        if self.shared is not None:
            shared = self.shared(x2d)
            if self.shared_gate is not None:
                shared = F.sigmoid(self.shared_gate(x2d)) * shared
            out = out + shared
        return out.reshape(shape)


class Block(nn.Layer):
    """One decoder layer: pre-norm, sandwich (extra post norms), post-norm or parallel."""

    def __init__(self, cfg: DecoderConfig, layer_idx: int):
        super().__init__()
        for name in ("attn_norm", "post_attn_norm", "mlp_norm", "post_mlp_norm"):
            setattr(self, name, Norm(cfg.hidden_size, cfg) if name in cfg.layer_norms else None)
        self.attn = (LatentAttention if cfg.mla else Attention)(cfg, layer_idx)
        self.is_moe = bool(cfg.moe) and cfg.moe_layers[layer_idx]
        if self.is_moe:
            self.moe = MoE(cfg)
        else:
            self.mlp = MLP(cfg, cfg.intermediate_size, cfg.mlp_bias)
        self.parallel = cfg.parallel_block
        self.residual_scale = cfg.residual_scale
        self.layer_type = cfg.layer_types[layer_idx]

    def _ffn(self, x):
        return self.moe(x) if self.is_moe else self.mlp(x)

    def forward(self, x, cos, sin, bias, past=None):
        h = self.attn_norm(x) if self.attn_norm is not None else x
        attn, present = self.attn(h, cos, sin, bias, past)
        if self.parallel:
            m = self.mlp_norm(x) if self.mlp_norm is not None else h
            return x + attn + self._ffn(m), present
        if self.post_attn_norm is not None:
            attn = self.post_attn_norm(attn)
        x = x + attn * self.residual_scale if self.residual_scale != 1.0 else x + attn
        h = self.mlp_norm(x) if self.mlp_norm is not None else x
        out = self._ffn(h)
        if self.post_mlp_norm is not None:
            out = self.post_mlp_norm(out)
        return (x + out * self.residual_scale if self.residual_scale != 1.0 else x + out), present
