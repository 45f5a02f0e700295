"""A compact Paddle implementation of the Llama-family decoders (single file, all families).

Llama, Mistral, Qwen2 and Qwen3 share one block; their differences are four config fields:

* ``qkv_bias`` / ``o_bias`` / ``mlp_bias`` -- Qwen2 has biases on q/k/v, Llama may on all;
* ``qk_norm`` -- Qwen3 normalises q and k per head (RMSNorm over ``head_dim``) before rope;
* ``sliding_window`` + ``layer_types`` -- Mistral (and Qwen2 with ``use_sliding_window``)
  limit attention to the last ``sliding_window`` cache positions;
* ``tie_word_embeddings`` -- the output projection reuses the embedding matrix.

The forward pass is written with shape-polymorphic tensor ops only (no Python branching on
values), so the same code runs eagerly and under ``paddle.jit.to_static`` for export.
The KV cache is a list of ``(key, value)`` per layer, each ``[batch, kv_heads, time, head_dim]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._paddle import require_paddle
from .config import DecoderConfig

paddle = require_paddle()
nn = paddle.nn
F = paddle.nn.functional

_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def _activation(name: str):
    if name in ("silu", "swish"):
        return F.silu
    if name == "relu":
        return F.relu
    if name in ("gelu_pytorch_tanh", "gelu_new"):
        return lambda x: F.gelu(x, approximate=True)
    return F.gelu


class RMSNorm(nn.Layer):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = self.create_parameter([size], default_initializer=nn.initializer.Constant(1.0))

    def forward(self, x):
        dtype = x.dtype
        x32 = x.astype("float32")
        variance = x32.pow(2).mean(axis=-1, keepdim=True)
        x32 = x32 * paddle.rsqrt(variance + self.eps)
        return self.weight * x32.astype(dtype)


class RotaryEmbedding(nn.Layer):
    """cos/sin for integer positions; ``dynamic`` NTK grows its base past the trained length."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        inv_freq, self.attention_scaling = cfg.rope_inv_freq()
        self.register_buffer("inv_freq", paddle.to_tensor(inv_freq), persistable=False)
        self.dynamic = cfg.rope_type == "dynamic"
        if self.dynamic:
            dim = cfg.head_dim
            self.base = float(cfg.rope_theta)
            self.factor = float(cfg.rope_scaling["factor"])
            self.max_pos = float(cfg.max_position_embeddings)
            self.exponent = float(dim) / float(dim - 2)
            exps = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
            self.register_buffer("freq_exponents", paddle.to_tensor(exps), persistable=False)

    def forward(self, position_ids, dtype):
        pos = position_ids.astype("float32")
        inv_freq = self.inv_freq
        if self.dynamic:
            seq_len = paddle.maximum(pos.max() + 1.0, paddle.full([], self.max_pos, "float32"))
            base = self.base * ((self.factor * seq_len / self.max_pos) - (self.factor - 1.0)) ** self.exponent
            inv_freq = 1.0 / (base ** self.freq_exponents)
        freqs = pos.unsqueeze(-1) * inv_freq  # [B, S, D/2]
        emb = paddle.concat([freqs, freqs], axis=-1)
        cos = paddle.cos(emb) * self.attention_scaling
        sin = paddle.sin(emb) * self.attention_scaling
        return cos.astype(dtype), sin.astype(dtype)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return paddle.concat([-x[..., half:], x[..., :half]], axis=-1)


def apply_rotary(q, k, cos, sin):
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # broadcast over heads
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


def attention_allowed(mask2d, query_len, sliding_window: int | None):
    """Boolean ``[B, 1, S, T]``: key ``j`` is visible from query ``i`` (cache coordinates).

    ``mask2d`` is ``[B, T]`` over past + current tokens (1 = real token, 0 = padding).
    """
    total = paddle.shape(mask2d)[1]
    k_pos = paddle.arange(0, total, dtype="int64").unsqueeze(0)  # [1, T]
    q_pos = (paddle.arange(0, query_len, dtype="int64") + (total - query_len)).unsqueeze(1)  # [S, 1]
    allowed = k_pos <= q_pos
    if sliding_window:
        allowed = paddle.logical_and(allowed, (q_pos - k_pos) < sliding_window)
    keep = mask2d.astype("bool").unsqueeze(1).unsqueeze(1)  # [B, 1, 1, T]
    return paddle.logical_and(allowed.unsqueeze(0).unsqueeze(0), keep)


