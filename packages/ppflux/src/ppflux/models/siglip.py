"""SigLIP vision tower (the image encoder of FLUX.1 Redux) and its image preprocessing, in Paddle.

Parameter names follow transformers' ``SiglipVisionModel`` (``embeddings.*``,
``encoder.layers.N.*``, ``post_layernorm.*``); checkpoints saved by transformers 4 carry a
``vision_model.`` prefix, which is accepted too. The attention-pooling ``head.*`` is not used
by Redux (it reads ``last_hidden_state``) and is not loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .._compat import require_paddle

paddle = require_paddle()
import paddle.nn as nn  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

from .loading import LayoutError, _weight_files, load_state_streaming, read_config  # noqa: E402


@dataclass
class SiglipVisionConfig:
    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int = 384
    patch_size: int = 14
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6

    @classmethod
    def from_dict(cls, config: dict) -> SiglipVisionConfig:
        config = config.get("vision_config", config)  # a full SiglipModel config
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in known})


_ACTIVATIONS = {
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate=True),
    "gelu": lambda x: F.gelu(x),
    "quick_gelu": lambda x: x * F.sigmoid(1.702 * x),
}


class SiglipVisionEmbeddings(nn.Layer):
    def __init__(self, config: SiglipVisionConfig):
        super().__init__()
        self.patch_embedding = nn.Conv2D(
            config.num_channels,
            config.hidden_size,
            kernel_size=config.patch_size,
            stride=config.patch_size,
        )
        self.num_positions = (config.image_size // config.patch_size) ** 2
        self.position_embedding = nn.Embedding(self.num_positions, config.hidden_size)

    def forward(self, pixel_values):
        patches = self.patch_embedding(pixel_values.astype(self.patch_embedding.weight.dtype))
        embeddings = patches.flatten(2).transpose([0, 2, 1])
        if embeddings.shape[1] != self.num_positions:
            raise ValueError(
                f"SigLIP expects {self.num_positions} patches, got "
                f"{embeddings.shape[1]} (image size does not match the config)"
            )
        return embeddings + self.position_embedding.weight[None]


class SiglipAttention(nn.Layer):
    def __init__(self, config: SiglipVisionConfig):
        super().__init__()
        dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = dim // self.num_heads
        self.scale = self.head_dim**-0.5
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, s, _ = x.shape

        def heads(t):
            return t.reshape([b, s, self.num_heads, self.head_dim]).transpose([0, 2, 1, 3])

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        weights = F.softmax(paddle.matmul(q, k, transpose_y=True) * self.scale, axis=-1)
        out = paddle.matmul(weights, v).transpose([0, 2, 1, 3]).reshape([b, s, -1])
        return self.out_proj(out)


class SiglipMLP(nn.Layer):
    def __init__(self, config: SiglipVisionConfig):
        super().__init__()
        if config.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"unsupported SigLIP activation {config.hidden_act!r}")
        self.act = _ACTIVATIONS[config.hidden_act]
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SiglipEncoderLayer(nn.Layer):
    def __init__(self, config: SiglipVisionConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.self_attn = SiglipAttention(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.mlp = SiglipMLP(config)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipEncoder(nn.Layer):
    def __init__(self, config: SiglipVisionConfig):
        super().__init__()
        self.layers = nn.LayerList(
            [SiglipEncoderLayer(config) for _ in range(config.num_hidden_layers)]
        )

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


@dataclass
class SiglipVisionOutput:
    last_hidden_state: paddle.Tensor


class SiglipVisionModel(nn.Layer):
    """SigLIP's vision transformer up to ``post_layernorm`` (``last_hidden_state``)."""

    def __init__(self, config: SiglipVisionConfig):
        super().__init__()
        self.config = config
        self.embeddings = SiglipVisionEmbeddings(config)
        self.encoder = SiglipEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)

    def forward(self, pixel_values):
        """``pixel_values`` ``[B, 3, image_size, image_size]`` (preprocessed) ->
        ``SiglipVisionOutput(last_hidden_state=[B, patches, hidden_size])``."""
        hidden = self.encoder(self.embeddings(pixel_values))
        return SiglipVisionOutput(last_hidden_state=self.post_layernorm(hidden))

    def save_pretrained(self, folder):
        save_siglip(self, folder)

    @classmethod
    def from_pretrained(cls, folder):
        folder = Path(folder)
        model = cls(SiglipVisionConfig.from_dict(read_config(folder)))
        found = [
            (layout, files)
            for name, layout in (
                ("model.safetensors", "torch"),
                ("paddle_model.safetensors", "paddle"),
            )
            if (files := _weight_files(folder, name))
        ]
        if not found:
            raise LayoutError(f"{folder}: no model.safetensors (SigLIP vision weights)")
        layout, files = found[0]

        def key_map(key):
            if key.startswith("vision_model."):
                key = key[len("vision_model.") :]
            if key.startswith(("head.", "text_model.", "logit_")) or key.endswith("position_ids"):
                return None
            return key

        report = load_state_streaming(model, files, layout, key_map=key_map, strict=False)
        if report["missing"] or report["unexpected"]:
            raise LayoutError(
                f"{folder}: not a SigLIP vision checkpoint (missing "
                f"{report['missing'][:5]}, unexpected {report['unexpected'][:5]})"
            )
        model.eval()
        return model


