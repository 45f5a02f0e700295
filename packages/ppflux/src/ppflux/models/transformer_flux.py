"""FLUX.1 transformer (MMDiT double-stream + single-stream blocks) for Paddle.

Module and parameter names follow diffusers' ``FluxTransformer2DModel`` exactly, so a
diffusers state dict maps key for key (``nn.Linear`` weights transposed, see
``ppflux.models.loading``). The numerics follow diffusers 0.42 op for op (see the
comments marked "order"), because fp32 parity within 1e-5 depends on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._compat import require_paddle

paddle = require_paddle()
import paddle.nn as nn  # noqa: E402
import paddle.nn.functional as F  # noqa: E402
from ppdiffusers.configuration_utils import ConfigMixin, register_to_config  # noqa: E402

from ..cache import CacheMixin  # noqa: E402
from ._allocator import tune_cpu_allocator  # noqa: E402
from ._linear import Linear  # noqa: E402
from .loading import FluxLoadingMixin  # noqa: E402

tune_cpu_allocator()  # Paddle's CPU activations on the heap, not fresh mmap pages (see there)


# ----------------------------------------------------------------------------- elementwise
# Paddle 3.3.1's CPU elementwise kernels take a slow generic path when one operand is
# broadcast along an axis that is not its last or one of its missing leading axes: multiplying
# [1, 1280, 3072] by [1, 1, 3072] took 21 ms, expanding the small operand first and multiplying
# same-shape tensors 2.6 ms (benchmarks/bench_speed.py); on the tiny training model's
# [1, 80, 32] by [1, 1, 32] 20 us against 8 us for expand + multiply, 60 us against 27 us
# forward + backward (ppflux 0.5.3). The two fast broadcasts are a lower-rank operand matching
# the trailing axes ([D] against [B, S, D]) and a trailing axis of 1 ([B, S, H, 1] against
# [B, S, H, D], the RMS norm's scale): there the extra ``expand`` (one more op forward and
# backward) costs more than it saves, below this many elements. The expanded operand holds the
# same values, so results are bit-identical; on GPU the broadcast kernels are fast and the
# operands are used as they are.
_EXPAND_MIN_NUMEL = 1 << 16


# The last single block leaves out its text tokens' MLP and output projection (their outputs
# are discarded) from this many text elements on; below, the two splits it adds and their
# gradient nodes cost about what the skipped rows save (tiny test model, forward + backward).
_SKIP_TEXT_MIN_NUMEL = 1 << 16


def _fast_broadcast(y_shape, x_shape):
    """Whether Paddle's CPU kernel broadcasts ``y_shape`` to ``x_shape`` on its fast path."""
    n = len(y_shape)
    if n < len(x_shape):
        return y_shape == x_shape[len(x_shape) - n :]
    return n == len(x_shape) and y_shape[-1] == 1 and y_shape[:-1] == x_shape[:-1]


def _full(y, x):
    """``y`` expanded to ``x``'s shape where Paddle's CPU broadcast would be slow (``x`` on the
    CPU, the broadcast not a fast one, or ``x`` large)."""
    shape = x.shape
    y_shape = y.shape
    if y_shape == shape or not x.place.is_cpu_place():
        return y
    # math.prod of the shape: Tensor.size goes through numpy and costs more than a small op
    if not _fast_broadcast(y_shape, shape) or math.prod(shape) >= _EXPAND_MIN_NUMEL:
        return y.expand(shape)
    return y


def _cast(x, dtype):
    """``x.astype(dtype)`` without the copy (a cast kernel, and its backward node) when ``x``
    already has that dtype: Paddle's ``astype`` runs the kernel even then."""
    return x if x.dtype == dtype else x.astype(dtype)


def _mul(x, y):
    """``x * y`` for a full-size ``x`` and a broadcastable ``y``."""
    return x * _full(y, x)


def _add(x, y):
    """``x + y`` for a full-size ``x`` and a broadcastable ``y``."""
    return x + _full(y, x)


def _modulate(x, scale, shift):
    """``x * (1 + scale) + shift`` with ``[B, 1, D]`` scale and shift (diffusers' order)."""
    return _add(_mul(x, 1 + scale), shift)


