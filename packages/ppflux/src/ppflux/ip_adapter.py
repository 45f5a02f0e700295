"""IP-Adapter for FLUX.1 (the XLabs format diffusers loads): image prompts through a CLIP
vision encoder, an image projection and extra key/value projections in every double block.

``pipe.load_ip_adapter(folder_or_file, weight_name=..., image_encoder_pretrained_model_name_or_path=...)``
reads ``ip_adapter_proj_model.*`` / ``image_proj.*`` (the projection: a linear layer to
4 or 16 tokens of the T5 width, then a LayerNorm) and ``double_blocks.N.*`` / ``ip_adapter.N.*``
(``to_k_ip`` / ``to_v_ip`` of block N). In each double block the image tokens' normalised
queries (before RoPE) attend to those keys and values; the result, times the adapter's scale,
is added after the block's MLP. Several adapters may be loaded at once (a list of files).
The weights are held beside the transformer's parameters, so ``save_pretrained`` of the
transformer is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._compat import require_paddle
from .models.loading import LayoutError

paddle = require_paddle()
import paddle.nn as nn  # noqa: E402


class ImageProjection(nn.Layer):
    """CLIP image embedding ``[B, D]`` -> ``num_tokens`` tokens ``[B, num_tokens, dim]``."""

    def __init__(self, image_embed_dim: int, cross_attention_dim: int, num_tokens: int):
        super().__init__()
        self.num_tokens = num_tokens
        self.image_embeds = nn.Linear(image_embed_dim, cross_attention_dim * num_tokens)
        self.norm = nn.LayerNorm(cross_attention_dim)

    def forward(self, image_embeds):
        x = self.image_embeds(image_embeds.astype(self.image_embeds.weight.dtype))
        return self.norm(x.reshape([x.shape[0], self.num_tokens, -1]))


class IPAdapterKV:
    """``to_k_ip`` / ``to_v_ip`` of one double block, one pair per loaded adapter."""

    def __init__(self, to_k_ip, to_v_ip, scale):
        self.to_k_ip, self.to_v_ip, self.scale = to_k_ip, to_v_ip, list(scale)


def _linear(weight: np.ndarray, bias: np.ndarray) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.weight.set_value(paddle.to_tensor(np.ascontiguousarray(weight.T.astype(np.float32))))
    layer.bias.set_value(paddle.to_tensor(bias.astype(np.float32)))
    return layer


def read_ip_adapter_file(path) -> dict:
    """``{"image_proj": {...}, "ip_adapter": {...}}`` with diffusers' names, from an XLabs /
    diffusers-style IP-Adapter ``.safetensors`` file."""
    from .safetensors_io import SafeOpen

    out = {"image_proj": {}, "ip_adapter": {}}
    with SafeOpen(path) as reader:
        for key in reader.keys():
            rest = ".".join(key.split(".")[1:])
            if key.startswith(("ip_adapter_proj_model.", "image_proj.")):
                out["image_proj"][rest] = reader.get(key)
            elif key.startswith(("double_blocks.", "ip_adapter.")):
                name = (
                    rest.replace("ip_adapter_double_stream_k_proj", "to_k_ip")
                    .replace("ip_adapter_double_stream_v_proj", "to_v_ip")
                    .replace("processor.", "")
                )
                out["ip_adapter"][name] = reader.get(key)
    if not out["image_proj"] or not out["ip_adapter"]:
        raise LayoutError(
            f"{path}: not a FLUX IP-Adapter file (no image projection or no "
            "to_k_ip / to_v_ip weights)"
        )
    return out


def _projection(state: dict, path) -> ImageProjection:
    if "proj.weight" not in state or "norm.weight" not in state:
        raise LayoutError(
            f"{path}: image projection needs proj.weight and norm.weight, found {sorted(state)}"
        )
    weight = state["proj.weight"]
    tokens = 16 if weight.shape[0] == 65536 else 4  # diffusers' rule for XLabs files
    dim = weight.shape[0] // tokens
    proj = ImageProjection(weight.shape[1], dim, tokens)
    proj.image_embeds.weight.set_value(paddle.to_tensor(np.ascontiguousarray(weight.T)))
    proj.image_embeds.bias.set_value(paddle.to_tensor(state["proj.bias"]))
    proj.norm.weight.set_value(paddle.to_tensor(state["norm.weight"]))
    proj.norm.bias.set_value(paddle.to_tensor(state["norm.bias"]))
    proj.eval()
    return proj


def load_ip_adapter_into_transformer(transformer, state_dicts: list, paths: list) -> None:
    """Attach the projections and every double block's key/value projections."""
    projections = [_projection(sd["image_proj"], p) for sd, p in zip(state_dicts, paths)]
    for i, block in enumerate(transformer.transformer_blocks):
        ks, vs = [], []
        for sd, path in zip(state_dicts, paths):
            try:
                ks.append(
                    _linear(
                        sd["ip_adapter"][f"{i}.to_k_ip.weight"],
                        sd["ip_adapter"][f"{i}.to_k_ip.bias"],
                    )
                )
                vs.append(
                    _linear(
                        sd["ip_adapter"][f"{i}.to_v_ip.weight"],
                        sd["ip_adapter"][f"{i}.to_v_ip.bias"],
                    )
                )
            except KeyError as exc:
                raise LayoutError(
                    f"{path}: no IP-Adapter weights for double block {i} "
                    f"({exc.args[0]}); made for another model size?"
                ) from None
            if ks[-1].weight.shape != [
                transformer.config.joint_attention_dim,
                transformer.inner_dim,
            ]:
                raise LayoutError(
                    f"{path}: to_k_ip of block {i} has shape "
                    f"{list(ks[-1].weight.shape)[::-1]}, the transformer needs "
                    f"[{transformer.inner_dim}, "
                    f"{transformer.config.joint_attention_dim}]"
                )
        block.attn.__dict__["_ip"] = IPAdapterKV(ks, vs, [1.0] * len(ks))
    transformer.__dict__["_ip_projections"] = projections


