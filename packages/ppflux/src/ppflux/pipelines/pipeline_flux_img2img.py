"""FluxImg2ImgPipeline: start from a noised VAE encoding of an image (``strength``)."""

from __future__ import annotations

from types import SimpleNamespace

from .._compat import require_paddle
from . import pipeline_flux as base
from .pipeline_flux import FluxPipeline, pack_latents, prepare_latent_image_ids

paddle = require_paddle()


class FluxImg2ImgPipeline(FluxPipeline):
    def _encode_vae_image(self, image, generator):
        return self._vae_latents(image, generator)

    def get_timesteps(self, num_inference_steps, strength):
        scheduler = self._component("scheduler")
        init_timestep = min(num_inference_steps * strength, num_inference_steps)
        t_start = int(max(num_inference_steps - init_timestep, 0))
        timesteps = scheduler.timesteps[t_start * scheduler.order :]
        scheduler.set_begin_index(t_start * scheduler.order)
        return timesteps, num_inference_steps - t_start

    def _image_latents(self, image, batch_size, generator):
        image_latents = self._latents_or_encode(
            image.astype("float32"), lambda x: self._encode_vae_image(x, generator)
        )
        return self._repeat_to_batch(image_latents, batch_size, "image(s)")

    def prepare_latents(
        self,
        image,
        timestep,
        batch_size,
        num_channels_latents,
        height,
        width,
        dtype,
        generator,
        latents=None,
    ):
        height, width = self._latent_size(height, width)
        ids = prepare_latent_image_ids(height // 2, width // 2)
        if latents is not None:
            return paddle.to_tensor(latents).astype(dtype), ids
        image_latents = self._image_latents(image, batch_size, generator)
        noise = base.randn_tensor(
            [batch_size, num_channels_latents, height, width], generator, dtype
        )
        latents = self._component("scheduler").scale_noise(image_latents, timestep, noise)
        return pack_latents(latents, batch_size, num_channels_latents, height, width), ids

    def _check_strength(self, strength):
        if not 0 <= strength <= 1:
            raise ValueError(f"strength must be in [0, 1], got {strength}")

    def _prepare_common(
        self,
        prompt,
        prompt_2,
        image,
        height,
        width,
        num_inference_steps,
        sigmas,
        strength,
        guidance_scale,
        num_images_per_prompt,
        prompt_embeds,
        pooled_prompt_embeds,
        max_sequence_length,
        callback_inputs,
    ):
        """What img2img and inpaint share before their latents differ: the preprocessed image,
        checked and encoded prompts, the strength-cut schedule and the guidance."""
        self._check_strength(strength)
        if getattr(self, "_preprocessed", False):  # Kontext inpaint resizes and preprocesses
            init_image = image
        else:
            init_image = self.image_processor.preprocess(image, height=height, width=width)
        init_image = init_image.astype("float32")
        if height is None or width is None:
            height, width = init_image.shape[-2:]
        batch_size, prompt_embeds, pooled, text_ids = self._encode_checked(
            prompt,
            prompt_2,
            height,
            width,
            prompt_embeds,
            pooled_prompt_embeds,
            num_images_per_prompt,
            max_sequence_length,
            callback_inputs,
        )
        image_seq_len = (int(height) // self.vae_scale_factor // 2) * (
            int(width) // self.vae_scale_factor // 2
        )
        _, num_inference_steps = self._timesteps(num_inference_steps, sigmas, image_seq_len)
        timesteps, num_inference_steps = self.get_timesteps(num_inference_steps, strength)
        if num_inference_steps < 1:
            raise ValueError(
                f"strength={strength} with {num_inference_steps} steps leaves no denoising step"
            )
        total = batch_size * num_images_per_prompt
        tcfg = self._config_of("transformer")
        return SimpleNamespace(
            init_image=init_image,
            height=height,
            width=width,
            total=total,
            num_channels_latents=tcfg["in_channels"] // 4,
            prompt_embeds=prompt_embeds,
            pooled=pooled,
            text_ids=text_ids,
            timesteps=timesteps,
            latent_timestep=timesteps[:1].tile([total]),
            guidance=self._guidance(tcfg, guidance_scale, total),
        )

    def _run(
        self,
        prep,
        latents,
        image_ids,
        joint_attention_kwargs,
        output_type,
        return_dict,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        extra=None,
        step_kwargs=None,
        release=("transformer",),
    ):
        """Denoise from ``latents`` and decode. ``extra``: ``_predict`` keywords for every step
        (Fill / Control conditions); ``step_kwargs(i, t, latents)``: keywords computed per step
        (ControlNet residuals)."""
        extra = extra or {}

        def step_fn(i, t, latents):
            kwargs = dict(extra, **(step_kwargs(i, t, latents) if step_kwargs else {}))
            return self._predict(
                latents,
                t,
                prep.guidance,
                prep.prompt_embeds,
                prep.pooled,
                prep.text_ids,
                image_ids,
                joint_attention_kwargs,
                **kwargs,
            )

        return self._denoise_and_decode(
            prep.timesteps,
            latents,
            step_fn,
            prep.prompt_embeds,
            prep.height,
            prep.width,
            output_type,
            return_dict,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
            release=release,
        )

    def __call__(
        self,
        prompt=None,
        prompt_2=None,
        image=None,
        height=None,
        width=None,
        strength: float = 0.6,
        num_inference_steps: int = 28,
        sigmas=None,
        guidance_scale: float = 7.0,
        num_images_per_prompt: int = 1,
        generator=None,
        latents=None,
        prompt_embeds=None,
        pooled_prompt_embeds=None,
        output_type: str = "pil",
        return_dict: bool = True,
        joint_attention_kwargs=None,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("latents",),
        max_sequence_length: int = 512,
    ):
        """Generate from a noised VAE encoding of ``image``.

        Args:
            image: the start image (PIL, numpy ``[0, 1]``, Paddle tensor, or VAE latents).
            strength: in [0, 1]; how much noise is added to ``image`` (1 = all, the image is
                then only a size hint); the first ``(1 - strength)`` of the steps are skipped.
            height, width: default to the image's size (a multiple of 16).
            The other arguments are FluxPipeline's.

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """
        if image is None:
            raise ValueError("FluxImg2ImgPipeline needs `image`")
        prep = self._prepare_common(
            prompt,
            prompt_2,
            image,
            height,
            width,
            num_inference_steps,
            sigmas,
            strength,
            guidance_scale,
            num_images_per_prompt,
            prompt_embeds,
            pooled_prompt_embeds,
            max_sequence_length,
            callback_on_step_end_tensor_inputs,
        )
        latents, image_ids = self.prepare_latents(
            prep.init_image,
            prep.latent_timestep,
            prep.total,
            prep.num_channels_latents,
            prep.height,
            prep.width,
            prep.prompt_embeds.dtype,
            generator,
            latents,
        )
        return self._run(
            prep,
            latents,
            image_ids,
            joint_attention_kwargs,
            output_type,
            return_dict,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )
