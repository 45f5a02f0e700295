"""What every ppflux pipeline shares before denoising: its components (loading from a folder,
lazily with ``low_memory``, saving), prompt encoding with CLIP and T5, and argument checks."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import numpy as np

from .._atomic import atomic_dir
from .._compat import require_paddle
from ..models.loading import LayoutError

paddle = require_paddle()
from ppdiffusers.image_processor import VaeImageProcessor  # noqa: E402

from . import components as C  # noqa: E402

logger = logging.getLogger("ppflux")


class FluxPipelineBase:
    """Components, prompts and checks; the class attributes ``_required`` / ``_optional`` /
    ``_may_be_absent`` / ``_loaders`` of a pipeline say what its folder holds."""

    # ------------------------------------------------------------------ components
    def __getattr__(self, name):
        modules = self.__dict__.get("_modules", {})
        if name in modules:
            return self._component(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def components(self) -> dict:
        return dict(self._modules)

    def _component(self, name):
        value = self._modules.get(name)
        if value is None and name in getattr(self, "_lazy_cache", {}):
            return self._lazy_cache[name]
        if value is None and self._folder is not None and name in self._subfolders():
            value = self._load_component(name)
            if not self.low_memory or name in ("scheduler", "tokenizer", "tokenizer_2"):
                self._modules[name] = value
            else:
                self._lazy_cache[name] = value
        return value

    def _release(self, *names):
        if not self.low_memory:
            return
        cache = getattr(self, "_lazy_cache", {})
        for name in names:
            cache.pop(name, None)
        gc.collect()

    def _subfolders(self):
        return self.__dict__.get("_subfolder_names", ())

    def _load_component(self, name):
        folder = self._folder / name
        if name in ("transformer",):
            from ..models.transformer_flux import FluxTransformer2DModel

            return FluxTransformer2DModel.from_pretrained(folder)
        if name == "controlnet":
            from ..models.controlnet_flux import FluxControlNetModel

            return FluxControlNetModel.from_pretrained(folder)
        return self._loaders[name](folder)

    def _config_of(self, name) -> dict:
        module = self._modules.get(name)
        if module is not None and hasattr(module, "config"):
            return dict(module.config)
        if name not in self._configs and self._folder is not None:
            import json

            fname = "scheduler_config.json" if name == "scheduler" else "config.json"
            self._configs[name] = json.loads((self._folder / name / fname).read_text())
        return self._configs.get(name, {})

    def _init_processors(self):
        has_vae = self._modules.get("vae") is not None or "vae" in self._subfolders()
        vae_cfg = self._config_of("vae") if has_vae else {}
        blocks = vae_cfg.get("block_out_channels")
        self.vae_scale_factor = 2 ** (len(blocks) - 1) if blocks else 8
        self.latent_channels = vae_cfg.get("latent_channels", 16)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor * 2)
        self.mask_processor = VaeImageProcessor(
            vae_scale_factor=self.vae_scale_factor * 2,
            vae_latent_channels=self.latent_channels,
            do_normalize=False,
            do_binarize=True,
            do_convert_grayscale=True,
        )
        tok = self._modules.get("tokenizer")
        self.tokenizer_max_length = getattr(tok, "model_max_length", 77) if tok is not None else 77
        self.default_sample_size = 128

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, low_memory: bool = False, **components):
        """Load a diffusers-layout folder (torch safetensors, converted while loading) or a
        folder saved by ``save_pretrained``. Components passed as keywords replace the
        folder's."""
        root = Path(pretrained_model_name_or_path)
        if not root.is_dir():
            raise LayoutError(f"{root}: not a folder (ppflux reads local folders only)")
        index = C.read_model_index(root)
        needed = cls._required + cls._optional
        on_disk = {
            n
            for n in needed + cls._may_be_absent
            if n in index and index[n] and index[n][0] and (root / n).is_dir()
        }
        missing = [n for n in needed if n not in components and n not in on_disk]
        if missing:
            raise LayoutError(
                f"{root}: pipeline components missing: {', '.join(missing)} "
                f"(expected sub-folders next to model_index.json)"
            )
        pipe = cls.__new__(cls)
        pipe._folder = root
        pipe.low_memory = low_memory
        pipe._lazy_cache = {}
        pipe._configs = {}
        names = needed + cls._may_be_absent
        pipe._subfolder_names = tuple(n for n in names if n not in components and n in on_disk)
        pipe._modules = {n: components.get(n) for n in names}
        if not low_memory:
            for name in pipe._subfolder_names:
                pipe._modules[name] = pipe._load_component(name)
        else:
            for name in ("scheduler", "tokenizer", "tokenizer_2", "feature_extractor"):
                if pipe._modules.get(name) is None and name in pipe._subfolder_names:
                    pipe._modules[name] = pipe._load_component(name)
        pipe._init_processors()
        return pipe

    def save_pretrained(self, save_directory, overwrite: bool = False):
        """Save every component in the Paddle layout next to a model_index.json. The folder
        appears only when complete; an existing non-empty folder is refused unless
        ``overwrite`` (then replaced once the new one is complete)."""
        import json

        from .. import __version__

        target = Path(save_directory)
        with atomic_dir(target, overwrite=overwrite) as tmp:
            index = {
                "_class_name": type(self).__name__,
                "_diffusers_version": "0.32.2",
                "_ppflux_version": __version__,
            }
            for name in self._modules:
                module = self._component(name)
                if module is None:
                    continue
                sub = tmp / name
                if name.startswith("tokenizer"):
                    module.save_pretrained(str(sub))
                elif name in ("text_encoder", "text_encoder_2"):
                    C.save_text_encoder(module, sub)
                elif name == "vae":
                    C.save_vae(module, sub)
                else:
                    module.save_pretrained(sub)
                lib = (
                    "transformers"
                    if name.startswith(
                        ("tokenizer", "text_encoder", "image_encoder", "feature_extractor")
                    )
                    else "diffusers"
                )
                index[name] = [lib, C.diffusers_class_name(name, module)]
                self._release(name)
            (tmp / "model_index.json").write_text(json.dumps(index, indent=2))

    # ------------------------------------------------------------------ prompts
    def _get_t5_prompt_embeds(
        self, prompt, num_images_per_prompt=1, max_sequence_length=512, dtype=None
    ):
        prompt = [prompt] if isinstance(prompt, str) else list(prompt)
        tokenizer = self._component("tokenizer_2")
        inputs = tokenizer(
            prompt,
            padding="max_length",
            max_length=max_sequence_length,
            truncation=True,
            return_length=False,
            return_overflowing_tokens=False,
            return_tensors="np",
        )
        ids = np.asarray(inputs["input_ids"])
        untruncated = tokenizer(prompt, padding="longest", return_tensors="np")["input_ids"]
        if np.asarray(untruncated).shape[-1] > ids.shape[-1]:
            removed = tokenizer.batch_decode(
                np.asarray(untruncated)[:, max_sequence_length - 1 : -1]
            )
            logger.warning(
                "The following part of your input was truncated because "
                "`max_sequence_length` is set to %d tokens: %s",
                max_sequence_length,
                removed,
            )
        encoder = self._component("text_encoder_2")
        with paddle.no_grad():
            embeds = encoder(paddle.to_tensor(ids, dtype="int64"), output_hidden_states=False)[0]
        if dtype is not None:
            embeds = embeds.astype(dtype)
        b, seq, _ = embeds.shape
        embeds = embeds.tile([1, num_images_per_prompt, 1]).reshape(
            [b * num_images_per_prompt, seq, -1]
        )
        return embeds

    def _get_clip_prompt_embeds(self, prompt, num_images_per_prompt=1):
        prompt = [prompt] if isinstance(prompt, str) else list(prompt)
        tokenizer = self._component("tokenizer")
        max_len = self.tokenizer_max_length
        inputs = tokenizer(
            prompt,
            padding="max_length",
            max_length=max_len,
            truncation=True,
            return_overflowing_tokens=False,
            return_length=False,
            return_tensors="np",
        )
        ids = np.asarray(inputs["input_ids"])
        untruncated = np.asarray(
            tokenizer(prompt, padding="longest", return_tensors="np")["input_ids"]
        )
        if untruncated.shape[-1] > ids.shape[-1]:
            removed = tokenizer.batch_decode(untruncated[:, max_len - 1 : -1])
            logger.warning(
                "The following part of your input was truncated because CLIP can "
                "only handle sequences up to %d tokens: %s",
                max_len,
                removed,
            )
        encoder = self._component("text_encoder")
        with paddle.no_grad():
            out = encoder(
                paddle.to_tensor(ids, dtype="int64"), output_hidden_states=False, return_dict=True
            )
        pooled = out.pooler_output
        b = pooled.shape[0]
        return pooled.tile([1, num_images_per_prompt]).reshape([b * num_images_per_prompt, -1])

    def encode_prompt(
        self,
        prompt,
        prompt_2=None,
        prompt_embeds=None,
        pooled_prompt_embeds=None,
        num_images_per_prompt: int = 1,
        max_sequence_length: int = 512,
        lora_scale=None,
    ):
        """(prompt_embeds [B, L, D], pooled_prompt_embeds [B, P], text_ids [L, 3])."""
        if prompt_embeds is None:
            prompt = [prompt] if isinstance(prompt, str) else list(prompt)
            prompt_2 = prompt_2 or prompt
            prompt_2 = [prompt_2] if isinstance(prompt_2, str) else list(prompt_2)
            pooled_prompt_embeds = self._get_clip_prompt_embeds(prompt, num_images_per_prompt)
            self._release("text_encoder")
            prompt_embeds = self._get_t5_prompt_embeds(
                prompt_2, num_images_per_prompt, max_sequence_length
            )
            self._release("text_encoder_2")
        text_ids = paddle.zeros([prompt_embeds.shape[1], 3], dtype=prompt_embeds.dtype)
        return prompt_embeds, pooled_prompt_embeds, text_ids

    # ------------------------------------------------------------------ checks
    # ------------------------------------------------------------------ latents (shared)
    def _latent_size(self, height, width):
        """The latent grid of an image size: divided by the VAE's factor and rounded down to
        an even size, so that 2x2 patches pack into tokens."""
        div = self.vae_scale_factor * 2
        return 2 * (int(height) // div), 2 * (int(width) // div)

    def prepare_image(
        self, image, width, height, batch_size, num_images_per_prompt, dtype="float32"
    ):
        """Preprocess a control image and repeat it to the batch (as diffusers' prepare_image)."""
        if not isinstance(image, paddle.Tensor):
            image = self.image_processor.preprocess(image, height=height, width=width)
        repeat_by = batch_size if image.shape[0] == 1 else num_images_per_prompt
        return paddle.repeat_interleave(image, repeat_by, axis=0).astype(dtype)

    def _latents_or_encode(self, image, encode):
        """``image`` as it is when it already has the VAE's latent channels, else
        ``encode(image)``."""
        return image if image.shape[1] == self.latent_channels else encode(image)

    @staticmethod
    def _repeat_to_batch(tensor, batch_size, what):
        """A batch of ``n`` repeated (as a whole) to ``batch_size``; ``n`` must divide it. A
        batch of ``batch_size`` or more is returned as it is."""
        n = tensor.shape[0]
        if batch_size <= n:
            return tensor
        if batch_size % n:
            raise ValueError(f"cannot repeat {n} {what} to a batch of {batch_size}")
        return paddle.concat([tensor] * (batch_size // n), axis=0)

    # ------------------------------------------------------------------ checks
    def check_inputs(
        self,
        prompt,
        prompt_2,
        height,
        width,
        negative_prompt=None,
        negative_prompt_2=None,
        prompt_embeds=None,
        negative_prompt_embeds=None,
        pooled_prompt_embeds=None,
        negative_pooled_prompt_embeds=None,
        callback_on_step_end_tensor_inputs=None,
        max_sequence_length=None,
    ):
        div = self.vae_scale_factor * 2
        if height % div != 0 or width % div != 0:
            logger.warning(
                "`height` and `width` have to be divisible by %d but are %d and %d. "
                "Dimensions will be resized accordingly",
                div,
                height,
                width,
            )
        if height < div or width < div:
            raise ValueError(
                f"height and width must be at least {div} pixels, got {height}x{width}"
            )
        allowed = {"latents", "prompt_embeds"}
        if (
            callback_on_step_end_tensor_inputs is not None
            and not set(callback_on_step_end_tensor_inputs) <= allowed
        ):
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` must be a subset of "
                f"{sorted(allowed)}, got {callback_on_step_end_tensor_inputs}"
            )
        if prompt is not None and prompt_embeds is not None:
            raise ValueError("pass either `prompt` or `prompt_embeds`, not both")
        if prompt_2 is not None and prompt_embeds is not None:
            raise ValueError("pass either `prompt_2` or `prompt_embeds`, not both")
        if prompt is None and prompt_embeds is None:
            raise ValueError("provide either `prompt` or `prompt_embeds`")
        if prompt is not None and not isinstance(prompt, (str, list)):
            raise ValueError(f"`prompt` has to be of type str or list, got {type(prompt)}")
        if prompt_2 is not None and not isinstance(prompt_2, (str, list)):
            raise ValueError(f"`prompt_2` has to be of type str or list, got {type(prompt_2)}")
        if prompt_embeds is not None and pooled_prompt_embeds is None:
            raise ValueError(
                "`prompt_embeds` needs `pooled_prompt_embeds` as well (both come "
                "from encode_prompt)"
            )
        if negative_prompt_embeds is not None and negative_pooled_prompt_embeds is None:
            raise ValueError("`negative_prompt_embeds` needs `negative_pooled_prompt_embeds`")
        if max_sequence_length is not None and max_sequence_length > 512:
            raise ValueError(
                f"`max_sequence_length` cannot be greater than 512 but is {max_sequence_length}"
            )
