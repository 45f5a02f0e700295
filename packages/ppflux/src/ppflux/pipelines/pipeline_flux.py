"""FluxPipeline: text-to-image with FLUX.1 dev / schnell, diffusers' ``__call__`` arguments."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._compat import require_paddle
from ..ip_adapter import FluxIPAdapterMixin
from ..lora import FluxLoraLoaderMixin
from ..scheduler import FlowMatchEulerDiscreteScheduler, calculate_shift

paddle = require_paddle()

from . import components as C  # noqa: E402
from .base import FluxPipelineBase  # noqa: E402

logger = logging.getLogger("ppflux")

REQUIRED = (
    "scheduler",
    "vae",
    "text_encoder",
    "tokenizer",
    "text_encoder_2",
    "tokenizer_2",
    "transformer",
)


@dataclass
class FluxPipelineOutput:
    images: list | np.ndarray | paddle.Tensor


def randn_tensor(shape, generator=None, dtype="float32"):
    """Gaussian noise: ``generator`` may be an int seed, a numpy Generator, a paddle Generator
    or a list of them (one per batch element); None uses Paddle's global RNG."""
    if isinstance(generator, (list, tuple)):
        parts = [randn_tensor([1, *shape[1:]], g, dtype) for g in generator]
        return paddle.concat(parts, axis=0)
    if generator is None:
        return paddle.randn(shape, dtype=dtype)
    if isinstance(generator, (int, np.integer)):
        generator = np.random.default_rng(int(generator))
    if isinstance(generator, np.random.Generator):
        return paddle.to_tensor(generator.standard_normal(shape).astype(np.float32)).astype(dtype)
    from ppdiffusers.utils import randn_tensor as pp_randn

    return pp_randn(shape, generator=generator, dtype=dtype)


def retrieve_latents(encoder_output, generator=None, sample_mode: str = "sample"):
    dist = encoder_output.latent_dist
    if sample_mode == "argmax":
        return dist.mode()
    if generator is None or not isinstance(
        generator, (int, np.integer, np.random.Generator, list, tuple)
    ):
        return dist.sample(generator)
    return dist.mean + dist.std * randn_tensor(dist.mean.shape, generator, dist.mean.dtype)


