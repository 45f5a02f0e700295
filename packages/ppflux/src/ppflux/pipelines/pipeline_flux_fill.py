"""FluxFillPipeline: in/outpainting with FLUX.1 Fill (transformer ``in_channels`` 384).

Every step the transformer sees the noisy latents next to the VAE latents of the masked image
and the mask itself, folded from pixels into latent tokens (8 x 8 pixels per latent pixel, 4
latent pixels per token: 64 + 64 + 256 = 384 channels for FLUX.1 Fill).
"""

from __future__ import annotations

from .._compat import require_paddle
from .pipeline_flux import pack_latents
from .pipeline_flux_img2img import FluxImg2ImgPipeline

paddle = require_paddle()


class FluxFillPipeline(FluxImg2ImgPipeline):
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
        """(mask tokens ``[B, S, vsf*vsf*4]``, masked-image tokens ``[B, S, 4*C]``)."""
        vsf = self.vae_scale_factor
        height, width = self._latent_size(height, width)
        masked_image = masked_image.astype(dtype)
        if masked_image.shape[1] == num_channels_latents:
            # given latents are shifted and scaled like an encoding (as diffusers does)
            vae = self._component("vae")
            masked_latents = (masked_image - vae.config.shift_factor) * vae.config.scaling_factor
        else:
            masked_latents = self._vae_latents(masked_image, generator)
        batch_size = batch_size * num_images_per_prompt
        mask = self._repeat_to_batch(mask, batch_size, "masks")
        masked_latents = self._repeat_to_batch(masked_latents.astype(dtype), batch_size, "images")
        masked_latents = pack_latents(
            masked_latents, batch_size, num_channels_latents, height, width
        )
        # pixels of the mask -> one channel per pixel of each latent pixel's vsf x vsf patch
        mask = mask[:, 0].reshape([batch_size, height, vsf, width, vsf])
        mask = mask.transpose([0, 2, 4, 1, 3]).reshape([batch_size, vsf * vsf, height, width])
        mask = pack_latents(mask, batch_size, vsf * vsf, height, width).astype(dtype)
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
        strength: float = 1.0,
        num_inference_steps: int = 50,
        sigmas=None,
        guidance_scale: float = 30.0,
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
        """Repaint the white region of ``mask_image`` in ``image`` (or extend an image padded
        with a white mask), following ``prompt``.

        Args:
            image: the image (PIL, numpy ``[0, 1]`` or Paddle tensor; latents if it has the
                VAE's latent channels).
            mask_image: white = repaint, black = keep (single channel).
            masked_image_latents: instead of ``mask_image``, the whole condition (masked-image
                tokens concatenated with mask tokens, ``[B, S, 320]`` for FLUX.1 Fill).
            strength: how far to noise ``image`` first (1.0 = start from pure noise, the
                FLUX.1 Fill default).
            guidance_scale: FLUX.1 Fill's distilled guidance (default 30).
            The other arguments are FluxPipeline's.

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """
        if image is None:
            raise ValueError("FluxFillPipeline needs `image`")
        if mask_image is None and masked_image_latents is None:
            raise ValueError("FluxFillPipeline needs `mask_image` (or `masked_image_latents`)")
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
        n_ch, dtype = self.latent_channels, prep.prompt_embeds.dtype
        prep.num_channels_latents = n_ch
        latents, image_ids = self.prepare_latents(
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
        if masked_image_latents is not None:
            condition = paddle.to_tensor(masked_image_latents).astype(dtype)
        else:
            mask = self.mask_processor.preprocess(mask_image, height=prep.height, width=prep.width)
            masked_image = prep.init_image * (1 - mask)
            height, width = prep.init_image.shape[-2:]
            mask, masked = self.prepare_mask_latents(
                mask,
                masked_image,
                prep.total // num_images_per_prompt,
                n_ch,
                num_images_per_prompt,
                height,
                width,
                dtype,
                generator,
            )
            condition = paddle.concat([masked, mask], axis=-1)
        return self._run(
            prep,
            latents,
            image_ids,
            joint_attention_kwargs,
            output_type,
            return_dict,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
            extra=dict(extra_channels=condition),
        )
