"""GOT-OCR2.0 configuration: plain dataclasses, checked values, parameter shapes. No Paddle.

Everything that reads or writes a checkpoint folder without running the model (``ppgotocr
convert``, the loaders' checks) needs only this module, so conversion works where Paddle is
not installed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import UserError, read_json_object

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_TAG = "ppgotocr"


class ConfigError(UserError):
    """A config.json value of the wrong type or out of range."""


@dataclass
class GotOcr2VisionConfig:
    hidden_size: int = 768
    output_channels: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 1024
    patch_size: int = 16
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    use_abs_pos: bool = True
    use_rel_pos: bool = True
    window_size: int = 14
    global_attn_indexes: list = field(default_factory=lambda: [2, 5, 8, 11])
    mlp_dim: int = 3072


@dataclass
class GotOcr2TextConfig:
    vocab_size: int = 151860
    hidden_size: int = 1024
    intermediate_size: int = 2816
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    num_key_value_heads: int = 16
    max_position_embeddings: int = 32768
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1000000.0
    tie_word_embeddings: bool = True


@dataclass
class GotOcr2Config:
    vision: GotOcr2VisionConfig = field(default_factory=GotOcr2VisionConfig)
    text: GotOcr2TextConfig = field(default_factory=GotOcr2TextConfig)
    # Special token ids. Filled from the source config / tokenizer, never assumed.
    image_token_id: int | None = None  # <imgpad>
    img_start_token_id: int | None = None  # <img>
    img_end_token_id: int | None = None  # </img>
    eos_token_id: int | None = None  # <|endoftext|>
    pad_token_id: int | None = None

    @property
    def image_seq_length(self) -> int:
        """Tokens per view: patches per side, then two stride-2 convolutions."""
        side = self.vision.image_size // self.vision.patch_size
        side = (side + 1) // 2
        side = (side + 1) // 2
        return side * side

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["format"] = FORMAT_TAG
        return d

    @classmethod
    def from_dict(cls, d: dict, source=None) -> GotOcr2Config:
        """Build and validate; ``source`` (a path) is named in errors."""
        for part in ("vision", "text"):
            if not isinstance(d.get(part, {}), dict):
                raise ConfigError(f"'{part}' must be an object", source)
        vision = _build(GotOcr2VisionConfig, d.get("vision", {}), "vision", source)
        text = _build(GotOcr2TextConfig, d.get("text", {}), "text", source)
        keys = {f.name for f in dataclasses.fields(cls)} - {"vision", "text"}
        config = cls(vision=vision, text=text, **{k: d[k] for k in keys if k in d})
        config.validate(source)
        return config

    def validate(self, source=None) -> GotOcr2Config:
        """Raise ``ConfigError`` naming ``source`` for any value of the wrong type or range."""
        v, t = self.vision, self.text

        def need(ok: bool, problem: str):
            if not ok:
                raise ConfigError(problem, source)

        for prefix, cfg in (("vision", v), ("text", t)):
            for f in dataclasses.fields(cfg):
                value = getattr(cfg, f.name)
                name = f"{prefix}.{f.name}"
                if f.type in ("int", int):
                    need(
                        _is_int(value) and value > 0,
                        f"{name} must be a positive integer, got {value!r}",
                    )
                elif f.type in ("float", float):
                    need(
                        _is_number(value) and math.isfinite(value) and value > 0,
                        f"{name} must be a positive number, got {value!r}",
                    )
                elif f.type in ("bool", bool):
                    need(isinstance(value, bool), f"{name} must be true or false, got {value!r}")
        need(
            v.hidden_size % v.num_attention_heads == 0,
            f"vision.hidden_size {v.hidden_size} is not divisible by "
            f"vision.num_attention_heads {v.num_attention_heads}",
        )
        need(
            v.image_size % v.patch_size == 0,
            f"vision.image_size {v.image_size} is not a multiple of vision.patch_size "
            f"{v.patch_size}",
        )
        need(
            isinstance(v.global_attn_indexes, list)
            and all(_is_int(i) and 0 <= i < v.num_hidden_layers for i in v.global_attn_indexes),
            f"vision.global_attn_indexes must list layer numbers below "
            f"{v.num_hidden_layers}, got {v.global_attn_indexes!r}",
        )
        need(
            t.hidden_size % t.num_attention_heads == 0,
            f"text.hidden_size {t.hidden_size} is not divisible by text.num_attention_heads "
            f"{t.num_attention_heads}",
        )
        need(
            t.num_attention_heads % t.num_key_value_heads == 0,
            f"text.num_attention_heads {t.num_attention_heads} is not a multiple of "
            f"text.num_key_value_heads {t.num_key_value_heads}",
        )
        need(
            (t.hidden_size // t.num_attention_heads) % 2 == 0,
            "text head dimension must be even (rotary embeddings)",
        )
        for attr in (
            "image_token_id",
            "img_start_token_id",
            "img_end_token_id",
            "eos_token_id",
            "pad_token_id",
        ):
            value = getattr(self, attr)
            need(
                value is None or (_is_int(value) and 0 <= value < t.vocab_size),
                f"{attr} must be a token id below vocab_size {t.vocab_size}, got {value!r}",
            )
        return self

    def save(self, folder) -> None:
        Path(folder, CONFIG_NAME).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, folder) -> GotOcr2Config:
        path = Path(folder, CONFIG_NAME)
        d = read_json_object(path, "config")
        if d.get("format") != FORMAT_TAG:
            raise ConfigError(
                "not a ppgotocr config; convert the checkpoint first with "
                "`ppgotocr convert SRC OUT`",
                path,
            )
        return cls.from_dict(d, path)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _build(cls, values: dict, prefix: str, source):
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            continue
        kind = known[key].type
        if kind in ("float", float) and _is_int(value):
            value = float(value)
        kwargs[key] = value
    return cls(**kwargs)


def parameter_shapes(config: GotOcr2Config) -> dict[str, tuple[int, ...]]:
    """Every parameter of the model with its shape in Paddle's layout (Linear ``[in, out]``)."""
    v, t = config.vision, config.text
    shapes: dict[str, tuple[int, ...]] = {}
    d, side = v.hidden_size, v.image_size // v.patch_size
    head = d // v.num_attention_heads
    p = "vision_tower."
    shapes[p + "patch_embed.projection.weight"] = (d, v.num_channels, v.patch_size, v.patch_size)
    shapes[p + "patch_embed.projection.bias"] = (d,)
    if v.use_abs_pos:
        shapes[p + "pos_embed"] = (1, side, side, d)
    for i in range(v.num_hidden_layers):
        q = f"{p}layers.{i}."
        size = side if i in v.global_attn_indexes else v.window_size
        for n in ("layer_norm1", "layer_norm2"):
            shapes[q + n + ".weight"] = (d,)
            shapes[q + n + ".bias"] = (d,)
        shapes[q + "attn.qkv.weight"] = (d, 3 * d)
        if v.qkv_bias:
            shapes[q + "attn.qkv.bias"] = (3 * d,)
        shapes[q + "attn.proj.weight"] = (d, d)
        shapes[q + "attn.proj.bias"] = (d,)
        if v.use_rel_pos:
            shapes[q + "attn.rel_pos_h"] = (2 * size - 1, head)
            shapes[q + "attn.rel_pos_w"] = (2 * size - 1, head)
        shapes[q + "mlp.lin1.weight"] = (d, v.mlp_dim)
        shapes[q + "mlp.lin1.bias"] = (v.mlp_dim,)
        shapes[q + "mlp.lin2.weight"] = (v.mlp_dim, d)
        shapes[q + "mlp.lin2.bias"] = (d,)
    c = v.output_channels
    shapes[p + "neck.conv1.weight"] = (c, d, 1, 1)
    shapes[p + "neck.layer_norm1.weight"] = (c,)
    shapes[p + "neck.layer_norm1.bias"] = (c,)
    shapes[p + "neck.conv2.weight"] = (c, c, 3, 3)
    shapes[p + "neck.layer_norm2.weight"] = (c,)
    shapes[p + "neck.layer_norm2.bias"] = (c,)
    h = t.hidden_size
    shapes["multi_modal_projector.conv_upsampler1.weight"] = (2 * c, c, 3, 3)
    shapes["multi_modal_projector.conv_upsampler2.weight"] = (h, 2 * c, 3, 3)
    shapes["multi_modal_projector.multimodal_projector.weight"] = (h, h)
    shapes["multi_modal_projector.multimodal_projector.bias"] = (h,)
    head = h // t.num_attention_heads
    kv = t.num_key_value_heads * head
    shapes["language_model.embed_tokens.weight"] = (t.vocab_size, h)
    for i in range(t.num_hidden_layers):
        q = f"language_model.layers.{i}."
        shapes[q + "input_layernorm.weight"] = (h,)
        shapes[q + "post_attention_layernorm.weight"] = (h,)
        shapes[q + "self_attn.q_proj.weight"] = (h, t.num_attention_heads * head)
        shapes[q + "self_attn.q_proj.bias"] = (t.num_attention_heads * head,)
        shapes[q + "self_attn.k_proj.weight"] = (h, kv)
        shapes[q + "self_attn.k_proj.bias"] = (kv,)
        shapes[q + "self_attn.v_proj.weight"] = (h, kv)
        shapes[q + "self_attn.v_proj.bias"] = (kv,)
        shapes[q + "self_attn.o_proj.weight"] = (t.num_attention_heads * head, h)
        shapes[q + "mlp.gate_proj.weight"] = (h, t.intermediate_size)
        shapes[q + "mlp.up_proj.weight"] = (h, t.intermediate_size)
        shapes[q + "mlp.down_proj.weight"] = (t.intermediate_size, h)
    shapes["language_model.norm.weight"] = (h,)
    if not t.tie_word_embeddings:
        shapes["lm_head.weight"] = (h, t.vocab_size)
    return shapes
