"""FluxControlNetPipeline: text-to-image guided by one or several (union) ControlNets."""

from __future__ import annotations

import numpy as np

from .._compat import require_paddle
from ..models.controlnet_flux import FluxControlNetModel, FluxMultiControlNetModel
from . import pipeline_flux as base
from .pipeline_flux import FluxPipeline, pack_latents

paddle = require_paddle()


class FluxControlNetPipeline(FluxPipeline):
    _optional = ("controlnet",)

    def __init__(self, scheduler, vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2,
                 transformer, controlnet):
        if isinstance(controlnet, (list, tuple)):
            controlnet = FluxMultiControlNetModel(controlnet)
        super().__init__(scheduler, vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2,
                         transformer, controlnet=controlnet)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, low_memory: bool = False,
                        **components):
        controlnet = components.get("controlnet")
        if isinstance(controlnet, (list, tuple)):
            components["controlnet"] = FluxMultiControlNetModel(controlnet)
        return super().from_pretrained(pretrained_model_name_or_path, low_memory, **components)

    def prepare_image(self, image, width, height, batch_size, num_images_per_prompt,
                      dtype="float32"):
        if not isinstance(image, paddle.Tensor):
            image = self.image_processor.preprocess(image, height=height, width=width)
        repeat_by = batch_size if image.shape[0] == 1 else num_images_per_prompt
        image = paddle.repeat_interleave(image, repeat_by, axis=0)
        return image.astype(dtype)

    def _control_latents(self, image, batch, n_ch, generator):
        vae = self._component("vae")
        with paddle.no_grad():
            latents = base.retrieve_latents(vae.encode(image), generator=generator)
        latents = (latents - vae.config.shift_factor) * vae.config.scaling_factor
        h, w = latents.shape[2:]
        return pack_latents(latents, batch, n_ch, h, w)

    def __call__(self, prompt=None, prompt_2=None, height=None, width=None,
                 num_inference_steps: int = 28, sigmas=None, guidance_scale: float = 7.0,
                 control_guidance_start=0.0, control_guidance_end=1.0, control_image=None,
                 control_mode=None, controlnet_conditioning_scale=1.0,
                 num_images_per_prompt: int = 1, generator=None, latents=None,
                 prompt_embeds=None, pooled_prompt_embeds=None, output_type: str = "pil",
                 return_dict: bool = True, joint_attention_kwargs=None,
                 callback_on_step_end=None, callback_on_step_end_tensor_inputs=("latents",),
                 max_sequence_length: int = 512):
        height = height or self.default_sample_size * self.vae_scale_factor
        width = width or self.default_sample_size * self.vae_scale_factor
        controlnet = self._component("controlnet")
        if controlnet is None:
            raise ValueError("FluxControlNetPipeline needs a controlnet (pass controlnet=... to "
                             "from_pretrained, or put a controlnet/ folder in the pipeline)")
        if isinstance(controlnet, (list, tuple)):
            controlnet = FluxMultiControlNetModel(controlnet)
            self._modules["controlnet"] = controlnet
        multi = isinstance(controlnet, FluxMultiControlNetModel)
        if control_image is None:
            raise ValueError("FluxControlNetPipeline needs `control_image`")
        if not isinstance(control_guidance_start, list) and isinstance(control_guidance_end, list):
            control_guidance_start = len(control_guidance_end) * [control_guidance_start]
        elif not isinstance(control_guidance_end, list) and isinstance(control_guidance_start,
                                                                        list):
            control_guidance_end = len(control_guidance_start) * [control_guidance_end]
        elif not isinstance(control_guidance_start, list):
            mult = len(controlnet.nets) if multi else 1
            control_guidance_start = mult * [control_guidance_start]
            control_guidance_end = mult * [control_guidance_end]
        batch_size, prompt_embeds, pooled, text_ids = self._encode_checked(
            prompt, prompt_2, height, width, prompt_embeds, pooled_prompt_embeds,
            num_images_per_prompt, max_sequence_length, callback_on_step_end_tensor_inputs)
        tcfg = self._config_of("transformer")
        n_ch = tcfg["in_channels"] // 4
        total = batch_size * num_images_per_prompt
        if not multi:
            control_image = self.prepare_image(control_image, width, height, total,
                                               num_images_per_prompt)
            height, width = control_image.shape[-2:]
            repeat = controlnet.input_hint_block is not None
            if not repeat:
                control_image = self._control_latents(control_image, total, n_ch, generator)
            if control_mode is not None:
                if not isinstance(control_mode, int):
                    raise ValueError("for a single ControlNet, control_mode must be an int")
                control_mode = paddle.full([control_image.shape[0], 1], control_mode,
                                           dtype="int64")
        else:
            images = control_image if isinstance(control_image, list) else [control_image]
            repeat = controlnet.nets[0].input_hint_block is not None
            prepared = []
            for image in images:
                image = self.prepare_image(image, width, height, total, num_images_per_prompt)
                height, width = image.shape[-2:]
                if not repeat:
                    image = self._control_latents(image, total, n_ch, generator)
                prepared.append(image)
            control_image = prepared
            if isinstance(control_mode, list) and len(control_mode) != len(control_image):
                raise ValueError("control_mode must have one entry per control image")
            if not isinstance(control_mode, list):
                control_mode = [control_mode] * len(control_image)
            control_mode = [paddle.full([prepared[0].shape[0]], -1 if m is None else m,
                                        dtype="int64") for m in control_mode]
            if not isinstance(controlnet_conditioning_scale, list):
                controlnet_conditioning_scale = [controlnet_conditioning_scale] * len(prepared)
        latents, image_ids = self.prepare_latents(total, n_ch, height, width,
                                                  prompt_embeds.dtype, generator, latents)
        timesteps, _ = self._timesteps(num_inference_steps, sigmas, latents.shape[1])
        keep = []
        n = len(timesteps)
        for i in range(n):
            keeps = [1.0 - float(i / n < s or (i + 1) / n > e)
                     for s, e in zip(control_guidance_start, control_guidance_end)]
            keep.append(keeps if multi else keeps[0])
        cn_config = controlnet.nets[0].config if multi else controlnet.config
        cn_guidance = self._guidance(dict(cn_config), guidance_scale, latents.shape[0])
        guidance = self._guidance(tcfg, guidance_scale, latents.shape[0])
        self._component("scheduler").set_begin_index(0)
        controlnet = None  # looked up per step, so that low_memory can free it afterwards

        def step_fn(i, t, latents):
            timestep = paddle.full([latents.shape[0]], float(t), dtype=latents.dtype)
            if isinstance(keep[i], list):
                cond_scale = [c * s for c, s in zip(controlnet_conditioning_scale, keep[i])]
            else:
                scale = controlnet_conditioning_scale
                scale = scale[0] if isinstance(scale, list) else scale
                cond_scale = scale * keep[i]
            with paddle.no_grad():
                blocks, singles = self._component("controlnet")(
                    hidden_states=latents, controlnet_cond=control_image,
                    controlnet_mode=control_mode, conditioning_scale=cond_scale,
                    timestep=timestep / 1000, guidance=cn_guidance, pooled_projections=pooled,
                    encoder_hidden_states=prompt_embeds, txt_ids=text_ids, img_ids=image_ids,
                    joint_attention_kwargs=joint_attention_kwargs, return_dict=False)
            return self._predict(latents, t, guidance, prompt_embeds, pooled, text_ids,
                                 image_ids, joint_attention_kwargs,
                                 controlnet_block_samples=blocks,
                                 controlnet_single_block_samples=singles,
                                 controlnet_blocks_repeat=repeat)

        return self._denoise_and_decode(timesteps, latents, step_fn, prompt_embeds, height,
                                        width, output_type, return_dict, callback_on_step_end,
                                        callback_on_step_end_tensor_inputs,
                                        release=("transformer", "controlnet"))


__all__ = ["FluxControlNetPipeline", "FluxControlNetModel", "FluxMultiControlNetModel", "np"]
