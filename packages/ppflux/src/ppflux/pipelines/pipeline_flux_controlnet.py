"""FluxControlNetPipeline: text-to-image guided by one or several (union) ControlNets."""

from __future__ import annotations

from .._compat import require_paddle
from ..models.controlnet_flux import FluxMultiControlNetModel
from . import pipeline_flux as base
from .pipeline_flux import FluxPipeline
from .pipeline_flux_img2img import FluxImg2ImgPipeline
from .pipeline_flux_inpaint import FluxInpaintPipeline

paddle = require_paddle()


class FluxControlNetPipeline(FluxPipeline):
    _optional = ("controlnet",)

    def __init__(
        self,
        scheduler,
        vae,
        text_encoder,
        tokenizer,
        text_encoder_2,
        tokenizer_2,
        transformer,
        controlnet,
    ):
        if isinstance(controlnet, (list, tuple)):
            controlnet = FluxMultiControlNetModel(controlnet)
        super().__init__(
            scheduler,
            vae,
            text_encoder,
            tokenizer,
            text_encoder_2,
            tokenizer_2,
            transformer,
            controlnet=controlnet,
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, low_memory: bool = False, **components):
        controlnet = components.get("controlnet")
        if isinstance(controlnet, (list, tuple)):
            components["controlnet"] = FluxMultiControlNetModel(controlnet)
        return super().from_pretrained(pretrained_model_name_or_path, low_memory, **components)

    def _controlnet(self):
        controlnet = self._component("controlnet")
        if controlnet is None:
            raise ValueError(
                f"{type(self).__name__} needs a controlnet (pass controlnet=... to "
                "from_pretrained, or put a controlnet/ folder in the pipeline)"
            )
        if isinstance(controlnet, (list, tuple)):
            controlnet = FluxMultiControlNetModel(controlnet)
            self._modules["controlnet"] = controlnet
        return controlnet

    def _prepare_controlnet(
        self,
        control_image,
        control_mode,
        controlnet_conditioning_scale,
        control_guidance_start,
        control_guidance_end,
        height,
        width,
        total,
        num_images_per_prompt,
        n_ch,
        generator,
    ):
        """Control images (VAE tokens, or pixels for ControlNets with an input hint block),
        modes, scales and the per-step schedule, shared by the three ControlNet pipelines.
        Returns a namespace; ``height`` / ``width`` are those of the control image."""
        from types import SimpleNamespace

        controlnet = self._controlnet()
        multi = isinstance(controlnet, FluxMultiControlNetModel)
        if control_image is None:
            raise ValueError(f"{type(self).__name__} needs `control_image`")
        if not isinstance(control_guidance_start, list) and isinstance(control_guidance_end, list):
            control_guidance_start = len(control_guidance_end) * [control_guidance_start]
        elif not isinstance(control_guidance_end, list) and isinstance(
            control_guidance_start, list
        ):
            control_guidance_end = len(control_guidance_start) * [control_guidance_end]
        elif not isinstance(control_guidance_start, list):
            mult = len(controlnet.nets) if multi else 1
            control_guidance_start = mult * [control_guidance_start]
            control_guidance_end = mult * [control_guidance_end]
        first = controlnet.nets[0] if multi else controlnet
        repeat = first.input_hint_block is not None

        def prepare(image):
            nonlocal height, width
            image = self.prepare_image(image, width, height, total, num_images_per_prompt)
            height, width = image.shape[-2:]
            return image if repeat else self._control_latents(image, total, n_ch, generator)

        if not multi:
            control_image = prepare(control_image)
            if control_mode is not None:
                if not isinstance(control_mode, int):
                    raise ValueError("for a single ControlNet, control_mode must be an int")
                control_mode = paddle.full([control_image.shape[0], 1], control_mode, dtype="int64")
        else:
            images = control_image if isinstance(control_image, list) else [control_image]
            control_image = [prepare(image) for image in images]
            if isinstance(control_mode, list) and len(control_mode) != len(control_image):
                raise ValueError("control_mode must have one entry per control image")
            if not isinstance(control_mode, list):
                control_mode = [control_mode] * len(control_image)
            control_mode = [
                paddle.full([control_image[0].shape[0]], -1 if m is None else m, dtype="int64")
                for m in control_mode
            ]
            if not isinstance(controlnet_conditioning_scale, list):
                controlnet_conditioning_scale = [controlnet_conditioning_scale] * len(control_image)
        return SimpleNamespace(
            image=control_image,
            mode=control_mode,
            scale=controlnet_conditioning_scale,
            start=control_guidance_start,
            end=control_guidance_end,
            repeat=repeat,
            multi=multi,
            config=dict(first.config),
            height=height,
            width=width,
        )

    def _controlnet_step_kwargs(
        self,
        cn,
        timesteps,
        guidance_scale,
        batch,
        pooled,
        prompt_embeds,
        text_ids,
        image_ids,
        joint_attention_kwargs,
    ):
        """``step_kwargs(i, t, latents)``: the ControlNet residuals for the transformer."""
        n = len(timesteps)
        keep = []
        for i in range(n):
            keeps = [1.0 - float(i / n < s or (i + 1) / n > e) for s, e in zip(cn.start, cn.end)]
            keep.append(keeps if cn.multi else keeps[0])
        cn_guidance = self._guidance(cn.config, guidance_scale, batch)

        def step_kwargs(i, t, latents):
            timestep = paddle.full([latents.shape[0]], float(t), dtype=latents.dtype)
            if isinstance(keep[i], list):
                cond_scale = [c * s for c, s in zip(cn.scale, keep[i])]
            else:
                scale = cn.scale[0] if isinstance(cn.scale, list) else cn.scale
                cond_scale = scale * keep[i]
            with paddle.no_grad():
                # looked up per step, so that low_memory can free it afterwards
                blocks, singles = self._component("controlnet")(
                    hidden_states=latents,
                    controlnet_cond=cn.image,
                    controlnet_mode=cn.mode,
                    conditioning_scale=cond_scale,
                    timestep=timestep / 1000,
                    guidance=cn_guidance,
                    pooled_projections=pooled,
                    encoder_hidden_states=prompt_embeds,
                    txt_ids=text_ids,
                    img_ids=image_ids,
                    joint_attention_kwargs=joint_attention_kwargs,
                    return_dict=False,
                )
            return dict(
                controlnet_block_samples=blocks,
                controlnet_single_block_samples=singles,
                controlnet_blocks_repeat=cn.repeat,
            )

        return step_kwargs

    def _control_latents(self, image, batch, n_ch, generator):
        return self._packed_vae_latents(image, batch, generator)

    def __call__(
        self,
        prompt=None,
        prompt_2=None,
        height=None,
        width=None,
        num_inference_steps: int = 28,
        sigmas=None,
        guidance_scale: float = 7.0,
        control_guidance_start=0.0,
        control_guidance_end=1.0,
        control_image=None,
        control_mode=None,
        controlnet_conditioning_scale=1.0,
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
        """Text-to-image guided by ControlNet residuals.

        Args:
            control_image: one image, or a list (one per ControlNet / per union mode).
            control_mode: union ControlNets: the mode index (int, or a list per image).
            controlnet_conditioning_scale: residual scale (float, or a list per ControlNet).
            control_guidance_start, control_guidance_end: the fraction of the steps during
                which the ControlNet is applied (float or a list per ControlNet).
            The other arguments are FluxPipeline's.

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """
        height = height or self.default_sample_size * self.vae_scale_factor
        width = width or self.default_sample_size * self.vae_scale_factor
        self._controlnet()
        if control_image is None:
            raise ValueError("FluxControlNetPipeline needs `control_image`")
        batch_size, prompt_embeds, pooled, text_ids = self._encode_checked(
            prompt,
            prompt_2,
            height,
            width,
            prompt_embeds,
            pooled_prompt_embeds,
            num_images_per_prompt,
            max_sequence_length,
            callback_on_step_end_tensor_inputs,
        )
        tcfg = self._config_of("transformer")
        n_ch = tcfg["in_channels"] // 4
        total = batch_size * num_images_per_prompt
        cn = self._prepare_controlnet(
            control_image,
            control_mode,
            controlnet_conditioning_scale,
            control_guidance_start,
            control_guidance_end,
            height,
            width,
            total,
            num_images_per_prompt,
            n_ch,
            generator,
        )
        height, width = cn.height, cn.width
        latents, image_ids = self.prepare_latents(
            total, n_ch, height, width, prompt_embeds.dtype, generator, latents
        )
        timesteps, _ = self._timesteps(num_inference_steps, sigmas, latents.shape[1])
        guidance = self._guidance(tcfg, guidance_scale, latents.shape[0])
        step_kwargs = self._controlnet_step_kwargs(
            cn,
            timesteps,
            guidance_scale,
            latents.shape[0],
            pooled,
            prompt_embeds,
            text_ids,
            image_ids,
            joint_attention_kwargs,
        )
        self._component("scheduler").set_begin_index(0)

        def step_fn(i, t, latents):
            return self._predict(
                latents,
                t,
                guidance,
                prompt_embeds,
                pooled,
                text_ids,
                image_ids,
                joint_attention_kwargs,
                **step_kwargs(i, t, latents),
            )

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
            release=("transformer", "controlnet"),
        )