class ImageProcessor:
    """transformers' CLIP / SigLIP image preprocessing (the PIL path): RGB, resize (to
    ``size`` height x width, or the shortest edge to ``size["shortest_edge"]``) with PIL's
    ``resample``, optional center crop to ``crop_size``, scale by ``rescale_factor``, normalise
    with ``image_mean`` / ``image_std``."""

    def __init__(
        self,
        size=None,
        resample: int = 3,
        rescale_factor: float = 1 / 255,
        image_mean=(0.5, 0.5, 0.5),
        image_std=(0.5, 0.5, 0.5),
        do_resize=True,
        do_rescale=True,
        do_normalize=True,
        do_convert_rgb=True,
        crop_size=None,
        do_center_crop=False,
        image_processor_type="SiglipImageProcessor",
        **_ignored,
    ):
        size = size if size is not None else {"height": 384, "width": 384}
        if isinstance(size, int):
            size = {"shortest_edge": size}
        self.size = dict(size)
        if isinstance(crop_size, int):
            crop_size = {"height": crop_size, "width": crop_size}
        self.crop_size = dict(crop_size) if crop_size else None
        self.resample, self.rescale_factor = resample, rescale_factor
        self.mean = np.asarray(image_mean, np.float32)
        self.std = np.asarray(image_std, np.float32)
        self.do_resize, self.do_rescale = do_resize, do_rescale
        self.do_normalize, self.do_convert_rgb = do_normalize, do_convert_rgb
        self.do_center_crop = do_center_crop
        self.image_processor_type = image_processor_type

    @classmethod
    def from_pretrained(cls, folder):
        path = Path(folder) / "preprocessor_config.json"
        if not path.is_file():
            raise LayoutError(f"{folder}: no preprocessor_config.json")
        from .._errors import read_json_object

        return cls(**read_json_object(path, "preprocessor_config.json"))

    def to_dict(self) -> dict:
        return {
            "image_processor_type": self.image_processor_type,
            "size": self.size,
            "crop_size": self.crop_size,
            "do_center_crop": self.do_center_crop,
            "resample": self.resample,
            "rescale_factor": self.rescale_factor,
            "image_mean": self.mean.tolist(),
            "image_std": self.std.tolist(),
            "do_resize": self.do_resize,
            "do_rescale": self.do_rescale,
            "do_normalize": self.do_normalize,
            "do_convert_rgb": self.do_convert_rgb,
        }

    def save_pretrained(self, folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "preprocessor_config.json").write_text(json.dumps(self.to_dict(), indent=2))

    def __call__(self, images):
        """PIL image(s) or ``[H, W, 3]`` uint8 arrays -> ``[B, 3, H, W]`` float32 tensor."""
        from PIL import Image

        images = images if isinstance(images, (list, tuple)) else [images]
        batch = []
        for image in images:
            if isinstance(image, np.ndarray):
                image = Image.fromarray(image)
            if self.do_convert_rgb:
                image = image.convert("RGB")
            if self.do_resize:
                image = self._resize(image)
            if self.do_center_crop and self.crop_size:
                image = self._center_crop(image)
            array = np.asarray(image, dtype=np.float32)
            if self.do_rescale:
                array = array * np.float32(self.rescale_factor)
            if self.do_normalize:
                array = (array - self.mean) / self.std
            batch.append(array.transpose(2, 0, 1))
        return paddle.to_tensor(np.stack(batch).astype(np.float32))

    def _resize(self, image):
        w, h = image.size
        if "shortest_edge" in self.size:
            edge = int(self.size["shortest_edge"])
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(edge * long / short)
            target = (edge, new_long) if w <= h else (new_long, edge)
        else:
            target = (int(self.size["width"]), int(self.size["height"]))
        return image if image.size == target else image.resize(target, resample=self.resample)

    def _center_crop(self, image):
        w, h = image.size
        cw, ch = int(self.crop_size["width"]), int(self.crop_size["height"])
        if (w, h) == (cw, ch):
            return image
        if cw > w or ch > h:
            raise ValueError(f"image {w}x{h} is smaller than the crop {cw}x{ch}")
        left, top = (w - cw) // 2, (h - ch) // 2
        return image.crop((left, top, left + cw, top + ch))


def save_siglip(model: SiglipVisionModel, folder) -> None:
    """config.json (transformers' keys) + Paddle-layout ``paddle_model.safetensors``."""
    from dataclasses import asdict

    from ..safetensors_io import save_numpy

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(
        asdict(model.config), model_type="siglip_vision_model", architectures=["SiglipVisionModel"]
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    save_numpy(
        folder / "paddle_model.safetensors",
        {k: v.astype("float32").numpy() for k, v in model.state_dict().items()},
        {"format": "paddle"},
    )


SiglipImageProcessor = ImageProcessor  # the name transformers uses for Redux's processor
