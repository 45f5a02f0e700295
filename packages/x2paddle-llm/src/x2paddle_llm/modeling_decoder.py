"""The Paddle decoder assembled from the shared blocks, for every family.

The KV cache is a list of ``(key, value)`` per layer, each ``[batch, kv_heads, time, head_dim]``.
"""

from __future__ import annotations

from pathlib import Path

from ._paddle import require_paddle
from .blocks import (
    Block,
    FusableLinears,
    Linear,
    MoE,
    Norm,
    Rotary,
    attention_bias,
    default_dtype,
)
from .config import DecoderConfig

paddle = require_paddle()
nn = paddle.nn

_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


class DecoderForCausalLM(nn.Layer):
    """Paddle decoder for every family this package converts (see ``x2paddle_llm.families``)."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.config = cfg
        h = cfg.hidden_size
        self.embed = nn.Embedding(cfg.vocab_size, h)
        self.pos_embed = (
            nn.Embedding(cfg.max_position_embeddings, h) if cfg.learned_positions else None
        )
        self.layers = nn.LayerList([Block(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = Norm(h, cfg)
        if cfg.tie_word_embeddings:
            self.lm_head = None
            self.lm_head_bias = (
                self.create_parameter([cfg.vocab_size], is_bias=True) if cfg.lm_head_bias else None
            )
        else:
            self.lm_head = Linear(h, cfg.vocab_size, bias_attr=None if cfg.lm_head_bias else False)
        self.layer_types = sorted(set(cfg.layer_types))
        self.rotary = (
            None
            if cfg.learned_positions
            else nn.LayerDict(
                {t: Rotary(cfg, t) for t in sorted({self._rope_key(t) for t in cfg.layer_types})}
            )
        )
        self.windows = {
            t: cfg.sliding_window if t == "sliding_attention" else None for t in self.layer_types
        }

    def _rope_key(self, layer_type: str) -> str:
        return layer_type if layer_type in self.config.rope_per_layer_type else "full_attention"

    def logits(self, hidden):
        cfg = self.config
        if self.lm_head is None:
            out = paddle.matmul(hidden, self.embed.weight, transpose_y=True)
            if self.lm_head_bias is not None:
                out = out + self.lm_head_bias
        else:
            out = self.lm_head(hidden)
        if cfg.logits_scale != 1.0:
            out = out * cfg.logits_scale
        if cfg.final_softcap:
            out = paddle.tanh(out / cfg.final_softcap) * cfg.final_softcap
        return out

    def decode_layers(self, input_ids, mask2d, position_ids, past_key_values=None, start=None):
        """Hidden states after the final norm, and the grown cache.

        ``past_key_values``: ``(key, value)`` pairs (the cache grows by concatenation) or
        :class:`~x2paddle_llm.blocks.CacheSlot` s (preallocated; the step is written at
        ``start``, the position of ``input_ids`` in ``mask2d``).
        """
        cfg = self.config
        x = self.embed(input_ids)
        if cfg.embed_scale != 1.0:
            x = x * paddle.to_tensor(cfg.embed_scale, dtype=x.dtype)
        if self.pos_embed is not None:
            x = x + self.pos_embed(position_ids)
            rope = {}
        else:
            rope = {key: layer(position_ids, x.dtype) for key, layer in self.rotary.items()}
        query_len = input_ids.shape[1] if paddle.in_dynamic_mode() else paddle.shape(input_ids)[1]
        biases = {t: attention_bias(mask2d, query_len, w, start) for t, w in self.windows.items()}
        presents = []
        for i, layer in enumerate(self.layers):
            cos, sin = rope.get(self._rope_key(layer.layer_type), (None, None))
            past = past_key_values[i] if past_key_values is not None else None
            x, present = layer(x, cos, sin, biases[layer.layer_type], past)
            presents.append(present)
        return self.norm(x), presents

    def forward(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        last_only: bool = False,
    ):
        """Return ``(logits, presents)``.

        Args:
            input_ids: ``[B, S]`` int64 token ids.
            attention_mask: ``[B, past + S]`` (1 = token, 0 = padding); all ones when omitted.
            position_ids: ``[B, S]``; default ``cumsum(mask) - 1`` like Hugging Face generation,
                so left padding works.
            past_key_values: the ``presents`` of the previous call, or None.
            last_only: compute the logits of the last position only (generation).
        """
        if attention_mask is None:
            past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
            attention_mask = paddle.ones(
                [input_ids.shape[0], past_len + input_ids.shape[1]], dtype="int64"
            )
        if position_ids is None:
            position_ids = default_position_ids(attention_mask, input_ids.shape[1])
        hidden, presents = self.decode_layers(
            input_ids, attention_mask, position_ids, past_key_values
        )
        if last_only:
            hidden = hidden[:, -1:, :]
        return self.logits(hidden), presents

    # ------------------------------------------------------- fused projections
    def fuse_projections(self) -> DecoderForCausalLM:
        """Fuse the projections every block declares fusable (``FUSE``: q/k/v, gate/up, MLA's
        two down-projections of the input) into one matrix each, then stack each MoE layer's
        experts for the grouped kernel where it is available (:meth:`MoE.stack_experts`); done
        by :meth:`from_pretrained`.  The numbers are the same up to float rounding; checkpoints
        keep the published names (:meth:`published_state_dict`)."""
        for layer in self.sublayers():
            if isinstance(layer, FusableLinears):
                layer.fuse()
        for layer in self.sublayers():
            if isinstance(layer, MoE):
                layer.stack_experts()
        return self

    def published_state_dict(self) -> dict:
        """The state dict under the published (checkpoint) names: fused projections split back."""
        state = dict(self.state_dict())
        for path, layer in self.named_sublayers():
            for fused_name in getattr(layer, "_fused", {}):
                for suffix in ("weight", "bias"):
                    key = f"{path}.{fused_name}.{suffix}"
                    if key in state:
                        for part, value in layer.published_parts(
                            fused_name, suffix, state.pop(key)
                        ):
                            state[f"{path}.{part}"] = value
        return state

    # ----------------------------------------------------------------- folders
    @classmethod
    def from_pretrained(
        cls, folder: str | Path, dtype: str | None = "float32"
    ) -> DecoderForCausalLM:
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
        with default_dtype("float32"):
            model = cls(cfg)
        load_state_into(model, folder, cfg)
        model.fuse_projections()
        if dtype != "float32":
            model.to(dtype=dtype)
        model.eval()
        return model

    def save_pretrained(self, folder: str | Path, overwrite: bool = False) -> None:
        """Write config.json + model.safetensors (the ``--target paddle`` layout).

        The folder appears complete or not at all; an existing non-empty folder is replaced
        only with ``overwrite=True``, and only once the new one is complete.
        """
        import json

        from safetensors.numpy import save_file

        from ._atomic import atomic_dir

        with atomic_dir(folder, overwrite=overwrite) as tmp:
            tmp = Path(tmp)
            self.config.save(tmp)
            state = {
                k: v.astype("float32").numpy()
                for k, v in self.published_state_dict().items()
                if not k.endswith(("inv_freq", "freq_exponents"))
            }
            save_file(state, str(tmp / "model.safetensors"), metadata={"format": "np"})
            (tmp / "generation_config.json").write_text(
                json.dumps({"eos_token_id": self.config.eos_token_id})
            )


def default_position_ids(mask2d, query_len):
    """Positions of the last ``query_len`` tokens: ``cumsum(mask) - 1`` (padding clipped to 0)."""
    pos = paddle.cumsum(mask2d.astype("int64"), axis=-1) - 1
    pos = paddle.clip(pos, min=0)
    return (
        pos[:, -query_len:]
        if isinstance(query_len, int)
        else pos[:, paddle.shape(mask2d)[1] - query_len :]
    )
