"""GOT-OCR2.0 in Paddle, one self-contained file: config, SAM-style ViTDet vision encoder,
projector, Qwen2 decoder with KV cache.

Parameter names follow transformers' in-memory ``GotOcr2ForConditionalGeneration`` layout
without the leading ``model.`` (``vision_tower.*``, ``multi_modal_projector.*``,
``language_model.*``); Linear weights are stored ``[in, out]`` as Paddle does.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._paddle import require_paddle
from .configuration_got_ocr2 import (  # noqa: F401  (re-exported: the model file's config)
    CONFIG_NAME,
    FORMAT_TAG,
    WEIGHTS_NAME,
    GotOcr2Config,
    GotOcr2TextConfig,
    GotOcr2VisionConfig,
)

paddle = require_paddle()
nn = paddle.nn
F = paddle.nn.functional


# --------------------------------------------------------------------------- kernels
class dense_kernels:
    """Run Paddle with dense (non-stride) kernels inside the block.

    With Paddle 3's default stride kernels a transpose is a lazy view and the reshape after it
    a strided copy that is about 5x slower than a dense transpose on CPU (measured on the
    vision tower's head split: 0.13 s vs 0.026 s). The model reshapes after nearly every
    transpose, so its entry points run with dense kernels; the flag is restored on exit.
    """

    def __enter__(self):
        self.previous = paddle.get_flags(["FLAGS_use_stride_kernel"])["FLAGS_use_stride_kernel"]
        if self.previous:
            paddle.set_flags({"FLAGS_use_stride_kernel": False})
        return self

    def __exit__(self, *exc):
        if self.previous:
            paddle.set_flags({"FLAGS_use_stride_kernel": True})
        return False


# --------------------------------------------------------------------------- vision
def _softmax_fp32(x):
    """Softmax in float32 (as the references), without copies when x already is float32."""
    if x.dtype == paddle.float32:
        return F.softmax(x, axis=-1)
    return F.softmax(x.astype("float32"), axis=-1).astype(x.dtype)


# Bytes of attention scores computed at once; larger maps are processed in query chunks so the
# 4096x4096 global-attention maps of the real tower are never materialised whole.
ATTENTION_CHUNK_BYTES = 256 * 2**20


def _key_position_onehot(h: int, w: int) -> np.ndarray:
    """[h*w, h+w]: row (i, j) has a 1 at column i and at column h + j."""
    onehot = np.zeros((h * w, h + w), dtype=np.float32)
    rows = np.arange(h * w)
    onehot[rows, rows // w] = 1.0
    onehot[rows, h + rows % w] = 1.0
    return onehot


class VisionAttention(nn.Layer):
    """Multi-head attention with SAM's decomposed relative positions.

    The relative-position bias ``rel_h[q, kh] + rel_w[q, kw]`` is folded into the score
    matmul: queries get the bias terms appended (``[q * scale, rel_h, rel_w]``) and keys the
    one-hot of their row and column (``[k, onehot(kh), onehot(kw)]``), so one matmul yields
    ``q.k * scale + rel_h + rel_w`` with no broadcast add over the full score map (the
    add alone cost Paddle 5x the matmul on the 4096-token global layers).
    """

    chunk_queries = True  # process big score maps in query chunks (off while exporting)

    def __init__(self, cfg: GotOcr2VisionConfig, window_size: int):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.scale = head_dim**-0.5
        size = window_size if window_size > 0 else cfg.image_size // cfg.patch_size
        self.qkv = nn.Linear(
            cfg.hidden_size, cfg.hidden_size * 3, bias_attr=None if cfg.qkv_bias else False
        )
        self.proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.use_rel_pos = cfg.use_rel_pos
        self._onehot = {}
        if self.use_rel_pos:
            zeros = nn.initializer.Constant(0.0)
            self.rel_pos_h = self.create_parameter(
                [2 * size - 1, head_dim], default_initializer=zeros
            )
            self.rel_pos_w = self.create_parameter(
                [2 * size - 1, head_dim], default_initializer=zeros
            )

    @staticmethod
    def _rel_pos(size: int, table):
        if table.shape[0] != 2 * size - 1:
            raise ValueError(
                f"relative position table of length {table.shape[0]} does not fit a "
                f"{size}-token axis (needs {2 * size - 1})"
            )
        coords = np.arange(size)[:, None] - np.arange(size)[None, :] + (size - 1)
        idx = paddle.to_tensor(coords.reshape(-1).astype("int64"))
        return paddle.index_select(table, idx, axis=0).reshape([size, size, -1])

    def key_onehot(self, h: int, w: int):
        if not paddle.in_dynamic_mode():  # tracing for export: a constant of the program
            return paddle.to_tensor(_key_position_onehot(h, w))
        if (h, w) not in self._onehot:
            self._onehot[(h, w)] = paddle.to_tensor(_key_position_onehot(h, w))
        return self._onehot[(h, w)]

    def attend(self, q, k, v, h: int, w: int):
        """q, k, v: [n, h*w, head_dim] (n = batch x heads) -> [n, h*w, head_dim]."""
        n, tokens, dim = q.shape
        if self.use_rel_pos:
            rh = self._rel_pos(h, self.rel_pos_h)  # [h, kh, dim]
            rw = self._rel_pos(w, self.rel_pos_w)  # [w, kw, dim]
            rq = q.reshape([n, h, w, dim])
            # rel_h[n, i, j, kh] = q[n, i, j] . rh[i, kh]: batched over the query row i
            rel_h = paddle.matmul(
                rq.transpose([1, 0, 2, 3]).reshape([h, n * w, dim]), rh, transpose_y=True
            )
            rel_h = rel_h.reshape([h, n, w, h]).transpose([1, 0, 2, 3]).reshape([n, tokens, h])
            rel_w = paddle.matmul(
                rq.transpose([2, 0, 1, 3]).reshape([w, n * h, dim]), rw, transpose_y=True
            )
            rel_w = rel_w.reshape([w, n, h, w]).transpose([1, 2, 0, 3]).reshape([n, tokens, w])
            q = paddle.concat([q * self.scale, rel_h, rel_w], axis=-1)
            onehot = self.key_onehot(h, w).unsqueeze(0).expand([n, tokens, h + w])
            k = paddle.concat([k, onehot], axis=-1)
        else:
            q = q * self.scale
        rows = max(1, ATTENTION_CHUNK_BYTES // (4 * n * tokens)) if self.chunk_queries else tokens
        outs = []
        for start in range(0, tokens, rows):
            qc = q if rows >= tokens else q[:, start : start + rows]
            scores = paddle.matmul(qc, k, transpose_y=True)
            outs.append(paddle.matmul(_softmax_fp32(scores), v))
        return outs[0] if len(outs) == 1 else paddle.concat(outs, axis=1)

    def split_heads(self, qkv, h: int, w: int):
        """[b, h, w, 3 * hidden] -> q, k, v as [b * heads, h * w, head_dim]."""
        b = qkv.shape[0]
        qkv = qkv.reshape([b, h * w, 3, self.num_heads, -1]).transpose([2, 0, 3, 1, 4])
        qkv = qkv.reshape([3, b * self.num_heads, h * w, -1])
        return qkv[0], qkv[1], qkv[2]

    def merge_heads(self, out, b: int, h: int, w: int):
        out = out.reshape([b, self.num_heads, h, w, -1]).transpose([0, 2, 3, 1, 4])
        return out.reshape([b, h, w, -1])

    def forward(self, x):
        """x: [b, h, w, hidden] -> [b, h, w, hidden], attention over all h*w tokens."""
        b, h, w, _ = x.shape
        q, k, v = self.split_heads(self.qkv(x), h, w)
        return self.proj(self.merge_heads(self.attend(q, k, v, h, w), b, h, w))


class VisionMLP(nn.Layer):
    def __init__(self, cfg: GotOcr2VisionConfig):
        super().__init__()
        self.lin1 = nn.Linear(cfg.hidden_size, cfg.mlp_dim)
        self.lin2 = nn.Linear(cfg.mlp_dim, cfg.hidden_size)

    def forward(self, x):
        return self.lin2(F.gelu(self.lin1(x)))


class VisionLayer(nn.Layer):
    def __init__(self, cfg: GotOcr2VisionConfig, window_size: int):
        super().__init__()
        self.window_size = window_size
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, epsilon=cfg.layer_norm_eps)
        self.attn = VisionAttention(cfg, window_size)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, epsilon=cfg.layer_norm_eps)
        self.mlp = VisionMLP(cfg)

    def _windowed_attention(self, x):
        """Window attention as SAM's (zero-padded to whole windows), computing the qkv and
        output projections on the real tokens only: a zero-padded token's qkv is the bias,
        so the padding is appended after the projection and dropped before the output one."""
        attn, ws = self.attn, self.window_size
        b, h, w, c = x.shape
        ph, pw = (ws - h % ws) % ws, (ws - w % ws) % ws
        qkv = attn.qkv(x)
        if ph or pw:
            fill = attn.qkv.bias if attn.qkv.bias is not None else paddle.zeros([3 * c], x.dtype)
            if ph:
                qkv = paddle.concat([qkv, fill.expand([b, ph, w, 3 * c])], axis=1)
            if pw:
                qkv = paddle.concat([qkv, fill.expand([b, h + ph, pw, 3 * c])], axis=2)
        hp, wp = h + ph, w + pw
        nh, nw = hp // ws, wp // ws
        windows = qkv.reshape([b, nh, ws, nw, ws, 3 * c]).transpose([0, 1, 3, 2, 4, 5])
        windows = windows.reshape([b * nh * nw, ws, ws, 3 * c])
        q, k, v = attn.split_heads(windows, ws, ws)
        out = attn.merge_heads(attn.attend(q, k, v, ws, ws), b * nh * nw, ws, ws)
        out = out.reshape([b, nh, nw, ws, ws, c]).transpose([0, 1, 3, 2, 4, 5])
        out = out.reshape([b, hp, wp, c])
        if ph or pw:
            out = out[:, :h, :w, :]
        return attn.proj(out)

    def forward(self, x):
        residual = x
        x = self.layer_norm1(x)
        x = self._windowed_attention(x) if self.window_size > 0 else self.attn(x)
        x = residual + x
        return x + self.mlp(self.layer_norm2(x))


class ChannelsFirstLayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.transpose([0, 2, 3, 1])).transpose([0, 3, 1, 2])


class VisionNeck(nn.Layer):
    def __init__(self, cfg: GotOcr2VisionConfig):
        super().__init__()
        c = cfg.output_channels
        self.conv1 = nn.Conv2D(cfg.hidden_size, c, 1, bias_attr=False)
        self.layer_norm1 = ChannelsFirstLayerNorm(c, epsilon=1e-6)
        self.conv2 = nn.Conv2D(c, c, 3, padding=1, bias_attr=False)
        self.layer_norm2 = ChannelsFirstLayerNorm(c, epsilon=1e-6)

    def forward(self, x):
        x = x.transpose([0, 3, 1, 2])
        return self.layer_norm2(self.conv2(self.layer_norm1(self.conv1(x))))


class PatchEmbed(nn.Layer):
    def __init__(self, cfg: GotOcr2VisionConfig):
        super().__init__()
        self.projection = nn.Conv2D(
            cfg.num_channels, cfg.hidden_size, cfg.patch_size, stride=cfg.patch_size
        )

    def forward(self, x):
        return self.projection(x).transpose([0, 2, 3, 1])


class VisionEncoder(nn.Layer):
    def __init__(self, cfg: GotOcr2VisionConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg)
        side = cfg.image_size // cfg.patch_size
        if cfg.use_abs_pos:
            self.pos_embed = self.create_parameter(
                [1, side, side, cfg.hidden_size], default_initializer=nn.initializer.Constant(0.0)
            )
        else:
            self.pos_embed = None
        self.layers = nn.LayerList(
            [
                VisionLayer(cfg, 0 if i in cfg.global_attn_indexes else cfg.window_size)
                for i in range(cfg.num_hidden_layers)
            ]
        )
        self.neck = VisionNeck(cfg)

    def forward(self, pixel_values):
        size = self.cfg.image_size
        if list(pixel_values.shape[1:]) != [self.cfg.num_channels, size, size]:
            raise ValueError(
                f"pixel_values must be [N, {self.cfg.num_channels}, {size}, {size}], "
                f"got {list(pixel_values.shape)}"
            )
        x = self.patch_embed(pixel_values)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)


class MultiModalProjector(nn.Layer):
    def __init__(self, config: GotOcr2Config):
        super().__init__()
        c, d = config.vision.output_channels, config.text.hidden_size
        self.conv_upsampler1 = nn.Conv2D(c, 2 * c, 3, stride=2, padding=1, bias_attr=False)
        self.conv_upsampler2 = nn.Conv2D(2 * c, d, 3, stride=2, padding=1, bias_attr=False)
        self.multimodal_projector = nn.Linear(d, d)

    def forward(self, x):
        x = self.conv_upsampler2(self.conv_upsampler1(x))
        x = x.flatten(2).transpose([0, 2, 1])
        return self.multimodal_projector(x)


# --------------------------------------------------------------------------- Qwen2 decoder
class RMSNorm(nn.Layer):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = self.create_parameter([dim], default_initializer=nn.initializer.Constant(1.0))

    def forward(self, x):
        dtype = x.dtype
        if dtype != paddle.float32:
            x = x.astype("float32")
        x = x * paddle.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * (x if dtype == paddle.float32 else x.astype(dtype))


def _rotate_half(x):
    half = x.shape[-1] // 2
    return paddle.concat([-x[..., half:], x[..., :half]], axis=-1)


class RotaryEmbedding:
    def __init__(self, head_dim: int, theta: float):
        self.inv_freq = 1.0 / (
            theta ** (np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / head_dim)
        )

    def __call__(self, position_ids):
        """position_ids [b, s] int64 -> cos, sin [b, 1, s, d] float32."""
        inv = paddle.to_tensor(self.inv_freq)
        freqs = position_ids.astype("float32").unsqueeze(-1) * inv
        emb = paddle.concat([freqs, freqs], axis=-1)
        return emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)


class Qwen2Attention(nn.Layer):
    def __init__(self, cfg: GotOcr2TextConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.num_kv = cfg.num_key_value_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.q_proj = nn.Linear(cfg.hidden_size, self.num_heads * self.head_dim)
        self.k_proj = nn.Linear(cfg.hidden_size, self.num_kv * self.head_dim)
        self.v_proj = nn.Linear(cfg.hidden_size, self.num_kv * self.head_dim)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, cfg.hidden_size, bias_attr=False)

    def forward(self, x, cos, sin, mask, past):
        # reshape with 0 = "keep this dimension": batch and length may be dynamic (export)
        q = self.q_proj(x).reshape([0, 0, self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])
        k = self.k_proj(x).reshape([0, 0, self.num_kv, self.head_dim]).transpose([0, 2, 1, 3])
        v = self.v_proj(x).reshape([0, 0, self.num_kv, self.head_dim]).transpose([0, 2, 1, 3])
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if past is not None:
            k = paddle.concat([past[0], k], axis=2)
            v = paddle.concat([past[1], v], axis=2)
        present = (k, v)
        if self.num_kv != self.num_heads:
            rep = self.num_heads // self.num_kv
            k = paddle.repeat_interleave(k, rep, axis=1)
            v = paddle.repeat_interleave(v, rep, axis=1)
        attn = paddle.matmul(q, k, transpose_y=True) * (self.head_dim**-0.5)
        attn = attn + mask
        attn = _softmax_fp32(attn)
        out = paddle.matmul(attn, v).transpose([0, 2, 1, 3]).reshape([0, 0, -1])
        return self.o_proj(out), present


class Qwen2MLP(nn.Layer):
    def __init__(self, cfg: GotOcr2TextConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias_attr=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias_attr=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias_attr=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Qwen2Layer(nn.Layer):
    def __init__(self, cfg: GotOcr2TextConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Qwen2Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = Qwen2MLP(cfg)

    def forward(self, x, cos, sin, mask, past):
        h, present = self.self_attn(self.input_layernorm(x), cos, sin, mask, past)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), present


def _layer_without_cache(layer, x, cos, sin, mask):
    """One decoder layer's hidden states (for recompute: the backward pass runs it again,
    outside the caller's ``dense_kernels`` block, so it sets the kernels itself)."""
    with dense_kernels():
        return layer(x, cos, sin, mask, None)[0]


class Qwen2Model(nn.Layer):
    def __init__(self, cfg: GotOcr2TextConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.LayerList([Qwen2Layer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary = RotaryEmbedding(cfg.hidden_size // cfg.num_attention_heads, cfg.rope_theta)
        self.gradient_checkpointing = False  # set by the trainer (--gradient-checkpointing)

    def forward(self, inputs_embeds, attention_mask, position_ids, past_key_values=None):
        """attention_mask: [b, past + s] of 1/0 (covers the cached part too)."""
        b, s, _ = inputs_embeds.shape
        past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        total = past_len + s
        causal = np.triu(np.full((s, total), -np.inf, dtype=np.float32), k=past_len + 1)
        mask = paddle.to_tensor(causal)[None, None]
        pad = (1.0 - attention_mask.astype("float32"))[:, None, None, :] * -1e30
        mask = mask + pad
        # a fully masked row (left padding query) would give NaN; keep it finite
        mask = paddle.clip(mask, min=float(np.finfo(np.float32).min))
        cos, sin = self.rotary(position_ids)
        x = inputs_embeds
        presents = []
        checkpoint = self.gradient_checkpointing and self.training and past_key_values is None
        for i, layer in enumerate(self.layers):
            if checkpoint and not x.stop_gradient:
                # recompute the layer in the backward pass instead of keeping its activations
                from paddle.distributed.fleet.utils import recompute

                x, present = recompute(_layer_without_cache, layer, x, cos, sin, mask), None
            else:
                x, present = layer(
                    x, cos, sin, mask, None if past_key_values is None else past_key_values[i]
                )
            presents.append(present)
        return self.norm(x), presents


# --------------------------------------------------------------------------- full model
class GotOcr2ForConditionalGeneration(nn.Layer):
    def __init__(self, config: GotOcr2Config):
        super().__init__()
        self.config = config
        self.vision_tower = VisionEncoder(config.vision)
        self.multi_modal_projector = MultiModalProjector(config)
        self.language_model = Qwen2Model(config.text)
        if not config.text.tie_word_embeddings:
            self.lm_head = nn.Linear(
                config.text.hidden_size, config.text.vocab_size, bias_attr=False
            )
        else:
            self.lm_head = None

    # -- pieces
    def get_image_features(self, pixel_values):
        """Vision tower and projector.

        Args:
            pixel_values: float32 ``[n_views, 3, S, S]`` (normalised, ``S`` = ``image_size``).

        Returns:
            ``[n_views, image_seq_length, text hidden size]`` features that replace the image
            tokens of the prompt.
        """
        with dense_kernels():
            return self.multi_modal_projector(self.vision_tower(pixel_values))

    def logits(self, hidden):
        if self.lm_head is None:
            out = paddle.matmul(hidden, self.language_model.embed_tokens.weight, transpose_y=True)
        else:
            out = self.lm_head(hidden)
        return out if out.dtype == paddle.float32 else out.astype("float32")

    def embed(self, input_ids, image_features=None):
        """Token embeddings with the image features spliced over every image token, in order."""
        embeds = self.language_model.embed_tokens(input_ids)
        if image_features is None:
            return embeds
        tok = self.config.image_token_id
        positions = paddle.nonzero((input_ids == tok).flatten()).flatten()
        feats = image_features.reshape([-1, embeds.shape[-1]])
        if feats.dtype != embeds.dtype:
            feats = feats.astype(embeds.dtype)
        if positions.shape[0] != feats.shape[0]:
            raise ValueError(
                f"{positions.shape[0]} image tokens in the prompt but "
                f"{feats.shape[0]} image feature vectors"
            )
        flat = embeds.reshape([-1, embeds.shape[-1]])
        flat = paddle.scatter(flat, positions, feats, overwrite=True)
        return flat.reshape(embeds.shape)

    def forward(
        self,
        input_ids,
        pixel_values=None,
        image_features=None,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        logits_to_keep: int = 0,
    ):
        """Logits of the next token for every (or the last ``logits_to_keep``) position.

        Args:
            input_ids: int64 ``[b, s]``; image tokens (``config.image_token_id``) mark where the
                image features go, in order.
            pixel_values: float32 ``[n_views, 3, S, S]``; encoded with the vision tower when
                ``image_features`` is not given.
            image_features: ``[n_views, image_seq_length, hidden]`` from
                :meth:`get_image_features` (one row of features per image token).
            attention_mask: ``[b, past + s]`` of 1 (attend) / 0 (padding); all ones when omitted.
            position_ids: ``[b, s]`` rotary positions; by default the cumulative sum of the mask
                minus one, so left padding does not shift positions.
            past_key_values: the ``presents`` of the previous call (one ``(k, v)`` per layer,
                ``[b, heads, past, head_dim]``).
            logits_to_keep: ``k > 0`` computes logits for the last ``k`` positions only.

        Returns:
            ``(logits, presents)``: float32 logits ``[b, s or k, vocab]`` and the KV cache.
        """
        with dense_kernels():
            return self._forward(
                input_ids,
                pixel_values,
                image_features,
                attention_mask,
                position_ids,
                past_key_values,
                logits_to_keep,
            )

    def _forward(
        self,
        input_ids,
        pixel_values,
        image_features,
        attention_mask,
        position_ids,
        past_key_values,
        logits_to_keep,
    ):
        if image_features is None and pixel_values is not None:
            image_features = self.get_image_features(pixel_values)
        b, s = input_ids.shape
        past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if attention_mask is None:
            attention_mask = paddle.ones([b, past_len + s], dtype="int64")
        if position_ids is None:
            pos = paddle.cumsum(attention_mask.astype("int64"), axis=-1) - 1
            pos = paddle.where(attention_mask.astype("bool"), pos, paddle.ones_like(pos))
            position_ids = pos[:, past_len:]
        embeds = self.embed(input_ids, image_features)
        hidden, presents = self.language_model(
            embeds, attention_mask, position_ids, past_key_values
        )
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return self.logits(hidden), presents

    # -- folders
    @classmethod
    def from_pretrained(cls, folder):
        """Read a ppgotocr folder, or convert a transformers / original stepfun folder in memory."""
        from .convert import load_state_dict_any

        config, state = load_state_dict_any(folder)
        model = cls(config)
        model.load_converted(state)
        model.eval()
        return model

    def load_converted(self, state: dict) -> None:
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        for name, param in own.items():
            value = state[name]
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(
                    f"{name}: checkpoint shape {tuple(value.shape)} != model "
                    f"shape {tuple(param.shape)}"
                )
            param.set_value(np.ascontiguousarray(value, dtype=np.float32))

    def save_pretrained(self, folder) -> None:
        from .convert import write_safetensors_atomic

        folder = Path(folder)
        tensors = ((k, v.numpy()) for k, v in self.state_dict().items())
        write_safetensors_atomic(folder, tensors, self.config)


def num_parameters(model) -> int:
    return int(sum(math.prod(p.shape) for p in model.parameters()))