def unload_from_transformer(transformer) -> None:
    for block in transformer.transformer_blocks:
        block.attn.__dict__.pop("_ip", None)
    transformer.__dict__.pop("_ip_projections", None)


class FluxIPAdapterMixin:
    """``load_ip_adapter`` / ``set_ip_adapter_scale`` / ``unload_ip_adapter`` for FluxPipeline."""

    def load_ip_adapter(
        self,
        pretrained_model_name_or_path_or_dict,
        weight_name=None,
        subfolder="",
        image_encoder_pretrained_model_name_or_path="image_encoder",
        image_encoder_subfolder="",
        **_ignored,
    ):
        """Load one or several IP-Adapters (files, or folders + ``weight_name``) and, unless the
        pipeline has one, the CLIP vision encoder (a folder, or a sub-folder of the first
        adapter folder) with a matching image processor."""
        sources = pretrained_model_name_or_path_or_dict
        sources = sources if isinstance(sources, list) else [sources]
        names = weight_name if isinstance(weight_name, list) else [weight_name] * len(sources)
        if len(sources) == 1 and len(names) > 1:
            sources = sources * len(names)
        subfolders = subfolder if isinstance(subfolder, list) else [subfolder] * len(sources)
        if not len(sources) == len(names) == len(subfolders):
            raise ValueError("`weight_name`, `subfolder` and the sources must have the same length")
        paths = []
        for source, name, sub in zip(sources, names, subfolders):
            path = Path(source) / (sub or "") / name if name else Path(source)
            if not path.is_file():
                raise LayoutError(f"{path}: IP-Adapter file not found")
            paths.append(path)
        state_dicts = [read_ip_adapter_file(p) for p in paths]
        if self._modules.get("image_encoder") is None:
            folder = Path(image_encoder_pretrained_model_name_or_path)
            if not folder.is_absolute() and not folder.is_dir():
                folder = Path(sources[0]) / folder
            folder = folder / (image_encoder_subfolder or "")
            self._modules["image_encoder"] = load_clip_vision(folder)
        if self._modules.get("feature_extractor") is None:
            from .models.siglip import ImageProcessor

            size = self._modules["image_encoder"].config.image_size
            self._modules["feature_extractor"] = ImageProcessor(
                size={"shortest_edge": size},
                crop_size=size,
                do_center_crop=True,
                image_mean=(0.48145466, 0.4578275, 0.40821073),
                image_std=(0.26862954, 0.26130258, 0.27577711),
                image_processor_type="CLIPImageProcessor",
            )
        load_ip_adapter_into_transformer(self._component("transformer"), state_dicts, paths)

    def set_ip_adapter_scale(self, scale):
        """A float for every adapter and block, a list (one per block) or a list of those (one
        per adapter)."""
        transformer = self._component("transformer")
        projections = transformer.__dict__.get("_ip_projections")
        if not projections:
            raise ValueError("no IP-Adapter is loaded")
        n, layers = len(projections), len(transformer.transformer_blocks)
        if isinstance(scale, (int, float)):
            scale = [scale] * n
        elif n == 1 and scale and all(isinstance(s, (int, float)) for s in scale):
            scale = [list(scale)]
        if len(scale) != n:
            raise ValueError(f"cannot assign {len(scale)} scales to {n} IP-Adapters")
        per_adapter = [[s] * layers if isinstance(s, (int, float)) else list(s) for s in scale]
        if any(len(s) != layers for s in per_adapter):
            raise ValueError(f"expected a list of {layers} scales (one per double block)")
        for i, block in enumerate(transformer.transformer_blocks):
            block.attn.__dict__["_ip"].scale = [s[i] for s in per_adapter]

    def unload_ip_adapter(self):
        unload_from_transformer(self._component("transformer"))
        self._modules["image_encoder"] = None
        self._modules["feature_extractor"] = None

    def _ip_adapter_kwargs(
        self,
        joint_attention_kwargs,
        width,
        height,
        num_images_per_prompt,
        image,
        embeds,
        negative_image,
        negative_embeds,
    ):
        """joint_attention_kwargs of the conditional and the unconditional (true CFG) calls,
        with the IP-Adapter image embeddings when an image prompt is given."""
        if image is None and embeds is None and negative_image is None and negative_embeds is None:
            return joint_attention_kwargs, joint_attention_kwargs
        n = len(self._component("transformer").__dict__.get("_ip_projections") or ())
        black = [np.zeros((width, height, 3), dtype=np.uint8)] * max(n, 1)
        if image is None and embeds is None:
            image = black
        if negative_image is None and negative_embeds is None:
            negative_image = black
        base = dict(joint_attention_kwargs or {})
        cond = dict(
            base,
            ip_adapter_image_embeds=self.prepare_ip_adapter_image_embeds(
                image, embeds, num_images_per_prompt
            ),
        )
        uncond = dict(
            base,
            ip_adapter_image_embeds=self.prepare_ip_adapter_image_embeds(
                negative_image, negative_embeds, num_images_per_prompt
            ),
        )
        return cond, uncond

    def encode_image(self, image, num_images_per_prompt: int = 1):
        """CLIP ``image_embeds`` of an image (or a preprocessed tensor)."""
        if not isinstance(image, paddle.Tensor):
            image = self._component("feature_extractor")(image)
        with paddle.no_grad():
            embeds = self._component("image_encoder")(pixel_values=image).image_embeds
        return paddle.repeat_interleave(embeds, num_images_per_prompt, axis=0)

    def prepare_ip_adapter_image_embeds(
        self, ip_adapter_image, ip_adapter_image_embeds, num_images_per_prompt
    ):
        """One ``[num_images_per_prompt, 1, D]`` embedding per loaded adapter."""
        transformer = self._component("transformer")
        n = len(transformer.__dict__.get("_ip_projections") or ())
        if n == 0:
            raise ValueError(
                "ip_adapter_image given but no IP-Adapter is loaded (pipe.load_ip_adapter(...))"
            )
        if ip_adapter_image_embeds is None:
            images = ip_adapter_image if isinstance(ip_adapter_image, list) else [ip_adapter_image]
            if len(images) != n:
                raise ValueError(f"{len(images)} ip_adapter_image(s) for {n} IP-Adapter(s)")
            embeds = [self.encode_image(image, 1)[None, :] for image in images]
        else:
            embeds = (
                ip_adapter_image_embeds
                if isinstance(ip_adapter_image_embeds, list)
                else [ip_adapter_image_embeds]
            )
            if len(embeds) != n:
                raise ValueError(f"{len(embeds)} ip_adapter_image_embeds for {n} IP-Adapter(s)")
            embeds = [paddle.to_tensor(e) for e in embeds]
        return [paddle.concat([e] * num_images_per_prompt, axis=0) for e in embeds]