class Attention(nn.Layer):
    def __init__(self, cfg: DecoderConfig, layer_idx: int):
        super().__init__()
        self.num_heads, self.num_kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = cfg.head_dim
        self.groups = cfg.num_key_value_groups
        self.scaling = cfg.head_dim ** -0.5
        self.sliding_window = cfg.sliding_window if cfg.layer_types[layer_idx] == "sliding_attention" else None
        h = cfg.hidden_size
        qkv_bias = None if cfg.qkv_bias else False
        self.q_proj = nn.Linear(h, self.num_heads * self.head_dim, bias_attr=qkv_bias)
        self.k_proj = nn.Linear(h, self.num_kv_heads * self.head_dim, bias_attr=qkv_bias)
        self.v_proj = nn.Linear(h, self.num_kv_heads * self.head_dim, bias_attr=qkv_bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, h, bias_attr=None if cfg.o_bias else False)
        if cfg.qk_norm:  # Qwen3
            self.q_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps)
        else:
            self.q_norm = self.k_norm = None

    def forward(self, x, cos, sin, mask2d, past=None):
        q = self.q_proj(x).reshape([0, 0, self.num_heads, self.head_dim])
        k = self.k_proj(x).reshape([0, 0, self.num_kv_heads, self.head_dim])
        v = self.v_proj(x).reshape([0, 0, self.num_kv_heads, self.head_dim])
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.transpose([0, 2, 1, 3]) for t in (q, k, v))  # [B, heads, S, D]
        q, k = apply_rotary(q, k, cos, sin)
        if past is not None:
            k = paddle.concat([past[0], k], axis=2)
            v = paddle.concat([past[1], v], axis=2)
        present = (k, v)
        if self.groups > 1:
            k = paddle.repeat_interleave(k, self.groups, axis=1)
            v = paddle.repeat_interleave(v, self.groups, axis=1)
        scores = paddle.matmul(q, k, transpose_y=True).astype("float32") * self.scaling
        allowed = attention_allowed(mask2d, paddle.shape(q)[2], self.sliding_window)
        scores = paddle.where(allowed, scores, paddle.full([], float(np.finfo(np.float32).min), "float32"))
        probs = F.softmax(scores, axis=-1).astype(q.dtype)
        out = paddle.matmul(probs, v).transpose([0, 2, 1, 3])
        out = out.reshape([0, 0, self.num_heads * self.head_dim])
        return self.o_proj(out), present


class MLP(nn.Layer):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        bias = None if cfg.mlp_bias else False
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias_attr=bias)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias_attr=bias)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias_attr=bias)
        self.act = _activation(cfg.hidden_act)

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Layer):
    def __init__(self, cfg: DecoderConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, layer_idx)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask2d, past=None):
        attn, present = self.self_attn(self.input_layernorm(x), cos, sin, mask2d, past)
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), present


class DecoderModel(nn.Layer):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.LayerList([DecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(cfg)

    def forward(self, input_ids, mask2d, position_ids, past_key_values=None):
        x = self.embed_tokens(input_ids)
        cos, sin = self.rotary_emb(position_ids, x.dtype)
        presents = []
        for i, layer in enumerate(self.layers):
            past = past_key_values[i] if past_key_values is not None else None
            x, present = layer(x, cos, sin, mask2d, past)
            presents.append(present)
        return self.norm(x), presents


class DecoderForCausalLM(nn.Layer):
    """Paddle decoder for Llama / Mistral / Qwen2 / Qwen3 checkpoints converted by this package."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.config = cfg
        self.model = DecoderModel(cfg)
        self.lm_head = None if cfg.tie_word_embeddings else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias_attr=False)

    def logits(self, hidden):
        if self.lm_head is None:
            return paddle.matmul(hidden, self.model.embed_tokens.weight, transpose_y=True)
        return self.lm_head(hidden)

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None,
                last_only: bool = False):
        """Return ``(logits, presents)``.

        ``attention_mask`` covers past + current tokens (``[B, past + S]``); ``position_ids``
        default to ``cumsum(mask) - 1`` like Hugging Face generation, so left padding works.
        """
        if attention_mask is None:
            past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
            attention_mask = paddle.ones([input_ids.shape[0], past_len + input_ids.shape[1]], dtype="int64")
        if position_ids is None:
            position_ids = default_position_ids(attention_mask, input_ids.shape[1])
        hidden, presents = self.model(input_ids, attention_mask, position_ids, past_key_values)
        if last_only:
            hidden = hidden[:, -1:, :]
        return self.logits(hidden), presents

    # ----------------------------------------------------------------- folders
    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: str | None = "float32") -> DecoderForCausalLM:
        """Load a folder written by ``x2paddle-llm convert`` (either target)."""
        from .weights import load_state_into

        folder = Path(folder)
        cfg = DecoderConfig.load(folder)
        dtype = dtype or cfg.dtype
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
        if dtype != "float32" and "gpu" not in str(paddle.get_device()):
            # Paddle 3.3.1's CPU matmul kernel is registered for float32/float64 only.
            raise ValueError(
                f"dtype {dtype!r} needs a GPU: Paddle's CPU matmul has no {dtype} kernel. Use dtype='float32' "
                "(bf16/fp16 checkpoints are upcast when loaded)"
            )
        previous = paddle.get_default_dtype()
        paddle.set_default_dtype("float32")
        try:
            model = cls(cfg)
        finally:
            paddle.set_default_dtype(previous)
        load_state_into(model, folder, cfg)
        if dtype != "float32":
            model.to(dtype=dtype)
        model.eval()
        return model

    def save_pretrained(self, folder: str | Path) -> None:
        """Write config.json + model.safetensors (the ``--target paddle`` layout)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save(folder)
        state = {k: v.astype("float32").numpy() for k, v in self.state_dict().items()
                 if not k.endswith(("inv_freq", "freq_exponents"))}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "np"})
        (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": self.config.eos_token_id}))


def default_position_ids(mask2d, query_len):
    """Positions of the last ``query_len`` tokens: ``cumsum(mask) - 1`` (padding clipped to 0)."""
    pos = paddle.cumsum(mask2d.astype("int64"), axis=-1) - 1
    pos = paddle.clip(pos, min=0)
    return pos[:, -query_len:] if isinstance(query_len, int) else pos[:, paddle.shape(mask2d)[1] - query_len:]
