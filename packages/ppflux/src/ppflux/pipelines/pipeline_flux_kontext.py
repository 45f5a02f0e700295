"""FLUX.1 Kontext: image editing by instruction, and Kontext inpainting.

The reference image's VAE latents (the distribution's mode) are appended to the noisy latents
as extra tokens along the sequence axis, with position ids whose first coordinate is 1 (the
generated image uses 0); the transformer's prediction for those tokens is dropped.
"""

from __future__ import annotations

from .._compat import require_paddle
from .pipeline_flux import FluxPipeline, prepare_latent_image_ids
from .pipeline_flux_inpaint import FluxInpaintPipeline

paddle = require_paddle()

# The resolutions (width, height) FLUX.1 Kontext was trained at, about one megapixel each; the
# reference image is resized to the one nearest its aspect ratio unless _auto_resize=False.
PREFERRED_KONTEXT_RESOLUTIONS = [
    (672, 1568),
    (688, 1504),
    (720, 1456),
    (752, 1392),
    (800, 1328),
    (832, 1248),
    (880, 1184),
    (944, 1104),
    (1024, 1024),
    (1104, 944),
    (1184, 880),
    (1248, 832),
    (1328, 800),
    (1392, 752),
    (1456, 720),
    (1504, 688),
    (1568, 672),
]


