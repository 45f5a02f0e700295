"""FluxImg2ImgPipeline: start from a noised VAE encoding of an image (``strength``)."""

from __future__ import annotations

from .._compat import require_paddle
from . import pipeline_flux as base
from .pipeline_flux import FluxPipeline, FluxPipelineOutput, pack_latents, prepare_latent_image_ids

paddle = require_paddle()


class FluxImg2ImgPipeline(FluxPipeline):
    def _encode_vae_image(self, image, generator):
        vae = self._component("vae")
        with paddle.no_grad():
            latents = base.retrieve_latents(vae.encode(image), generator=generator)
        return (latents - vae.config.shift_factor) * vae.config.scaling_factor

    def get_timesteps(self, num_inference_steps, strength):
        scheduler = self._component("scheduler")
        init_timestep = min(num_inference_steps * strength, num_inference_steps)
        t_start = int(max(num_inference_steps - init_timestep, 0))
        timesteps = scheduler.timesteps[t_start * scheduler.order:]
        scheduler.set_begin_index(t_start * scheduler.order)
        return timesteps, num_inference_steps - t_start

    def _image_latents(self, image, batch_size, generator):
        image = image.astype("float32")
        if image.shape[1] != self.latent_channels:
            image_latents = self._encode_vae_image(image, generator)
        else:
            image_latents = image
        if batch_size > image_latents.shape[0]:
            if batch_size % image_latents.shape[0] != 0:
                raise ValueError(f"cannot duplicate {image_latents.shape[0]} image(s) to a batch "
                                 f"of {batch_size}")
            image_latents = paddle.concat(
                [image_latents] * (batch_size // image_latents.shape[0]), axis=0)
        return image_latents

    def prepare_latents(self, image, timestep, batch_size, num_channels_latents, height, width,
                        dtype, generator, latents=None):
        height = 2 * (int(height) // (self.vae_scale_factor * 2))
        width = 2 * (int(width) // (self.vae_scale_factor * 2))
        ids = prepare_latent_image_ids(height // 2, width // 2)
        if latents is not None:
            return paddle.to_tensor(latents).astype(dtype), ids
        image_latents = self._image_latents(image, batch_size, generator)
        noise = base.randn_tensor([batch_size, num_channels_latents, height, width], generator,
                                  dtype)
        latents = self._component("scheduler").scale_noise(image_latents, timestep, noise)
        return pack_latents(latents, batch_size, num_channels_latents, height, width), ids

    def _check_strength(self, strength):
        if not 0 <= strength <= 1:
            raise ValueError(f"strength must be in [0, 1], got {strength}")

    def _prepare_common(self, prompt, prompt_2, image, height, width, num_inference_steps,
                        sigmas, strength, num_images_per_prompt, prompt_embeds,
                        pooled_prompt_embeds, max_sequence_length, callback_inputs):
        self._check_strength(strength)
        init_image = self.image_processor.preprocess(image, height=height, width=width)
        init_image = init_image.astype("float32")
        if height is None or width is None:
            height, width = init_image.shape[-2:]
        self.check_inputs(prompt, prompt_2, height, width, prompt_embeds=prompt_embeds,
                          pooled_prompt_embeds=pooled_prompt_embeds,
                          callback_on_step_end_tensor_inputs=callback_inputs,
                          max_sequence_length=max_sequence_length)
        batch_size = (1 if isinstance(prompt, str) else len(prompt)) if prompt is not None \
            else prompt_embeds.shape[0]
        prompt_embeds, pooled_prompt_embeds, text_ids = self.encode_prompt(
            prompt, prompt_2, prompt_embeds, pooled_prompt_embeds, num_images_per_prompt,
            max_sequence_length)
        image_seq_len = (int(height) // self.vae_scale_factor // 2) * \
            (int(width) // self.vae_scale_factor // 2)
        _, num_inference_steps = self._timesteps(num_inference_steps, sigmas, image_seq_len)
        timesteps, num_inference_steps = self.get_timesteps(num_inference_steps, strength)
        if num_inference_steps < 1:
            raise ValueError(f"strength={strength} with {num_inference_steps} steps leaves no "
                             "denoising step")
        total = batch_size * num_images_per_prompt
        latent_timestep = timesteps[:1].tile([total])
        return (init_image, height, width, total, prompt_embeds, pooled_prompt_embeds, text_ids,
                timesteps, latent_timestep)

    def _transformer_step(self, transformer, guidance, prompt_embeds, pooled, text_ids,
                          image_ids, joint_attention_kwargs):
        def step_fn(i, t, latents):
            timestep = paddle.full([latents.shape[0]], float(t), dtype=latents.dtype)
            with paddle.no_grad():
                return transformer(hidden_states=latents, timestep=timestep / 1000,
                                   guidance=guidance, pooled_projections=pooled,
                                   encoder_hidden_states=prompt_embeds, txt_ids=text_ids,
                                   img_ids=image_ids,
                                   joint_attention_kwargs=joint_attention_kwargs,
                                   return_dict=False)[0]
        return step_fn

    def __call__(self, prompt=None, prompt_2=None, image=None, height=None, width=None,
                 strength: float = 0.6, num_inference_steps: int = 28, sigmas=None,
                 guidance_scale: float = 7.0, num_images_per_prompt: int = 1, generator=None,
                 latents=None, prompt_embeds=None, pooled_prompt_embeds=None,
                 output_type: str = "pil", return_dict: bool = True,
                 joint_attention_kwargs=None, callback_on_step_end=None,
                 callback_on_step_end_tensor_inputs=("latents",),
                 max_sequence_length: int = 512):
        if image is None:
            raise ValueError("FluxImg2ImgPipeline needs `image`")
        (init_image, height, width, total, prompt_embeds, pooled, text_ids, timesteps,
         latent_timestep) = self._prepare_common(
            prompt, prompt_2, image, height, width, num_inference_steps, sigmas, strength,
            num_images_per_prompt, prompt_embeds, pooled_prompt_embeds, max_sequence_length,
            callback_on_step_end_tensor_inputs)
        tcfg = self._config_of("transformer")
        latents, image_ids = self.prepare_latents(
            init_image, latent_timestep, total, tcfg["in_channels"] // 4, height, width,
            prompt_embeds.dtype, generator, latents)
        guidance = self._guidance(tcfg, guidance_scale, latents.shape[0])
        transformer = self._component("transformer")
        step_fn = self._transformer_step(transformer, guidance, prompt_embeds, pooled, text_ids,
                                         image_ids, joint_attention_kwargs)
        latents = self._denoise(timesteps, latents, step_fn, callback_on_step_end,
                                callback_on_step_end_tensor_inputs,
                                {"prompt_embeds": prompt_embeds})
        transformer = step_fn = None  # drop references so low_memory can free it
        self._release("transformer")
        image = self._decode(latents, height, width, output_type)
        return FluxPipelineOutput(images=image) if return_dict else (image,)
