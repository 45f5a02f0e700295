"""Inputs shared by both sides of the newest-stack parity run (numpy only, no framework).

``make_reference.py`` (torch + the newest diffusers / transformers) and
``test_parity_newest.py`` (Paddle + ppflux) import this file, so both sides see the same
prompts, latents, images and noise, and the tolerances live in one place.
"""

from __future__ import annotations

import numpy as np
from reference import transformer_inputs  # tests/reference.py: numpy-only at import

PROMPT = "a photo of a red cat on the moon"
COMMON = dict(num_inference_steps=2, output_type="np", max_sequence_length=48)

TOL_MODEL = 1e-5      # transformer / ControlNet outputs, max abs, fp32 CPU (issue #6)
TOL_IMAGE = 1e-4      # final images of the two-step pipelines, max abs (issue #6)
# scheduler sigmas / timesteps: equal (float32 rounding)

SCHEDULER_CASES = {  # name -> (config overrides of reference.DEV_SCHEDULER, set_timesteps kwargs)
    "dev 28 steps mu=0.9": ({}, dict(sigmas=np.linspace(1, 1 / 28, 28), mu=0.9)),
    "dev 4 steps seq 4096": ({}, dict(sigmas=np.linspace(1, 1 / 4, 4), mu=1.15)),
    "dev default 7 steps mu=0.8": ({}, dict(num_inference_steps=7, mu=0.8)),
    "schnell 4 steps": (dict(use_dynamic_shifting=False, shift=1.0),
                        dict(num_inference_steps=4)),
    "custom sigmas": ({}, dict(sigmas=[1.0, 0.7, 0.3, 0.1], mu=0.6)),
}


def noise(shape) -> np.ndarray:
    """Deterministic N(0, 1) noise keyed by the shape: replaces each library's own RNG draw."""
    shape = tuple(int(s) for s in shape)
    seed = int(np.prod(shape)) * 31 + sum((i + 1) * s for i, s in enumerate(shape))
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def image(seed: int, size: int = 64, mode: str = "RGB"):
    from PIL import Image

    if mode == "L":
        arr = np.zeros((size, size), np.uint8)
        arr[size // 4: 3 * size // 4, size // 8: size // 2] = 255
        return Image.fromarray(arr, "L")
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def latents(seed: int = 0, batch: int = 1, tokens: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, tokens, 64)).astype(np.float32)


def model_cases() -> dict:
    """name -> (model folder, inputs). ControlNet inputs carry the conditioning."""
    dev = transformer_inputs(batch=2, timestep=[0.75, 0.3])
    dev["guidance"] = np.array([3.5, 1.0], np.float32)
    schnell = transformer_inputs(seed=3, image_tokens=24, text_tokens=5, grid_w=6)
    canny = transformer_inputs(seed=4)
    canny.update(guidance=np.array([3.5], np.float32), controlnet_cond=noise((1, 16, 64)),
                 conditioning_scale=0.7)
    union = dict(canny, controlnet_mode=np.array([[2]], np.int64))
    return {"transformer dev": ("pipe/transformer", dev),
            "transformer schnell": ("schnell", schnell),
            "FluxControlNetModel": ("canny", canny),
            "FluxControlNetModel union (mode 2)": ("union", union)}


def pipeline_cases() -> dict:
    """name -> (pipeline class name, controlnet spec, call kwargs without prompt/latents,
    latents or None). ``controlnet``: None, "canny" or ["union"] (a multi-ControlNet)."""
    return {
        "FluxPipeline 2 steps": ("FluxPipeline", None, dict(
            height=64, width=64, guidance_scale=3.5, **COMMON), latents(0)),
        "FluxImg2ImgPipeline 3 steps, strength 0.8": ("FluxImg2ImgPipeline", None, dict(
            image=image(0), height=64, width=64, strength=0.8, guidance_scale=3.0,
            num_inference_steps=3, output_type="np", max_sequence_length=48), None),
        "FluxInpaintPipeline 3 steps, strength 0.9": ("FluxInpaintPipeline", None, dict(
            image=image(1), mask_image=image(2, mode="L"), height=64, width=64, strength=0.9,
            guidance_scale=3.0, num_inference_steps=3, output_type="np",
            max_sequence_length=48), None),
        "FluxControlNetPipeline 2 steps": ("FluxControlNetPipeline", "canny", dict(
            control_image=image(3), height=64, width=64, guidance_scale=3.5,
            controlnet_conditioning_scale=0.8, control_guidance_end=0.6, **COMMON),
            latents(2)),
        "FluxControlNetPipeline multi/union, 2 images": ("FluxControlNetPipeline", ["union"],
            dict(control_image=[image(4), image(5)], control_mode=[0, 2],
                 controlnet_conditioning_scale=[0.5, 0.9], height=64, width=64,
                 guidance_scale=3.5, **COMMON), latents(3)),
    }