class FluxControlNetImg2ImgPipeline(FluxControlNetPipeline, FluxImg2ImgPipeline):
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
        control_guidance_start=0.0,
        control_guidance_end=1.0,
        control_mode=None,
        controlnet_conditioning_scale=1.0,
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
        """Image-to-image (``image``, ``strength`` as FluxImg2ImgPipeline) guided by
        ControlNet residuals (``control_*`` as FluxControlNetPipeline).

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """
        if image is None:
            raise ValueError("FluxControlNetImg2ImgPipeline needs `image`")
        self._controlnet()
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
        cn = self._prepare_controlnet(
            control_image,
            control_mode,
            controlnet_conditioning_scale,
            control_guidance_start,
            control_guidance_end,
            prep.height,
            prep.width,
            prep.total,
            num_images_per_prompt,
            prep.num_channels_latents,
            generator,
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
        step_kwargs = self._controlnet_step_kwargs(
            cn,
            prep.timesteps,
            guidance_scale,
            prep.total,
            prep.pooled,
            prep.prompt_embeds,
            prep.text_ids,
            image_ids,
            joint_attention_kwargs,
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
            step_kwargs=step_kwargs,
            release=("transformer", "controlnet"),
        )


class FluxControlNetInpaintPipeline(FluxControlNetPipeline, FluxInpaintPipeline):
    def __call__(
        self,
        prompt=None,
        prompt_2=None,
        image=None,
        mask_image=None,
        masked_image_latents=None,
        control_image=None,
        height=None,
        width=None,
        strength: float = 0.6,
        padding_mask_crop=None,
        sigmas=None,
        num_inference_steps: int = 28,
        guidance_scale: float = 7.0,
        control_guidance_start=0.0,
        control_guidance_end=1.0,
        control_mode=None,
        controlnet_conditioning_scale=1.0,
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
        """Inpainting (``image``, ``mask_image``, ``strength`` as FluxInpaintPipeline) guided
        by ControlNet residuals (``control_*`` as FluxControlNetPipeline).
        ``padding_mask_crop`` is not supported (pass None).

        Returns:
            ``FluxPipelineOutput(images=...)`` or ``(images,)``.
        """
        if padding_mask_crop is not None:
            raise ValueError(
                "padding_mask_crop is not supported by ppflux; crop the image and mask yourself"
            )
        if image is None or mask_image is None:
            raise ValueError("FluxControlNetInpaintPipeline needs `image` and `mask_image`")
        self._controlnet()
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
        cn = self._prepare_controlnet(
            control_image,
            control_mode,
            controlnet_conditioning_scale,
            control_guidance_start,
            control_guidance_end,
            prep.height,
            prep.width,
            prep.total,
            num_images_per_prompt,
            prep.num_channels_latents,
            generator,
        )
        image_ids = base.prepare_latent_image_ids(
            prep.height // self.vae_scale_factor // 2, prep.width // self.vae_scale_factor // 2
        )
        step_kwargs = self._controlnet_step_kwargs(
            cn,
            prep.timesteps,
            guidance_scale,
            prep.total,
            prep.pooled,
            prep.prompt_embeds,
            prep.text_ids,
            image_ids,
            joint_attention_kwargs,
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
            step_kwargs=step_kwargs,
            release=("transformer", "controlnet"),
        )
