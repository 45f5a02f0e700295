"""FluxPriorReduxPipeline: FLUX.1 Redux, image variation through prompt embeddings.

A SigLIP vision tower encodes the image; Redux's embedder projects its tokens to the T5 width;
they are appended to the prompt's T5 embeddings (zeros when the pipeline has no text
encoders, as FLUX.1-Redux-dev ships). The result goes to FluxPipeline as ``prompt_embeds`` /
``pooled_prompt_embeds``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._compat import require_paddle
from .pipeline_flux import FluxPipeline

paddle = require_paddle()


def _load_siglip(folder):
    from ..models.siglip import SiglipVisionModel

    return SiglipVisionModel.from_pretrained(folder)


def _load_feature_extractor(folder):
    from ..models.siglip import SiglipImageProcessor

    return SiglipImageProcessor.from_pretrained(folder)


def _load_redux(folder):
    from ..models.redux import ReduxImageEncoder

    return ReduxImageEncoder.from_pretrained(folder)


@dataclass
class FluxPriorReduxPipelineOutput:
    prompt_embeds: paddle.Tensor
    pooled_prompt_embeds: paddle.Tensor


class FluxPriorReduxPipeline(FluxPipeline):
    _required = ("image_encoder", "feature_extractor", "image_embedder")
    _may_be_absent = ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")
    _loaders = {
        **FluxPipeline._loaders,
        "image_encoder": _load_siglip,
        "feature_extractor": _load_feature_extractor,
        "image_embedder": _load_redux,
    }

    def __init__(
        self,
        image_encoder,
        feature_extractor,
        image_embedder,
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
    ):
        self._folder = None
        self.low_memory = False
        self._modules = dict(
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            image_embedder=image_embedder,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            text_encoder_2=text_encoder_2,
            tokenizer_2=tokenizer_2,
        )
        self._configs = {}
        self._init_processors()

    def encode_image(self, image, num_images_per_prompt: int = 1):
        """SigLIP ``last_hidden_state`` of the preprocessed image(s)."""
        pixels = self._component("feature_extractor")(image)
        with paddle.no_grad():
            hidden = self._component("image_encoder")(pixels).last_hidden_state
        self._release("image_encoder")
        return paddle.repeat_interleave(hidden, num_images_per_prompt, axis=0)

    def __call__(
        self,
        image,
        prompt=None,
        prompt_2=None,
        prompt_embeds=None,
        pooled_prompt_embeds=None,
        prompt_embeds_scale=1.0,
        pooled_prompt_embeds_scale=1.0,
        return_dict: bool = True,
    ):
        """Prompt embeddings for FluxPipeline that carry ``image``.

        Args:
            image: a PIL image or a list of them (their embeddings are summed, each weighted
                by its ``prompt_embeds_scale`` / ``pooled_prompt_embeds_scale``).
            prompt, prompt_2, prompt_embeds, pooled_prompt_embeds: an optional text prompt
                (needs the text encoders in the pipeline; ignored with a warning otherwise).
            prompt_embeds_scale, pooled_prompt_embeds_scale: float or one per image.
            return_dict: return ``FluxPriorReduxPipelineOutput`` (else a tuple).

        Returns:
            ``FluxPriorReduxPipelineOutput(prompt_embeds=[1, L + N, D],
            pooled_prompt_embeds=[1, P])`` or the tuple of both.
        """
        if image is None:
            raise ValueError("FluxPriorReduxPipeline needs `image`")
        if prompt is not None and prompt_embeds is not None:
            raise ValueError("pass either `prompt` or `prompt_embeds`, not both")
        images = image if isinstance(image, list) else [image]
        batch_size = len(images)
        if isinstance(prompt, str):
            prompt = batch_size * [prompt]
        if isinstance(prompt, list) and len(prompt) != batch_size:
            raise ValueError(f"{len(prompt)} prompts for {batch_size} images")
        scales = {}
        for name, value in (
            ("prompt_embeds_scale", prompt_embeds_scale),
            ("pooled_prompt_embeds_scale", pooled_prompt_embeds_scale),
        ):
            value = batch_size * [value] if isinstance(value, (int, float)) else list(value)
            if len(value) != batch_size:
                raise ValueError(f"{name} has {len(value)} entries for {batch_size} images")
            scales[name] = value
        image_embeds = self._component("image_embedder")(self.encode_image(images)).image_embeds
        dtype = image_embeds.dtype
        if self._component("text_encoder") is not None or prompt_embeds is not None:
            if prompt is None and prompt_embeds is None:
                raise ValueError(
                    "this Redux pipeline has text encoders: pass `prompt` (or "
                    "`prompt_embeds` and `pooled_prompt_embeds`)"
                )
            prompt_embeds, pooled_prompt_embeds, _ = self.encode_prompt(
                prompt, prompt_2, prompt_embeds, pooled_prompt_embeds, 1, 512
            )
        else:
            if prompt is not None:
                import logging

                logging.getLogger("ppflux").warning(
                    "the prompt is ignored: this Redux pipeline has no text encoders"
                )
            width = self._component("image_embedder").config.txt_in_features
            prompt_embeds = paddle.zeros([batch_size, 512, width], dtype=dtype)
            pooled_prompt_embeds = paddle.zeros([batch_size, 768], dtype=dtype)
        prompt_embeds = paddle.concat([prompt_embeds.astype(dtype), image_embeds], axis=1)
        prompt_embeds = (
            prompt_embeds
            * paddle.to_tensor(scales["prompt_embeds_scale"], dtype=dtype)[:, None, None]
        )
        pooled_prompt_embeds = (
            pooled_prompt_embeds.astype(dtype)
            * paddle.to_tensor(scales["pooled_prompt_embeds_scale"], dtype=dtype)[:, None]
        )
        prompt_embeds = prompt_embeds.sum(axis=0, keepdim=True)
        pooled_prompt_embeds = pooled_prompt_embeds.sum(axis=0, keepdim=True)
        if not return_dict:
            return prompt_embeds, pooled_prompt_embeds
        return FluxPriorReduxPipelineOutput(
            prompt_embeds=prompt_embeds, pooled_prompt_embeds=pooled_prompt_embeds
        )