def pack_latents(latents, batch_size, num_channels, height, width):
    latents = latents.reshape([batch_size, num_channels, height // 2, 2, width // 2, 2])
    latents = latents.transpose([0, 2, 4, 1, 3, 5])
    return latents.reshape([batch_size, (height // 2) * (width // 2), num_channels * 4])


def unpack_latents(latents, height, width, vae_scale_factor):
    batch_size, _, channels = latents.shape
    height = 2 * (int(height) // (vae_scale_factor * 2))
    width = 2 * (int(width) // (vae_scale_factor * 2))
    latents = latents.reshape([batch_size, height // 2, width // 2, channels // 4, 2, 2])
    latents = latents.transpose([0, 3, 1, 4, 2, 5])
    return latents.reshape([batch_size, channels // 4, height, width])


def prepare_latent_image_ids(height, width):
    ids = np.zeros((height, width, 3), np.float32)
    ids[..., 1] += np.arange(height)[:, None]
    ids[..., 2] += np.arange(width)[None, :]
    return paddle.to_tensor(ids.reshape(height * width, 3))


def _load_clip_vision(folder):
    from ..ip_adapter import load_clip_vision

    return load_clip_vision(folder)


def _load_image_processor(folder):
    from ..models.siglip import ImageProcessor

    return ImageProcessor.from_pretrained(folder)


class FluxPipeline(FluxPipelineBase, FluxLoraLoaderMixin, FluxIPAdapterMixin):
    """Text-to-image. Load with ``FluxPipeline.from_pretrained(folder)``.

    ``low_memory=True`` keeps only the folder and loads each component when it is needed and
    releases it afterwards (text encoders, then the transformer, then the VAE), so peak memory
    is the largest component rather than their sum: the way to run the 12B model on a machine
    with less RAM than all its weights.
    """

    _required = REQUIRED
    _optional = ()  # needed, but may be passed to from_pretrained instead of a sub-folder
    _may_be_absent = ("image_encoder", "feature_extractor")  # loaded when the folder has them
    _loaders = {
        "image_encoder": _load_clip_vision,
        "feature_extractor": _load_image_processor,
        "scheduler": lambda p: FlowMatchEulerDiscreteScheduler.from_pretrained(p),
        "vae": C.load_vae,
        "text_encoder": C.load_clip,
        "text_encoder_2": C.load_t5,
        "tokenizer": lambda p: C.load_tokenizer(p, "clip"),
        "tokenizer_2": lambda p: C.load_tokenizer(p, "t5"),
    }

    def __init__(
        self,
        scheduler,
        vae,
        text_encoder,
        tokenizer,
        text_encoder_2,
        tokenizer_2,
        transformer,
        **extra,
    ):
        self._folder: Path | None = None
        self.low_memory = False
        self._modules = dict(
            scheduler=scheduler,
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            text_encoder_2=text_encoder_2,
            tokenizer_2=tokenizer_2,
            transformer=transformer,
            **extra,
        )
        self._configs: dict = {}
        self._init_processors()

    # ------------------------------------------------------------------ latents
    def prepare_latents(
        self, batch_size, num_channels_latents, height, width, dtype, generator, latents=None
    ):
        height, width = self._latent_size(height, width)
        ids = prepare_latent_image_ids(height // 2, width // 2)
        if latents is not None:
            return paddle.to_tensor(latents).astype(dtype), ids
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"{len(generator)} generators for a batch of {batch_size}")
        shape = [batch_size, num_channels_latents, height, width]
        latents = randn_tensor(shape, generator, dtype)
        return pack_latents(latents, batch_size, num_channels_latents, height, width), ids

    def _timesteps(self, num_inference_steps, sigmas, image_seq_len):
        scheduler = self._component("scheduler")
        sigmas = (
            np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)
            if sigmas is None
            else sigmas
        )
        cfg = scheduler.config
        mu = calculate_shift(
            image_seq_len,
            cfg.get("base_image_seq_len", 256),
            cfg.get("max_image_seq_len", 4096),
            cfg.get("base_shift", 0.5),
            cfg.get("max_shift", 1.15),
        )
        scheduler.set_timesteps(sigmas=sigmas, mu=mu)
        return scheduler.timesteps, len(scheduler.timesteps)

    def _guidance(self, config, guidance_scale, batch):
        if config.get("guidance_embeds"):
            return paddle.full([batch], guidance_scale, dtype="float32")
        return None

    def _vae_latents(self, image, generator=None, sample_mode: str = "sample"):
        """VAE encoding of a preprocessed image batch, shifted and scaled as the transformer
        sees latents (a list of generators encodes image by image, as diffusers does)."""
        vae = self._component("vae")
        with paddle.no_grad():
            if isinstance(generator, (list, tuple)):
                latents = paddle.concat(
                    [
                        retrieve_latents(vae.encode(image[i : i + 1]), g, sample_mode)
                        for i, g in enumerate(generator)
                    ],
                    axis=0,
                )
            else:
                latents = retrieve_latents(vae.encode(image), generator, sample_mode)
        return (latents - vae.config.shift_factor) * vae.config.scaling_factor

    def _packed_vae_latents(self, image, batch, generator=None, sample_mode="sample"):
        """``_vae_latents`` packed into tokens: ``[batch, tokens, 4 * latent channels]``."""
        latents = self._vae_latents(image, generator, sample_mode)
        h, w = latents.shape[2:]
        return pack_latents(latents, batch, latents.shape[1], h, w)

    def _decode(self, latents, height, width, output_type):
        if output_type == "pt":  # diffusers' tensor output; ppdiffusers would turn it into "np"
            output_type = "pd"
        if output_type == "latent":
            return latents
        vae = self._component("vae")
        latents = unpack_latents(latents, height, width, self.vae_scale_factor)
        latents = latents / vae.config.scaling_factor + vae.config.shift_factor
        with paddle.no_grad():
            image = vae.decode(latents, return_dict=False)[0]
        self._release("vae")
        return self.image_processor.postprocess(image, output_type=output_type)

    def _progress(self, total):
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            disable=getattr(self, "_disable_progress", False),
            desc="denoising",
            unit="step",
        )

    def set_progress_bar_config(self, disable: bool = False):
        self._disable_progress = disable

    def _denoise(
        self,
        timesteps,
        latents,
        step_fn,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        extra_state,
    ):
        scheduler = self._component("scheduler")
        self._interrupt = False
        with self._progress(len(timesteps)) as bar:
            for i, t in enumerate(timesteps):
                if self._interrupt:
                    continue
                noise_pred = step_fn(i, t, latents)
                latents_dtype = latents.dtype
                latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
                latents = latents.astype(latents_dtype)
                latents = self._after_step(i, t, latents, timesteps)
                if callback_on_step_end is not None:
                    state = {"latents": latents, **extra_state}
                    kwargs = {
                        k: state[k] for k in (callback_on_step_end_tensor_inputs or ["latents"])
                    }
                    out = callback_on_step_end(self, i, t, kwargs) or {}
                    latents = out.pop("latents", latents)
                    extra_state.update(out)
                bar.update()
        return latents

    def _after_step(self, i, t, latents, timesteps):
        return latents

    # ------------------------------------------------------------------ shared by the pipelines
    # Every FLUX pipeline checks and encodes the prompt, calls the transformer once per step and
    # decodes the same way; the pipelines differ in how they prepare latents and conditions.
    def _encode_checked(
        self,
        prompt,
        prompt_2,
        height,
        width,
        prompt_embeds,
        pooled_prompt_embeds,
        num_images_per_prompt,
        max_sequence_length,
        callback_on_step_end_tensor_inputs,
        **negative,
    ):
        """check_inputs + encode_prompt: (batch_size, prompt_embeds, pooled, text_ids)."""
        self.check_inputs(
            prompt,
            prompt_2,
            height,
            width,
            prompt_embeds=prompt_embeds,
            pooled_prompt_embeds=pooled_prompt_embeds,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length,
            **negative,
        )
        batch_size = (
            (1 if isinstance(prompt, str) else len(prompt))
            if prompt is not None
            else prompt_embeds.shape[0]
        )
        return (
            batch_size,
            *self.encode_prompt(
                prompt,
                prompt_2,
                prompt_embeds,
                pooled_prompt_embeds,
                num_images_per_prompt,
                max_sequence_length,
            ),
        )

    def _predict(
        self,
        latents,
        t,
        guidance,
        prompt_embeds,
        pooled,
        text_ids,
        image_ids,
        joint_attention_kwargs,
        extra_channels=None,
        extra_tokens=None,
        cache_context="cond",
        **controlnet_outputs,
    ):
        """One transformer call at scheduler time ``t`` (passed as t / 1000, as diffusers does).
        The transformer is looked up on every call so that ``low_memory`` can free it after.

        ``extra_channels`` (Fill, Control) is concatenated to the latents along the channel
        axis; ``extra_tokens`` (Kontext) along the sequence axis, and the prediction for
        those tokens is dropped (``image_ids`` must then cover both)."""
        hidden_states = latents
        if extra_channels is not None:
            hidden_states = paddle.concat([hidden_states, extra_channels], axis=2)
        if extra_tokens is not None:
            hidden_states = paddle.concat([hidden_states, extra_tokens], axis=1)
        timestep = paddle.full([latents.shape[0]], float(t), dtype=latents.dtype)
        transformer = self._component("transformer")
        with paddle.no_grad(), _cache_context(transformer, cache_context):
            out = transformer(
                hidden_states=hidden_states,
                timestep=timestep / 1000,
                guidance=guidance,
                pooled_projections=pooled,
                encoder_hidden_states=prompt_embeds,
                txt_ids=text_ids,
                img_ids=image_ids,
                joint_attention_kwargs=joint_attention_kwargs,
                return_dict=False,
                **controlnet_outputs,
            )[0]
        return out[:, : latents.shape[1]] if extra_tokens is not None else out

    def _denoise_and_decode(
        self,
        timesteps,
        latents,
        step_fn,
        prompt_embeds,
        height,
        width,
        output_type,
        return_dict,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        release=("transformer",),
    ):
        try:
            latents = self._denoise(
                timesteps,
                latents,
                step_fn,
                callback_on_step_end,
                callback_on_step_end_tensor_inputs,
                {"prompt_embeds": prompt_embeds},
            )
        finally:
            transformer = self._modules.get("transformer") or getattr(self, "_lazy_cache", {}).get(
                "transformer"
            )
            if transformer is not None and hasattr(transformer, "reset_cache"):
                transformer.reset_cache()  # cache states live for one call (as in diffusers)
        self._release(*release)
        image = self._decode(latents, height, width, output_type)
        return FluxPipelineOutput(images=image) if return_dict else (image,)

    @property
    def interrupt(self):
        return getattr(self, "_interrupt", False)

    # ------------------------------------------------------------------ call
    def __call__(
        self,
        prompt=None,
        prompt_2=None,
        negative_prompt=None,
        negative_prompt_2=None,
        true_cfg_scale: float = 1.0,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 28,
        sigmas=None,
        guidance_scale: float = 3.5,
        num_images_per_prompt: int = 1,
        generator=None,
        latents=None,
        prompt_embeds=None,
        pooled_prompt_embeds=None,
        negative_prompt_embeds=None,
        negative_pooled_prompt_embeds=None,
        output_type: str = "pil",
        return_dict: bool = True,
        joint_attention_kwargs=None,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("latents",),
        max_sequence_length: int = 512,
        ip_adapter_image=None,
        ip_adapter_image_embeds=None,
        negative_ip_adapter_image=None,
        negative_ip_adapter_image_embeds=None,
    ):
        """Generate images from a text prompt.

        Args:
            prompt, prompt_2: the prompt(s) for CLIP and T5 (``prompt_2`` defaults to ``prompt``).
            negative_prompt, negative_prompt_2, true_cfg_scale: true classifier-free guidance,
                used when ``true_cfg_scale > 1`` and a negative prompt (or its embeddings) is given.
            height, width: image size in pixels (default 1024), a multiple of 16.
            num_inference_steps: denoising steps; ``sigmas`` overrides the schedule.
            guidance_scale: the distilled guidance of FLUX.1-dev (ignored by schnell).
            num_images_per_prompt: images per prompt.
            generator: int seed, numpy / Paddle generator or a list of them (one per image).
            latents: packed initial noise ``[B, (H/16)*(W/16), 64]`` instead of drawing it.
            prompt_embeds, pooled_prompt_embeds (+ negative_*): precomputed embeddings.
            output_type: ``"pil"``, ``"np"``, ``"pd"``/``"pt"`` (Paddle tensor) or ``"latent"``.
            return_dict: return a ``FluxPipelineOutput`` (else a tuple).
            joint_attention_kwargs: passed to attention; ``{"scale": s}`` scales every LoRA.
            callback_on_step_end, callback_on_step_end_tensor_inputs: called after each step
                with the named tensors; may return replacements.
            max_sequence_length: T5 tokens (at most 512).
            ip_adapter_image, ip_adapter_image_embeds (+ negative_*): image prompts for the
                loaded IP-Adapters (one image or embedding per adapter); with one side only,
                the other gets a black image, as in diffusers.

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """
        return self._generate(
            ip_adapter_image=ip_adapter_image,
            ip_adapter_image_embeds=ip_adapter_image_embeds,
            negative_ip_adapter_image=negative_ip_adapter_image,
            negative_ip_adapter_image_embeds=negative_ip_adapter_image_embeds,
            prompt=prompt,
            prompt_2=prompt_2,
            negative_prompt=negative_prompt,
            negative_prompt_2=negative_prompt_2,
            true_cfg_scale=true_cfg_scale,
            height=height,
            width=width,
            num_inference_steps=num_inference_steps,
            sigmas=sigmas,
            guidance_scale=guidance_scale,
            num_images_per_prompt=num_images_per_prompt,
            generator=generator,
            latents=latents,
            prompt_embeds=prompt_embeds,
            pooled_prompt_embeds=pooled_prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds,
            negative_pooled_prompt_embeds=negative_pooled_prompt_embeds,
            output_type=output_type,
            return_dict=return_dict,
            joint_attention_kwargs=joint_attention_kwargs,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length,
        )

    def _generate(
        self,
        *,
        prompt,
        prompt_2,
        height,
        width,
        num_inference_steps,
        sigmas,
        guidance_scale,
        num_images_per_prompt,
        generator,
        latents,
        prompt_embeds,
        pooled_prompt_embeds,
        output_type,
        return_dict,
        joint_attention_kwargs,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        max_sequence_length,
        negative_prompt=None,
        negative_prompt_2=None,
        true_cfg_scale=1.0,
        negative_prompt_embeds=None,
        negative_pooled_prompt_embeds=None,
        latent_channels_divisor=4,
        condition=None,
        ip_adapter_image=None,
        ip_adapter_image_embeds=None,
        negative_ip_adapter_image=None,
        negative_ip_adapter_image_embeds=None,
    ):
        """Text-to-image from pure noise, shared by FluxPipeline, FluxControlPipeline and
        FluxKontextPipeline. ``condition(total, dtype, height, width, generator)`` returns the
        ``_predict`` keywords that condition every step (``extra_channels`` / ``extra_tokens`` +
        ``extra_ids``)."""
        height = height or self.default_sample_size * self.vae_scale_factor
        width = width or self.default_sample_size * self.vae_scale_factor
        batch_size, prompt_embeds, pooled_prompt_embeds, text_ids = self._encode_checked(
            prompt,
            prompt_2,
            height,
            width,
            prompt_embeds,
            pooled_prompt_embeds,
            num_images_per_prompt,
            max_sequence_length,
            callback_on_step_end_tensor_inputs,
            negative_prompt=negative_prompt,
            negative_prompt_2=negative_prompt_2,
            negative_prompt_embeds=negative_prompt_embeds,
            negative_pooled_prompt_embeds=negative_pooled_prompt_embeds,
        )
        has_neg = negative_prompt is not None or (negative_prompt_embeds is not None)
        do_true_cfg = true_cfg_scale > 1 and has_neg
        if do_true_cfg:
            negative_prompt_embeds, negative_pooled_prompt_embeds, neg_text_ids = (
                self.encode_prompt(
                    negative_prompt,
                    negative_prompt_2,
                    negative_prompt_embeds,
                    negative_pooled_prompt_embeds,
                    num_images_per_prompt,
                    max_sequence_length,
                )
            )
        tcfg = self._config_of("transformer")
        num_channels_latents = tcfg["in_channels"] // latent_channels_divisor
        total = batch_size * num_images_per_prompt
        extra = {}
        if condition is not None:
            extra = condition(total, prompt_embeds.dtype, height, width, generator)
        latents, image_ids = self.prepare_latents(
            total, num_channels_latents, height, width, prompt_embeds.dtype, generator, latents
        )
        timesteps, num_inference_steps = self._timesteps(
            num_inference_steps, sigmas, latents.shape[1]
        )
        if extra.get("extra_ids") is not None:
            image_ids = paddle.concat([image_ids, extra.pop("extra_ids")], axis=0)
        extra.pop("extra_ids", None)
        guidance = self._guidance(tcfg, guidance_scale, latents.shape[0])
        cond_kwargs, uncond_kwargs = self._ip_adapter_kwargs(
            joint_attention_kwargs,
            width,
            height,
            num_images_per_prompt,
            ip_adapter_image,
            ip_adapter_image_embeds,
            negative_ip_adapter_image,
            negative_ip_adapter_image_embeds,
        )
        self._component("scheduler").set_begin_index(0)

        def step_fn(i, t, latents):
            noise_pred = self._predict(
                latents,
                t,
                guidance,
                prompt_embeds,
                pooled_prompt_embeds,
                text_ids,
                image_ids,
                cond_kwargs,
                **extra,
            )
            if do_true_cfg:
                neg = self._predict(
                    latents,
                    t,
                    guidance,
                    negative_prompt_embeds,
                    negative_pooled_prompt_embeds,
                    neg_text_ids,
                    image_ids,
                    uncond_kwargs,
                    cache_context="uncond",
                    **extra,
                )
                noise_pred = neg + true_cfg_scale * (noise_pred - neg)
            return noise_pred

        return self._denoise_and_decode(
            timesteps,
            latents,
            step_fn,
            prompt_embeds,
            height,
            width,
            output_type,
            return_dict,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )


def _cache_context(transformer, name):
    if hasattr(transformer, "cache_context"):
        return transformer.cache_context(name)
    import contextlib

    return contextlib.nullcontext()