# ----------------------------------------------------------------------------- normalisation
class RMSNorm(nn.Layer):
    """RMS norm over the last axis with a learnable weight; the variance is taken in fp32."""

    def __init__(self, dim: int, eps: float = 1e-6, elementwise_affine: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = (
            self.create_parameter([dim], default_initializer=nn.initializer.Constant(1.0))
            if elementwise_affine
            else None
        )

    def forward(self, x):
        if x.dtype == paddle.float64:
            return self._forward_float64(x)
        dtype = x.dtype
        x32 = _cast(x, paddle.float32)
        # square, not pow(2): the same float32 values, but Paddle's CPU pow kernel took 13%
        # of a whole transformer step (benchmarks/bench_speed.py, profiled)
        variance = paddle.square(x32).mean(-1, keepdim=True)
        x = _mul(x32, paddle.rsqrt(variance + self.eps))
        if self.weight is not None:
            x = _mul(_cast(x, self.weight.dtype), self.weight)
        return _cast(x, dtype)

    def _forward_float64(self, x):
        """As diffusers' RMSNorm with float64 input: the variance in fp32, the product in float64
        (float64 training parity tests)."""
        variance = x.astype("float32").pow(2).mean(-1, keepdim=True)
        x = x * paddle.rsqrt(variance + self.eps).astype(x.dtype)
        if self.weight is not None:
            x = x * self.weight.astype(x.dtype)
        return x


def _layer_norm(dim: int, eps: float = 1e-6):
    """LayerNorm without affine parameters (no weight, no bias key)."""
    return nn.LayerNorm(dim, epsilon=eps, weight_attr=False, bias_attr=False)


class AdaLayerNormZero(nn.Layer):
    """6-way modulation: (shift, scale, gate) for attention and for the MLP."""

    def __init__(self, embedding_dim: int, bias: bool = True):
        super().__init__()
        self.silu = nn.Silu()
        self.linear = Linear(embedding_dim, 6 * embedding_dim, bias_attr=bias)
        self.norm = _layer_norm(embedding_dim)

    def forward(self, x, emb):
        # [B, 1, 6 D]: the six chunks come out [B, 1, D], ready to broadcast over the tokens
        # (one unsqueeze instead of one per chunk)
        emb = self.linear(self.silu(emb)).unsqueeze(1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = emb.chunk(6, axis=2)
        x = _modulate(self.norm(x), scale_msa, shift_msa)
        return x, gate_msa, shift_mlp, scale_mlp, gate_mlp


class AdaLayerNormZeroSingle(nn.Layer):
    """3-way modulation (shift, scale, gate) of the single-stream blocks."""

    def __init__(self, embedding_dim: int, bias: bool = True):
        super().__init__()
        self.silu = nn.Silu()
        self.linear = Linear(embedding_dim, 3 * embedding_dim, bias_attr=bias)
        self.norm = _layer_norm(embedding_dim)

    def forward(self, x, emb):
        emb = self.linear(self.silu(emb)).unsqueeze(1)
        shift_msa, scale_msa, gate_msa = emb.chunk(3, axis=2)
        x = _modulate(self.norm(x), scale_msa, shift_msa)
        return x, gate_msa


class AdaLayerNormContinuous(nn.Layer):
    """Final norm: chunks are (scale, shift) as in diffusers; no affine LayerNorm, no bias key."""

    def __init__(
        self,
        embedding_dim: int,
        conditioning_embedding_dim: int,
        eps: float = 1e-6,
        bias: bool = True,
    ):
        super().__init__()
        self.silu = nn.Silu()
        self.linear = Linear(conditioning_embedding_dim, embedding_dim * 2, bias_attr=bias)
        self.norm = _layer_norm(embedding_dim, eps)

    def forward(self, x, conditioning_embedding):
        emb = self.linear(_cast(self.silu(conditioning_embedding), x.dtype)).unsqueeze(1)
        scale, shift = emb.chunk(2, axis=2)
        return _modulate(self.norm(x), scale, shift)


# ----------------------------------------------------------------------------- embeddings
def get_timestep_embedding(
    timesteps,
    embedding_dim: int,
    flip_sin_to_cos: bool = True,
    downscale_freq_shift: float = 0.0,
    scale: float = 1.0,
    max_period: int = 10000,
):
    """Sinusoidal timestep features (cos first when ``flip_sin_to_cos``), as diffusers.

    Computed on the host in float64 and rounded to float32 after each op that torch does in
    float32, so exp/sin/cos are correctly rounded. Paddle's float32 ``exp`` differs from torch's
    by 1 ulp on about a quarter of the 128 frequencies, and multiplied by t=750 that alone puts
    6e-5 into the embedding (research note, pitfall 3); correctly rounded values leave 2 ulps.
    The features have no parameters, so nothing is lost for autograd.
    """
    half_dim = embedding_dim // 2
    exponent = np.float32(-math.log(max_period)) * np.arange(0, half_dim, dtype=np.float32)
    exponent = (exponent / np.float32(half_dim - downscale_freq_shift)).astype(np.float32)
    freqs = np.exp(exponent.astype(np.float64)).astype(np.float32)
    t = (
        timesteps.astype("float32").numpy().reshape(-1)
        if isinstance(timesteps, paddle.Tensor)
        else np.asarray(timesteps, np.float32).reshape(-1)
    )
    args = (t[:, None] * freqs[None, :]).astype(np.float32)
    if scale != 1:
        args = (np.float32(scale) * args).astype(np.float32)
    sin = np.sin(args.astype(np.float64)).astype(np.float32)
    cos = np.cos(args.astype(np.float64)).astype(np.float32)
    emb = np.concatenate([cos, sin] if flip_sin_to_cos else [sin, cos], axis=-1)
    if embedding_dim % 2 == 1:
        emb = np.pad(emb, [(0, 0), (0, 1)])
    return paddle.to_tensor(emb)


class Timesteps(nn.Layer):
    def __init__(
        self,
        num_channels: int = 256,
        flip_sin_to_cos: bool = True,
        downscale_freq_shift: float = 0.0,
    ):
        super().__init__()
        self.num_channels = num_channels
        self.flip_sin_to_cos = flip_sin_to_cos
        self.downscale_freq_shift = downscale_freq_shift

    def forward(self, timesteps):
        return get_timestep_embedding(
            timesteps, self.num_channels, self.flip_sin_to_cos, self.downscale_freq_shift
        )


class TimestepEmbedding(nn.Layer):
    """linear_1 -> SiLU -> linear_2 (also used for the guidance and pooled-text paths)."""

    def __init__(self, in_channels: int, time_embed_dim: int):
        super().__init__()
        self.linear_1 = Linear(in_channels, time_embed_dim)
        self.act = nn.Silu()
        self.linear_2 = Linear(time_embed_dim, time_embed_dim)

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class CombinedTimestepTextProjEmbeddings(nn.Layer):
    """schnell: temb = timestep_embedder(t) + text_embedder(pooled)."""

    def __init__(self, embedding_dim: int, pooled_projection_dim: int):
        super().__init__()
        self.time_proj = Timesteps(256, True, 0)
        self.timestep_embedder = TimestepEmbedding(256, embedding_dim)
        self.text_embedder = TimestepEmbedding(pooled_projection_dim, embedding_dim)

    def forward(self, timestep, pooled_projection):
        t_emb = self.timestep_embedder(_cast(self.time_proj(timestep), pooled_projection.dtype))
        return t_emb + self.text_embedder(pooled_projection)


class CombinedTimestepGuidanceTextProjEmbeddings(nn.Layer):
    """dev: temb = t_emb + guidance_emb + text_proj(pooled)."""

    def __init__(self, embedding_dim: int, pooled_projection_dim: int):
        super().__init__()
        self.time_proj = Timesteps(256, True, 0)
        self.timestep_embedder = TimestepEmbedding(256, embedding_dim)
        self.guidance_embedder = TimestepEmbedding(256, embedding_dim)
        self.text_embedder = TimestepEmbedding(pooled_projection_dim, embedding_dim)

    def forward(self, timestep, guidance, pooled_projection):
        dtype = pooled_projection.dtype
        t_emb = self.timestep_embedder(_cast(self.time_proj(timestep), dtype))
        g_emb = self.guidance_embedder(_cast(self.time_proj(guidance), dtype))
        return (t_emb + g_emb) + self.text_embedder(pooled_projection)


def rope_cos_sin(ids: np.ndarray, axes_dim, theta: float = 10000.0):
    """RoPE tables for (S, n_axes) position ids: float64 angles, pairs repeated, then float32."""
    cos_parts, sin_parts = [], []
    pos_all = np.asarray(ids, dtype=np.float32)
    for i, dim in enumerate(axes_dim):
        freqs = 1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float64)[: dim // 2] / dim))
        angles = np.outer(pos_all[:, i].astype(np.float64), freqs)
        cos_parts.append(np.repeat(np.cos(angles), 2, axis=1).astype(np.float32))
        sin_parts.append(np.repeat(np.sin(angles), 2, axis=1).astype(np.float32))
    return np.concatenate(cos_parts, axis=-1), np.concatenate(sin_parts, axis=-1)


class FluxPosEmbed(nn.Layer):
    def __init__(self, theta: int, axes_dim):
        super().__init__()
        self.theta = theta
        self.axes_dim = list(axes_dim)

    def forward(self, ids):
        ids_np = ids.numpy() if isinstance(ids, paddle.Tensor) else np.asarray(ids)
        # the tables of the last ids are kept: every denoising or training step of one size
        # asks for the same ones (nothing writes into them; they carry no gradient)
        key = (paddle.get_device(), ids_np.shape, str(ids_np.dtype), ids_np.tobytes())
        cached = self.__dict__.get("_tables")
        if cached is None or cached[0] != key:
            cos, sin = rope_cos_sin(ids_np, self.axes_dim, self.theta)
            cached = (key, RopeTables((paddle.to_tensor(cos), paddle.to_tensor(sin))))
            self.__dict__["_tables"] = cached
        return cached[1]


# Tables expanded to a query's [B, S, H, D] are kept up to this many elements each (4 MB in
# fp32); larger ones are expanded per use, as before, so that they do not stay in memory.
_KEEP_FULL_TABLES_MAX_NUMEL = 1 << 20


class RopeTables(tuple):
    """``(cos, sin)`` of shape ``[S, D]`` that also keeps their expansions to the
    ``[B, S, H, D]`` shapes asked for on the CPU (every query and key of a forward has the
    same shape; the tables carry no gradient and nothing writes into them)."""

    def full(self, x):
        """``(cos, sin)`` broadcastable to (on the CPU: expanded to) ``x``'s shape."""
        on_cpu = x.place.is_cpu_place()
        kept = self.__dict__.setdefault("_full", {})
        shape = x.shape
        key = tuple(shape)
        tables = kept.get(key) if on_cpu else None
        if tables is None:
            cos, sin = (t[None, :, None, :] for t in self)
            if not on_cpu:
                return cos, sin
            tables = (_full(cos, x), _full(sin, x))
            if math.prod(shape) <= _KEEP_FULL_TABLES_MAX_NUMEL:
                kept.clear()
                kept[key] = tables
        return tables


_PAIR_ROTATIONS = {}


def _pair_rotation(dtype):
    """The 2 x 2 matrix that takes a row (a, b) to (-b, a), one per dtype (CPU)."""
    key = str(dtype)
    matrix = _PAIR_ROTATIONS.get(key)
    if matrix is None:
        matrix = paddle.to_tensor(np.array([[0.0, 1.0], [-1.0, 0.0]]), dtype=dtype)
        _PAIR_ROTATIONS[key] = matrix
    return matrix


def _rotate_pairs(x):
    """The (even, odd) pairs of the last axis, (a, b) -> (-b, a)."""
    shape = x.shape
    if x.place.is_cpu_place():
        # one [N, 2] x [2, 2] matmul with a 0/+-1 matrix: each output is one input times +-1
        # plus exact zeros, so the values (and the gradient, the transposed product) equal the
        # unbind/negate/stack below, in one op forward and one backward instead of three
        # (an inf or nan in a pair would spread to its partner; finite inputs are exact).
        # Not on GPUs, where fp32 matmuls may run in TF32.
        return paddle.matmul(x.reshape([-1, 2]), _pair_rotation(x.dtype)).reshape(shape)
    x_real, x_imag = x.reshape([*shape[:-1], shape[-1] // 2, 2]).unbind(-1)
    return paddle.stack([-x_imag, x_real], axis=-1).reshape(shape)


def apply_rotary_emb(x, freqs_cis):
    """x: [B, S, H, D]; freqs (cos, sin): [S, D]; rotation of (even, odd) pairs in fp32."""
    if isinstance(freqs_cis, RopeTables):
        cos, sin = freqs_cis.full(x)
    else:
        cos, sin = (t[None, :, None, :] for t in freqs_cis)
    x_rotated = _rotate_pairs(x)
    x32 = x if x.dtype == paddle.float32 else x.astype("float32")
    if x_rotated.dtype != paddle.float32:
        x_rotated = x_rotated.astype("float32")
    out = _mul(x32, cos) + _mul(x_rotated, sin)
    return out if out.dtype == x.dtype else out.astype(x.dtype)


# ----------------------------------------------------------------------------- attention
# Up to this many attention scores (all heads, 4 MB in fp32) the heads run in one batched
# matmul-softmax-matmul; above it, one head at a time (its scores stay in cache).
_ALL_HEADS_MAX_SCORES = 1 << 20


def scaled_dot_product_attention(query, key, value, attn_mask=None):
    """Attention on ``[B, S, H, D]`` tensors (the layout of diffusers' ``dispatch_attention_fn``).

    On CPU, one head at a time: Paddle 3.3.1's CPU ``scaled_dot_product_attention`` is an
    unfused matmul-softmax-matmul over all heads at once, and the same three ops head by head
    measured 2x faster at 1152 tokens (one head's [S, S] scores stay in cache) with identical
    values; short sequences (up to ``_ALL_HEADS_MAX_SCORES`` scores) take all heads at once.
    Elsewhere, and with a mask, Paddle's own (fused on GPU).
    """
    if attn_mask is not None or not query.place.is_cpu_place():
        return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)
    b, s, n_heads, d = query.shape
    # [B, H, S, D] copies, so that each head's slice is contiguous for the matmuls
    q = (query * d**-0.5).transpose([0, 2, 1, 3]).contiguous()
    k = key.transpose([0, 2, 1, 3]).contiguous()
    v = value.transpose([0, 2, 1, 3]).contiguous()
    # in place when nothing records gradients (the scores are not needed afterwards)
    softmax = F.softmax if paddle.is_grad_enabled() else F.softmax_
    if b * n_heads * s * s <= _ALL_HEADS_MAX_SCORES:
        # small: all heads in three ops (the per-head loop's ops cost more than its arithmetic)
        scores = paddle.matmul(q, k, transpose_y=True)
        return paddle.matmul(softmax(scores, axis=-1), v).transpose([0, 2, 1, 3])
    heads = []
    for h in range(n_heads):
        scores = paddle.matmul(q[:, h], k[:, h], transpose_y=True)
        heads.append(paddle.matmul(softmax(scores, axis=-1), v[:, h]))
    # heads side by side on the last axis is [B, S, H * D], i.e. [B, S, H, D] reshaped
    return paddle.concat(heads, axis=-1).reshape([b, -1, n_heads, d])


class FluxAttention(nn.Layer):
    """Joint attention with RMS QK-norm; ``pre_only`` drops ``to_out`` (single blocks)."""

    def __init__(
        self,
        query_dim: int,
        heads: int,
        dim_head: int,
        bias: bool = True,
        added_kv_proj_dim: int | None = None,
        added_proj_bias: bool = True,
        out_bias: bool = True,
        eps: float = 1e-6,
        out_dim: int | None = None,
        pre_only: bool = False,
    ):
        super().__init__()
        self.heads = heads
        self.head_dim = dim_head
        self.inner_dim = out_dim if out_dim is not None else dim_head * heads
        self.out_dim = out_dim if out_dim is not None else query_dim
        self.pre_only = pre_only
        self.added_kv_proj_dim = added_kv_proj_dim
        self.norm_q = RMSNorm(dim_head, eps)
        self.norm_k = RMSNorm(dim_head, eps)
        self.to_q = Linear(query_dim, self.inner_dim, bias_attr=bias)
        self.to_k = Linear(query_dim, self.inner_dim, bias_attr=bias)
        self.to_v = Linear(query_dim, self.inner_dim, bias_attr=bias)
        if not pre_only:
            self.to_out = nn.LayerList(
                [Linear(self.inner_dim, self.out_dim, bias_attr=out_bias), nn.Dropout(0.0)]
            )
        if added_kv_proj_dim is not None:
            self.norm_added_q = RMSNorm(dim_head, eps)
            self.norm_added_k = RMSNorm(dim_head, eps)
            self.add_q_proj = Linear(added_kv_proj_dim, self.inner_dim, bias_attr=added_proj_bias)
            self.add_k_proj = Linear(added_kv_proj_dim, self.inner_dim, bias_attr=added_proj_bias)
            self.add_v_proj = Linear(added_kv_proj_dim, self.inner_dim, bias_attr=added_proj_bias)
            self.to_add_out = Linear(self.inner_dim, query_dim, bias_attr=out_bias)

    def _heads(self, x):
        return x.reshape([x.shape[0], x.shape[1], self.heads, -1])

    def forward(
        self,
        hidden_states,
        encoder_hidden_states=None,
        image_rotary_emb=None,
        attention_mask=None,
        ip_hidden_states=None,
    ):
        query = self.norm_q(self._heads(self.to_q(hidden_states)))
        key = self.norm_k(self._heads(self.to_k(hidden_states)))
        value = self._heads(self.to_v(hidden_states))
        ip_query = query  # IP-Adapter: the image tokens' normalised queries, before RoPE
        if encoder_hidden_states is not None and self.added_kv_proj_dim is not None:
            e_query = self.norm_added_q(self._heads(self.add_q_proj(encoder_hidden_states)))
            e_key = self.norm_added_k(self._heads(self.add_k_proj(encoder_hidden_states)))
            e_value = self._heads(self.add_v_proj(encoder_hidden_states))
            # order: text tokens first, then image tokens
            query = paddle.concat([e_query, query], axis=1)
            key = paddle.concat([e_key, key], axis=1)
            value = paddle.concat([e_value, value], axis=1)
        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb)
            key = apply_rotary_emb(key, image_rotary_emb)
        out = scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        out = _cast(out.reshape([out.shape[0], out.shape[1], -1]), query.dtype)
        if encoder_hidden_states is not None and self.added_kv_proj_dim is not None:
            n_txt = encoder_hidden_states.shape[1]
            # split, not two slices: the gradient is one concat instead of two zero-filled
            # full-size tensors
            enc_out, out = paddle.split(out, [n_txt, out.shape[1] - n_txt], axis=1)
            out = self.to_out[1](self.to_out[0](out))
            ip = self.__dict__.get("_ip")
            if ip_hidden_states is not None and ip is not None:
                return (
                    out,
                    self.to_add_out(enc_out),
                    self._ip_attention(ip, ip_query, ip_hidden_states),
                )
            return out, self.to_add_out(enc_out)
        return out

    def _ip_attention(self, ip, ip_query, ip_hidden_states):
        """Sum over the loaded IP-Adapters of scale x attention(image queries, image-prompt
        keys / values) (diffusers' FluxIPAdapterAttnProcessor)."""
        b = ip_query.shape[0]
        total = paddle.zeros([b, ip_query.shape[1], self.heads * self.head_dim], ip_query.dtype)
        for states, scale, to_k, to_v in zip(ip_hidden_states, ip.scale, ip.to_k_ip, ip.to_v_ip):
            k = to_k(states).reshape([b, -1, self.heads, self.head_dim])
            v = to_v(states).reshape([b, -1, self.heads, self.head_dim])
            out = scaled_dot_product_attention(ip_query, k, v)
            total = total + scale * out.reshape([b, -1, self.heads * self.head_dim]).astype(
                ip_query.dtype
            )
        return total


class GELUProj(nn.Layer):
    """Linear followed by tanh-approximate GELU (diffusers' ``GELU`` with ``proj``)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = Linear(dim_in, dim_out)

    def forward(self, x):
        return F.gelu(self.proj(x), approximate=True)


class FeedForward(nn.Layer):
    def __init__(self, dim: int, dim_out: int | None = None, mult: int = 4):
        super().__init__()
        inner = int(dim * mult)
        self.net = nn.LayerList(
            [GELUProj(dim, inner), nn.Dropout(0.0), Linear(inner, dim_out or dim)]
        )

    def forward(self, x):
        for layer in self.net:
            x = layer(x)
        return x


def _clip_fp16(x):
    if x.dtype == paddle.float16:
        return x.clip(-65504, 65504)
    return x


class FluxTransformerBlock(nn.Layer):
    """Double-stream block: image and text keep separate weights, attend jointly."""

    def __init__(
        self, dim: int, num_attention_heads: int, attention_head_dim: int, eps: float = 1e-6
    ):
        super().__init__()
        self.norm1 = AdaLayerNormZero(dim)
        self.norm1_context = AdaLayerNormZero(dim)
        self.attn = FluxAttention(
            dim,
            num_attention_heads,
            attention_head_dim,
            bias=True,
            added_kv_proj_dim=dim,
            out_dim=dim,
            eps=eps,
        )
        self.norm2 = _layer_norm(dim)
        self.ff = FeedForward(dim, dim)
        self.norm2_context = _layer_norm(dim)
        self.ff_context = FeedForward(dim, dim)

    def forward(
        self,
        hidden_states,
        encoder_hidden_states,
        temb,
        image_rotary_emb=None,
        joint_attention_kwargs=None,
    ):
        norm_h, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(hidden_states, temb)
        norm_e, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp = self.norm1_context(
            encoder_hidden_states, temb
        )
        attn_outputs = self.attn(norm_h, norm_e, image_rotary_emb, **(joint_attention_kwargs or {}))
        attn_out, ctx_attn_out = attn_outputs[:2]
        hidden_states = hidden_states + _mul(attn_out, gate_msa)
        norm_h = _modulate(self.norm2(hidden_states), scale_mlp, shift_mlp)
        hidden_states = hidden_states + _mul(self.ff(norm_h), gate_mlp)
        if len(attn_outputs) == 3:  # IP-Adapter
            hidden_states = hidden_states + attn_outputs[2]

        encoder_hidden_states = encoder_hidden_states + _mul(ctx_attn_out, c_gate_msa)
        norm_e = _modulate(self.norm2_context(encoder_hidden_states), c_scale_mlp, c_shift_mlp)
        encoder_hidden_states = encoder_hidden_states + _mul(self.ff_context(norm_e), c_gate_mlp)
        return _clip_fp16(encoder_hidden_states), hidden_states


class FluxSingleTransformerBlock(nn.Layer):
    """Single-stream block: one sequence [text; image], parallel attention and MLP."""

    def __init__(
        self, dim: int, num_attention_heads: int, attention_head_dim: int, mlp_ratio: float = 4.0
    ):
        super().__init__()
        self.mlp_hidden_dim = int(dim * mlp_ratio)
        self.norm = AdaLayerNormZeroSingle(dim)
        self.proj_mlp = Linear(dim, self.mlp_hidden_dim)
        self.proj_out = Linear(dim + self.mlp_hidden_dim, dim)
        self.attn = FluxAttention(
            dim,
            num_attention_heads,
            attention_head_dim,
            bias=True,
            out_dim=dim,
            eps=1e-6,
            pre_only=True,
        )

    def forward(
        self,
        hidden_states,
        encoder_hidden_states,
        temb,
        image_rotary_emb=None,
        joint_attention_kwargs=None,
        text_out: bool = True,
    ):
        """``(encoder, hidden)``; with ``text_out=False`` the text tokens' outputs may be left
        out (``(None, hidden)``): after attention, which needs every token's key and value, a
        token's MLP, output projection and residual depend on that token alone, so the image
        tokens' outputs are the same as when all tokens are computed."""
        n_txt = encoder_hidden_states.shape[1]
        image = hidden_states
        hidden_states = paddle.concat([encoder_hidden_states, hidden_states], axis=1)
        residual = hidden_states
        norm_h, gate = self.norm(hidden_states, temb)
        attn_out = self.attn(
            norm_h, image_rotary_emb=image_rotary_emb, **(joint_attention_kwargs or {})
        )
        n_img = hidden_states.shape[1] - n_txt
        image_only = not text_out and n_txt * hidden_states.shape[2] >= _SKIP_TEXT_MIN_NUMEL
        if image_only:
            norm_h = paddle.split(norm_h, [n_txt, n_img], axis=1)[1]
            attn_out = paddle.split(attn_out, [n_txt, n_img], axis=1)[1]
            residual = image
        mlp = F.gelu(self.proj_mlp(norm_h), approximate=True)
        hidden_states = paddle.concat([attn_out, mlp], axis=2)
        hidden_states = residual + _mul(self.proj_out(hidden_states), gate)
        hidden_states = _clip_fp16(hidden_states)
        if image_only:
            return None, hidden_states
        enc, img = paddle.split(hidden_states, [n_txt, n_img], axis=1)
        return enc, img


@dataclass
class Transformer2DModelOutput:
    sample: paddle.Tensor


def _ids_2d(ids):
    return ids[0] if ids.ndim == 3 else ids


class FluxTransformer2DModel(CacheMixin, FluxLoadingMixin, nn.Layer, ConfigMixin):
    """FLUX.1 transformer; ``guidance_embeds=True`` is dev, ``False`` is schnell."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        patch_size: int = 1,
        in_channels: int = 64,
        out_channels: int | None = None,
        num_layers: int = 19,
        num_single_layers: int = 38,
        attention_head_dim: int = 128,
        num_attention_heads: int = 24,
        joint_attention_dim: int = 4096,
        pooled_projection_dim: int = 768,
        guidance_embeds: bool = False,
        axes_dims_rope=(16, 56, 56),
    ):
        super().__init__()
        if sum(axes_dims_rope) != attention_head_dim:
            raise ValueError(
                f"axes_dims_rope {list(axes_dims_rope)} must sum to "
                f"attention_head_dim {attention_head_dim}"
            )
        self.out_channels = out_channels or in_channels
        self.inner_dim = num_attention_heads * attention_head_dim
        self.pos_embed = FluxPosEmbed(10000, axes_dims_rope)
        embed_cls = (
            CombinedTimestepGuidanceTextProjEmbeddings
            if guidance_embeds
            else CombinedTimestepTextProjEmbeddings
        )
        self.time_text_embed = embed_cls(self.inner_dim, pooled_projection_dim)
        self.context_embedder = Linear(joint_attention_dim, self.inner_dim)
        self.x_embedder = Linear(in_channels, self.inner_dim)
        self.transformer_blocks = nn.LayerList(
            [
                FluxTransformerBlock(self.inner_dim, num_attention_heads, attention_head_dim)
                for _ in range(num_layers)
            ]
        )
        self.single_transformer_blocks = nn.LayerList(
            [
                FluxSingleTransformerBlock(self.inner_dim, num_attention_heads, attention_head_dim)
                for _ in range(num_single_layers)
            ]
        )
        self.norm_out = AdaLayerNormContinuous(self.inner_dim, self.inner_dim, eps=1e-6)
        self.proj_out = Linear(self.inner_dim, patch_size * patch_size * self.out_channels)
        self.gradient_checkpointing = False

    def enable_gradient_checkpointing(self):
        self.gradient_checkpointing = True

    def _run_block(self, block, *args):
        if self.gradient_checkpointing and self.training:
            from paddle.distributed.fleet.utils import recompute

            return recompute(block, *args)
        return block(*args)

    def _ip_hidden_states(self, ip_embeds):
        """IP-Adapter image embeddings (one ``[B, n, D]`` per adapter) -> projected tokens."""
        projections = self.__dict__.get("_ip_projections")
        if not projections:
            raise ValueError("ip_adapter_image_embeds given but no IP-Adapter is loaded")
        states = []
        for embeds, projection in zip(ip_embeds, projections):
            b, n = embeds.shape[:2]
            x = projection(embeds.reshape([b * n, *embeds.shape[2:]]))
            states.append(x.reshape([b, n, *x.shape[1:]]))
        return states

    def _call_block(self, position, total, block, hidden_states, encoder_hidden_states, *rest):
        """One block (``(encoder, hidden)`` out), through First Block Cache when enabled."""

        def call():
            return self._run_block(block, hidden_states, encoder_hidden_states, *rest)

        if self._first_block_cache is None:
            return call()
        return self._first_block_cache.run(
            position, total, call, hidden_states, encoder_hidden_states
        )

    def forward(
        self,
        hidden_states,
        encoder_hidden_states=None,
        pooled_projections=None,
        timestep=None,
        img_ids=None,
        txt_ids=None,
        guidance=None,
        joint_attention_kwargs=None,
        controlnet_block_samples=None,
        controlnet_single_block_samples=None,
        return_dict: bool = True,
        controlnet_blocks_repeat: bool = False,
    ):
        """Predict the flow (velocity) for packed latent tokens.

        Args:
            hidden_states: packed image tokens ``[B, S_img, in_channels]``.
            encoder_hidden_states: T5 embeddings ``[B, S_txt, joint_attention_dim]``.
            pooled_projections: CLIP pooled embedding ``[B, pooled_projection_dim]``.
            timestep: ``[B]``, the scheduler time divided by 1000 (as diffusers' pipelines pass).
            img_ids, txt_ids: RoPE position ids ``[S, 3]`` (a leading batch axis is accepted).
            guidance: ``[B]`` distilled guidance scale (dev models only).
            joint_attention_kwargs: ``{"scale": s}`` scales every LoRA adapter for this call;
                ``{"ip_adapter_image_embeds": [...]}`` feeds loaded IP-Adapters.
            controlnet_block_samples, controlnet_single_block_samples: ControlNet residuals
                added after the double / single blocks; ``controlnet_blocks_repeat`` cycles them
                (ControlNets with an input hint block).
            return_dict: return ``Transformer2DModelOutput`` (else a tuple).

        Returns:
            ``Transformer2DModelOutput(sample=[B, S_img, out_channels])`` or ``(sample,)``.
        """
        joint_attention_kwargs = dict(joint_attention_kwargs or {})
        from ..lora import lora_scale

        # diffusers' joint_attention_kwargs={"scale": s} scales every LoRA for this call
        with lora_scale(joint_attention_kwargs.pop("scale", None)):
            return self._forward(
                hidden_states,
                encoder_hidden_states,
                pooled_projections,
                timestep,
                img_ids,
                txt_ids,
                guidance,
                joint_attention_kwargs,
                controlnet_block_samples,
                controlnet_single_block_samples,
                return_dict,
                controlnet_blocks_repeat,
            )

    def _forward(
        self,
        hidden_states,
        encoder_hidden_states,
        pooled_projections,
        timestep,
        img_ids,
        txt_ids,
        guidance,
        joint_attention_kwargs,
        controlnet_block_samples,
        controlnet_single_block_samples,
        return_dict,
        controlnet_blocks_repeat,
    ):
        ip_embeds = joint_attention_kwargs.pop("ip_adapter_image_embeds", None)
        if ip_embeds is not None:
            joint_attention_kwargs["ip_hidden_states"] = self._ip_hidden_states(ip_embeds)
        hidden_states = self.x_embedder(hidden_states)
        # order: the pipeline passes t/1000; cast to the model dtype, then *1000 (as diffusers)
        timestep = _cast(timestep, hidden_states.dtype) * 1000
        if guidance is not None:
            guidance = _cast(guidance, hidden_states.dtype) * 1000
            temb = self.time_text_embed(timestep, guidance, pooled_projections)
        else:
            temb = self.time_text_embed(timestep, pooled_projections)
        encoder_hidden_states = self.context_embedder(encoder_hidden_states)
        ids = paddle.concat([_ids_2d(txt_ids), _ids_2d(img_ids)], axis=0)
        image_rotary_emb = self.pos_embed(ids)

        total = len(self.transformer_blocks) + len(self.single_transformer_blocks)
        for index, block in enumerate(self.transformer_blocks):
            encoder_hidden_states, hidden_states = self._call_block(
                index,
                total,
                block,
                hidden_states,
                encoder_hidden_states,
                temb,
                image_rotary_emb,
                joint_attention_kwargs,
            )
            if controlnet_block_samples is not None:
                n = len(controlnet_block_samples)
                if controlnet_blocks_repeat:
                    hidden_states = hidden_states + controlnet_block_samples[index % n]
                else:
                    interval = int(np.ceil(len(self.transformer_blocks) / n))
                    hidden_states = hidden_states + controlnet_block_samples[index // interval]
        first_single = len(self.transformer_blocks)
        # the last block's text outputs are discarded, so it computes only the image tokens'
        # (not with a cache enabled: First Block Cache keeps the last block's text residual,
        # TaylorSeer may store whole blocks' outputs)
        last = len(self.single_transformer_blocks) - 1 if self._cache_config is None else -1
        for index, block in enumerate(self.single_transformer_blocks):
            encoder_hidden_states, hidden_states = self._call_block(
                first_single + index,
                total,
                block,
                hidden_states,
                encoder_hidden_states,
                temb,
                image_rotary_emb,
                joint_attention_kwargs,
                index != last,
            )
            if controlnet_single_block_samples is not None:
                n = len(controlnet_single_block_samples)
                interval = int(np.ceil(len(self.single_transformer_blocks) / n))
                hidden_states = hidden_states + controlnet_single_block_samples[index // interval]

        hidden_states = self.norm_out(hidden_states, temb)
        output = self.proj_out(hidden_states)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
