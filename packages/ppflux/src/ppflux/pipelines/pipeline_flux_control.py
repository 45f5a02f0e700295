"""FLUX.1 Canny / Depth "Control" pipelines (transformer ``in_channels`` 128).

Unlike a ControlNet, the control image is VAE-encoded once and its latent tokens are
concatenated to the noisy latents along the channel axis at every step; the transformer
itself was trained (fully or as a LoRA) to read them.
"""

from __future__ import annotations

from .._compat import require_paddle
from .pipeline_flux import FluxPipeline
from .pipeline_flux_img2img import FluxImg2ImgPipeline
from .pipeline_flux_inpaint import FluxInpaintPipeline

paddle = require_paddle()

_CONTROL_DOC = """
        Args:
            control_image: the control image (Canny edges, depth map...) as PIL / numpy /
                Paddle tensor; a 3-D tensor is taken as packed control latents.
            The other arguments are those of the pipeline this one extends.

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """


class _ControlImage:
    def _control_tokens(
        self, control_image, total, num_images_per_prompt, height, width, generator
    ):
        if control_image is None:
            raise ValueError(f"{type(self).__name__} needs `control_image`")
        if isinstance(control_image, paddle.Tensor) and control_image.ndim == 3:
            return control_image  # already packed latents
        image = self.prepare_image(control_image, width, height, total, num_images_per_prompt)
        return self._packed_vae_latents(image, total, generator)


class FluxControlPipeline(_ControlImage, FluxPipeline):
    def __call__(
        self,
        prompt=None,
        prompt_2=None,
        control_image=None,
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
        output_type: str = "pil",
        return_dict: bool = True,
        joint_attention_kwargs=None,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("latents",),
        max_sequence_length: int = 512,
    ):
        def condition(total, dtype, h, w, gen):
            tokens = self._control_tokens(control_image, total, num_images_per_prompt, h, w, gen)
            return {"extra_channels": tokens.astype(dtype)}

        return self._generate(
            prompt=prompt,
            prompt_2=prompt_2,
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
            output_type=output_type,
            return_dict=return_dict,
            joint_attention_kwargs=joint_attention_kwargs,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length,
            latent_channels_divisor=8,
            condition=condition,
        )

    __call__.__doc__ = "Text-to-image steered by a control image." + _CONTROL_DOC


class FluxControlImg2ImgPipeline(_ControlImage, FluxImg2ImgPipeline):
    def __call__(
        self,
        prompt=None,
        prompt_2=None,
        image=None,
        control_image=None,
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
        if image is None:
            raise ValueError("FluxControlImg2ImgPipeline needs `image`")
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
        prep.num_channels_latents = self._config_of("transformer")["in_channels"] // 8
        dtype = prep.prompt_embeds.dtype
        control = self._control_tokens(
            control_image, prep.total, num_images_per_prompt, prep.height, prep.width, generator
        ).astype(dtype)
        latents, image_ids = self.prepare_latents(
            prep.init_image,
            prep.latent_timestep,
            prep.total,
            prep.num_channels_latents,
            prep.height,
            prep.width,
            dtype,
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
            extra={"extra_channels": control},
        )

    __call__.__doc__ = "Image-to-image steered by a control image." + _CONTROL_DOC


class FluxControlInpaintPipeline(_ControlImage, FluxInpaintPipeline):
    def __call__(
        self,
        prompt=None,
        prompt_2=None,
        image=None,
        control_image=None,
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
        if image is None or mask_image is None:
            raise ValueError("FluxControlInpaintPipeline needs `image` and `mask_image`")
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
        prep.num_channels_latents = self._config_of("transformer")["in_channels"] // 8
        control = self._control_tokens(
            control_image, prep.total, num_images_per_prompt, prep.height, prep.width, generator
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
            extra={"extra_channels": control.astype(prep.prompt_embeds.dtype)},
        )

    __call__.__doc__ = "Inpainting steered by a control image." + _CONTROL_DOC
