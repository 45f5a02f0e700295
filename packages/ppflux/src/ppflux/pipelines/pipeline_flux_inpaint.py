"""FluxInpaintPipeline: repaint the masked region (white = repaint) of an image."""

from __future__ import annotations

import paddle.nn.functional as F

from .._compat import require_paddle
from . import pipeline_flux as base
from .pipeline_flux import pack_latents, prepare_latent_image_ids
from .pipeline_flux_img2img import FluxImg2ImgPipeline

paddle = require_paddle()


class FluxInpaintPipeline(FluxImg2ImgPipeline):
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
        shape = [batch_size, num_channels_latents, height, width]
        ids = prepare_latent_image_ids(height // 2, width // 2)
        image_latents = self._image_latents(image, batch_size, generator)
        if latents is None:
            noise = base.randn_tensor(shape, generator, dtype)
            latents = self._component("scheduler").scale_noise(image_latents, timestep, noise)
        else:
            noise = paddle.to_tensor(latents).astype(dtype)
            latents = noise
        pack = lambda x: pack_latents(x, batch_size, num_channels_latents, height, width)  # noqa: E731
        return pack(latents), pack(noise), pack(image_latents), ids

    def _encode_masked_image(self, masked_image, generator):
        """VAE latents of the masked image, shifted and scaled (one draw for the batch, also
        with a list of generators)."""
        vae = self._component("vae")
        with paddle.no_grad():
            latents = base.retrieve_latents(vae.encode(masked_image), generator=generator)
        return (latents - vae.config.shift_factor) * vae.config.scaling_factor

    def prepare_mask_latents(
        self,
        mask,
        masked_image,
        batch_size,
        num_channels_latents,
        num_images_per_prompt,
        height,
        width,
        dtype,
        generator,
    ):
        height, width = self._latent_size(height, width)
        mask = F.interpolate(mask, size=(height, width)).astype(dtype)
        batch_size = batch_size * num_images_per_prompt
        masked_latents = self._latents_or_encode(
            masked_image.astype(dtype), lambda x: self._encode_masked_image(x, generator)
        )
        mask = self._repeat_to_batch(mask, batch_size, "masks")
        masked_latents = self._repeat_to_batch(masked_latents, batch_size, "images")
        masked_latents = pack_latents(
            masked_latents, batch_size, num_channels_latents, height, width
        )
        mask = pack_latents(
            mask.tile([1, num_channels_latents, 1, 1]),
            batch_size,
            num_channels_latents,
            height,
            width,
        )
        return mask, masked_latents

    def __call__(
        self,
        prompt=None,
        prompt_2=None,
        image=None,
        mask_image=None,
        masked_image_latents=None,
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
        """Repaint the white region of ``mask_image`` in ``image``; outside the mask the
        latents follow the image's own noising trajectory at every step.

        Args:
            image: the image to repaint; mask_image: white = repaint, black = keep.
            masked_image_latents: accepted for diffusers compatibility; as there, it does not
                change the result (only the mask enters the steps).
            strength: in [0, 1]; how far the image is noised before denoising starts.
            The other arguments are FluxPipeline's.

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """
        if image is None or mask_image is None:
            raise ValueError(f"{type(self).__name__} needs `image` and `mask_image`")
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
        return self._inpaint(
            prep,
            mask_image,
            masked_image_latents,
            num_images_per_prompt,
            generator,
            latents,
            joint_attention_kwargs,
            output_type,
            return_dict,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )

    def _inpaint(
        self,
        prep,
        mask_image,
        masked_image_latents,
        num_images_per_prompt,
        generator,
        latents,
        joint_attention_kwargs,
        output_type,
        return_dict,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        extra=None,
        step_kwargs=None,
        release=("transformer",),
    ):
        """Latents, mask and the per-step blend shared by the inpainting pipelines."""
        n_ch, dtype = prep.num_channels_latents, prep.prompt_embeds.dtype
        latents, noise, image_latents, image_ids = self.prepare_latents(
            prep.init_image,
            prep.latent_timestep,
            prep.total,
            n_ch,
            prep.height,
            prep.width,
            dtype,
            generator,
            latents,
        )
        mask_condition = self.mask_processor.preprocess(
            mask_image, height=prep.height, width=prep.width
        )
        # Only the mask enters the steps: diffusers also VAE-encodes the masked image (or takes
        # masked_image_latents) here and never uses the result, so ppflux skips that encode.
        mask = self.prepare_mask(mask_condition, prep.total, n_ch, prep.height, prep.width, dtype)
        scheduler = self._component("scheduler")

        def after_step(i, t, latents, timesteps):
            # keep the unmasked region on the image's own noising trajectory
            proper = image_latents
            if i < len(timesteps) - 1:
                proper = scheduler.scale_noise(proper, timesteps[i + 1 : i + 2], noise)
            return (1 - mask) * proper + mask * latents

        self._after_step = after_step
        try:
            return self._run(
                prep,
                latents,
                image_ids,
                joint_attention_kwargs,
                output_type,
                return_dict,
                callback_on_step_end,
                callback_on_step_end_tensor_inputs,
                extra=extra,
                step_kwargs=step_kwargs,
                release=release,
            )
        finally:
            del self._after_step

    def prepare_mask(self, mask, batch_size, num_channels_latents, height, width, dtype):
        """The pixel mask resized to the latent grid (nearest) and packed like the latents."""
        height, width = self._latent_size(height, width)
        mask = F.interpolate(mask, size=(height, width)).astype(dtype)
        mask = self._repeat_to_batch(mask, batch_size, "masks")
        return pack_latents(
            mask.tile([1, num_channels_latents, 1, 1]),
            batch_size,
            num_channels_latents,
            height,
            width,
        )