class _KontextImage:
    def _fit_area(self, height, width, max_area):
        """The output size: the aspect ratio of (height, width) at ``max_area`` pixels,
        rounded down to multiples of 16."""
        height = height or self.default_sample_size * self.vae_scale_factor
        width = width or self.default_sample_size * self.vae_scale_factor
        aspect = width / height
        multiple = self.vae_scale_factor * 2
        new_w = round((max_area * aspect) ** 0.5) // multiple * multiple
        new_h = round((max_area / aspect) ** 0.5) // multiple * multiple
        if (new_h, new_w) != (height, width):
            import logging

            logging.getLogger("ppflux").warning(
                "height and width adjusted to %d and %d to fit max_area=%d", new_h, new_w, max_area
            )
        return new_h, new_w

    def _reference_image(self, image, auto_resize):
        """Resize + preprocess a reference image: (tensor, height, width) or (image, None, None)
        when it is given as latents already."""
        if (
            isinstance(image, paddle.Tensor)
            and image.ndim == 4
            and image.shape[1] == self.latent_channels
        ):
            return image, None, None
        if isinstance(image, list) and isinstance(image[0], paddle.Tensor) and image[0].ndim == 4:
            image = paddle.concat(image, axis=0)
        first = image[0] if isinstance(image, list) else image
        h, w = self.image_processor.get_default_height_width(first)
        if auto_resize:
            aspect = w / h
            _, w, h = min(
                (abs(aspect - rw / rh), rw, rh) for rw, rh in PREFERRED_KONTEXT_RESOLUTIONS
            )
        multiple = self.vae_scale_factor * 2
        w, h = w // multiple * multiple, h // multiple * multiple
        if isinstance(image, list):
            image = [self.image_processor.resize(i, h, w) for i in image]
        else:
            image = self.image_processor.resize(image, h, w)
        return self.image_processor.preprocess(image, h, w), h, w

    def _reference_tokens(self, image, batch, dtype, generator):
        """(tokens ``[B, S, 64]``, ids ``[S, 3]`` with first coordinate 1) of a reference."""
        latents = self._latents_or_encode(
            image.astype(dtype), lambda x: self._vae_latents(x, generator, sample_mode="argmax")
        )
        latents = self._repeat_to_batch(latents, batch, "reference image(s)")
        from .pipeline_flux import pack_latents

        c, h, w = latents.shape[1:]
        ids = prepare_latent_image_ids(h // 2, w // 2)
        ids[:, 0] = 1
        return pack_latents(latents, batch, c, h, w), ids


class FluxKontextPipeline(_KontextImage, FluxPipeline):
    def __call__(
        self,
        image=None,
        prompt=None,
        prompt_2=None,
        negative_prompt=None,
        negative_prompt_2=None,
        true_cfg_scale: float = 1.0,
        height=None,
        width=None,
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
        max_area: int = 1024**2,
        _auto_resize: bool = True,
    ):
        """Edit ``image`` as the ``prompt`` instructs (or generate from text if ``image`` is None).

        Args:
            image: the reference image (PIL / numpy / Paddle tensor, or VAE latents).
            height, width: the requested output size; it is rescaled to ``max_area`` pixels
                at the same aspect ratio (multiples of 16), as diffusers does.
            max_area: output area in pixels (default 1024*1024).
            _auto_resize: resize the reference to the nearest of Kontext's training
                resolutions (``PREFERRED_KONTEXT_RESOLUTIONS``); False keeps its own size
                (rounded down to a multiple of 16).
            The other arguments are FluxPipeline's (with true CFG).

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """
        height, width = self._fit_area(height, width, max_area)
        reference = None
        if image is not None:
            reference, _, _ = self._reference_image(image, _auto_resize)

        def condition(total, dtype, h, w, gen):
            if reference is None:
                return {}
            tokens, ids = self._reference_tokens(reference, total, dtype, gen)
            return {"extra_tokens": tokens, "extra_ids": ids}

        return self._generate(
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
            condition=condition,
        )


class FluxKontextInpaintPipeline(_KontextImage, FluxInpaintPipeline):
    _preprocessed = True  # _reference_image resizes and preprocesses `image` itself

    def __call__(
        self,
        image=None,
        image_reference=None,
        mask_image=None,
        prompt=None,
        prompt_2=None,
        height=None,
        width=None,
        strength: float = 1.0,
        padding_mask_crop=None,
        num_inference_steps: int = 28,
        sigmas=None,
        guidance_scale: float = 3.5,
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
        max_area: int = 1024**2,
        _auto_resize: bool = True,
    ):
        """Repaint the white region of ``mask_image`` in ``image`` as the prompt instructs;
        ``image_reference`` (optional) is the image Kontext looks at instead of ``image``.

        Args:
            image: the image to edit; its (resized) size is the output size.
            image_reference: an optional second image whose tokens condition every step.
            mask_image: white = repaint, black = keep.
            strength: how far ``image`` is noised first (1.0 = from pure noise).
            max_area, _auto_resize: as in FluxKontextPipeline.
            The other arguments are FluxInpaintPipeline's. ``padding_mask_crop`` is not
            supported (ppdiffusers' image processor has no crop mode): pass None.

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """
        if padding_mask_crop is not None:
            raise ValueError(
                "padding_mask_crop is not supported by ppflux; crop the image and mask yourself"
            )
        if image is None or mask_image is None:
            raise ValueError("FluxKontextInpaintPipeline needs `image` and `mask_image`")
        height, width = self._fit_area(height, width, max_area)
        image, h, w = self._reference_image(image, _auto_resize)
        if h is not None:
            height, width = h, w
        elif image.shape[1] == self.latent_channels:
            raise ValueError(
                "FluxKontextInpaintPipeline needs `image` as pixels (the mask "
                "applies to them), not latents"
            )
        reference = None
        if image_reference is not None:
            reference, _, _ = self._reference_image(image_reference, _auto_resize)
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
        dtype = prep.prompt_embeds.dtype
        source = reference if reference is not None else prep.init_image
        tokens, ids = self._reference_tokens(source, prep.total, dtype, generator)
        self._extra_ids = ids
        try:
            return self._inpaint(
                prep,
                mask_image,
                None,
                num_images_per_prompt,
                generator,
                latents,
                joint_attention_kwargs,
                output_type,
                return_dict,
                callback_on_step_end,
                callback_on_step_end_tensor_inputs,
                extra={"extra_tokens": tokens},
            )
        finally:
            del self._extra_ids

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
        latents, noise, image_latents, ids = super().prepare_latents(
            image,
            timestep,
            batch_size,
            num_channels_latents,
            height,
            width,
            dtype,
            generator,
            latents,
        )
        extra_ids = getattr(self, "_extra_ids", None)
        if extra_ids is not None:
            ids = paddle.concat([ids, extra_ids], axis=0)
        return latents, noise, image_latents, ids

    def _encode_vae_image(self, image, generator):
        # Kontext encodes images with the distribution's mode
        return self._vae_latents(image, generator, sample_mode="argmax")