def load_clip_vision(folder: Path):
    """ppdiffusers' ``CLIPVisionModelWithProjection`` from a transformers folder (weights with
    or without the ``vision_model.`` prefix)."""
    from ppdiffusers.transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from .models.loading import _weight_files, load_state_streaming

    if not (folder / "config.json").is_file():
        raise LayoutError(
            f"{folder}: no config.json for the IP-Adapter's CLIP image encoder "
            "(pass image_encoder_pretrained_model_name_or_path)"
        )
    files = _weight_files(folder, "model.safetensors")
    if not files:
        raise LayoutError(f"{folder}: no model.safetensors (CLIP image encoder)")
    model = CLIPVisionModelWithProjection(CLIPVisionConfig.from_pretrained(str(folder)))
    own = set(model.state_dict())

    def key_map(key):
        if key in own:
            return key
        if f"vision_model.{key}" in own:
            return f"vision_model.{key}"
        return None if key.endswith("position_ids") else key

    report = load_state_streaming(model, files, "torch", key_map=key_map, strict=False)
    missing = [k for k in report["missing"] if not k.endswith("position_ids")]
    if missing or report["unexpected"]:
        raise LayoutError(
            f"{folder}: not a CLIPVisionModelWithProjection checkpoint (missing "
            f"{missing[:5]}, unexpected {report['unexpected'][:5]})"
        )
    model.eval()
    return model
