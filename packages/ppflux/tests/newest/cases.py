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

TOL_MODEL = 1e-5  # transformer / ControlNet outputs, max abs, fp32 CPU (issue #6)
TOL_IMAGE = 1e-4  # final images of the two-step pipelines, max abs (issue #6)
# scheduler sigmas / timesteps: equal (float32 rounding)

SCHEDULER_CASES = {  # name -> (config overrides of reference.DEV_SCHEDULER, set_timesteps kwargs)
    "dev 28 steps mu=0.9": ({}, dict(sigmas=np.linspace(1, 1 / 28, 28), mu=0.9)),
    "dev 4 steps seq 4096": ({}, dict(sigmas=np.linspace(1, 1 / 4, 4), mu=1.15)),
    "dev default 7 steps mu=0.8": ({}, dict(num_inference_steps=7, mu=0.8)),
    "schnell 4 steps": (dict(use_dynamic_shifting=False, shift=1.0), dict(num_inference_steps=4)),
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
        arr[size // 4 : 3 * size // 4, size // 8 : size // 2] = 255
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
    canny.update(
        guidance=np.array([3.5], np.float32),
        controlnet_cond=noise((1, 16, 64)),
        conditioning_scale=0.7,
    )
    union = dict(canny, controlnet_mode=np.array([[2]], np.int64))
    return {
        "transformer dev": ("pipe/transformer", dev),
        "transformer schnell": ("schnell", schnell),
        "FluxControlNetModel": ("canny", canny),
        "FluxControlNetModel union (mode 2)": ("union", union),
    }


def _case(cls, kwargs, latents=None, controlnet=None, transformer=None):
    return dict(
        cls=cls, kwargs=kwargs, latents=latents, controlnet=controlnet, transformer=transformer
    )


# Transformers of the FLUX.1 variants (config overrides of reference.TINY_TRANSFORMER): Fill
# reads latents + masked-image latents + the 8x8-folded mask (64 + 64 + 256 channels), Control
# reads latents + control-image latents (64 + 64).
VARIANT_TRANSFORMERS = {
    "fill": dict(in_channels=384, out_channels=64),
    "control": dict(in_channels=128, out_channels=64),
}


def pipeline_cases() -> dict:
    """name -> case: pipeline class name, call kwargs without prompt/latents, latents or None,
    ``controlnet`` (None, "canny" or ["union"] for a multi-ControlNet) and ``transformer``
    (None: the pipeline folder's; else a key of VARIANT_TRANSFORMERS)."""
    img2img = dict(
        height=64,
        width=64,
        strength=0.8,
        guidance_scale=3.0,
        num_inference_steps=3,
        output_type="np",
        max_sequence_length=48,
    )
    inpaint = dict(img2img, strength=0.9)
    kontext = dict(max_area=64 * 64, _auto_resize=False, height=64, width=64)
    return {
        "FluxPipeline 2 steps": _case(
            "FluxPipeline", dict(height=64, width=64, guidance_scale=3.5, **COMMON), latents(0)
        ),
        "FluxImg2ImgPipeline 3 steps, strength 0.8": _case(
            "FluxImg2ImgPipeline", dict(img2img, image=image(0))
        ),
        "FluxInpaintPipeline 3 steps, strength 0.9": _case(
            "FluxInpaintPipeline", dict(inpaint, image=image(1), mask_image=image(2, mode="L"))
        ),
        "FluxControlNetPipeline 2 steps": _case(
            "FluxControlNetPipeline",
            dict(
                control_image=image(3),
                height=64,
                width=64,
                guidance_scale=3.5,
                controlnet_conditioning_scale=0.8,
                control_guidance_end=0.6,
                **COMMON,
            ),
            latents(2),
            controlnet="canny",
        ),
        "FluxControlNetPipeline multi/union, 2 images": _case(
            "FluxControlNetPipeline",
            dict(
                control_image=[image(4), image(5)],
                control_mode=[0, 2],
                controlnet_conditioning_scale=[0.5, 0.9],
                height=64,
                width=64,
                guidance_scale=3.5,
                **COMMON,
            ),
            latents(3),
            controlnet=["union"],
        ),
        "FluxControlNetImg2ImgPipeline 3 steps, strength 0.8": _case(
            "FluxControlNetImg2ImgPipeline",
            dict(
                img2img,
                image=image(6),
                control_image=image(3),
                controlnet_conditioning_scale=0.7,
                control_guidance_start=0.2,
            ),
            controlnet="canny",
        ),
        "FluxControlNetInpaintPipeline 3 steps, strength 0.9": _case(
            "FluxControlNetInpaintPipeline",
            dict(
                inpaint,
                image=image(7),
                mask_image=image(2, mode="L"),
                control_image=image(3),
                controlnet_conditioning_scale=0.9,
            ),
            controlnet="canny",
        ),
        "FluxFillPipeline 3 steps (in_channels 384)": _case(
            "FluxFillPipeline",
            dict(
                image=image(8),
                mask_image=image(2, mode="L"),
                height=64,
                width=64,
                guidance_scale=30.0,
                num_inference_steps=3,
                output_type="np",
                max_sequence_length=48,
            ),
            transformer="fill",
        ),
        "FluxFillPipeline 3 steps, strength 0.7": _case(
            "FluxFillPipeline",
            dict(
                image=image(9),
                mask_image=image(2, mode="L"),
                height=64,
                width=64,
                strength=0.7,
                guidance_scale=30.0,
                num_inference_steps=3,
                output_type="np",
                max_sequence_length=48,
            ),
            transformer="fill",
        ),
        "FluxControlPipeline 2 steps (in_channels 128)": _case(
            "FluxControlPipeline",
            dict(control_image=image(10), height=64, width=64, guidance_scale=3.5, **COMMON),
            latents(4),
            transformer="control",
        ),
        "FluxControlImg2ImgPipeline 3 steps, strength 0.8": _case(
            "FluxControlImg2ImgPipeline",
            dict(img2img, image=image(11), control_image=image(10)),
            transformer="control",
        ),
        "FluxControlInpaintPipeline 3 steps, strength 0.9": _case(
            "FluxControlInpaintPipeline",
            dict(inpaint, image=image(12), mask_image=image(2, mode="L"), control_image=image(10)),
            transformer="control",
        ),
        "FluxKontextPipeline 2 steps, reference image": _case(
            "FluxKontextPipeline",
            dict(kontext, image=image(13), guidance_scale=2.5, **COMMON),
            latents(5),
        ),
        "FluxKontextPipeline 2 steps, 48 px reference, true CFG": _case(
            "FluxKontextPipeline",
            dict(
                kontext,
                image=image(14, size=48),
                guidance_scale=2.5,
                negative_prompt="a blurry dark sketch",
                true_cfg_scale=2.0,
                **COMMON,
            ),
            latents(6),
        ),
        "FluxKontextPipeline 2 steps, text only": _case(
            "FluxKontextPipeline", dict(kontext, guidance_scale=2.5, **COMMON), latents(7)
        ),
        "FluxKontextInpaintPipeline 3 steps, strength 0.9": _case(
            "FluxKontextInpaintPipeline",
            dict(
                kontext,
                image=image(15),
                mask_image=image(2, mode="L"),
                strength=0.9,
                guidance_scale=2.5,
                num_inference_steps=3,
                output_type="np",
                max_sequence_length=48,
            ),
        ),
        "FluxKontextInpaintPipeline 3 steps, 48 px image_reference": _case(
            "FluxKontextInpaintPipeline",
            dict(
                kontext,
                image=image(16),
                image_reference=image(17, size=48),
                mask_image=image(2, mode="L"),
                strength=1.0,
                guidance_scale=2.5,
                num_inference_steps=3,
                output_type="np",
                max_sequence_length=48,
            ),
        ),
    }


CACHE_CALL = dict(
    height=64,
    width=64,
    guidance_scale=3.5,
    num_inference_steps=10,
    output_type="np",
    max_sequence_length=48,
)


def cache_cases() -> dict:
    """name -> (pipeline case, (cache config class name, config kwargs)). Both sides also run
    the case without the cache, for the drift. ``taylor_factors_dtype`` is a dtype name."""
    t2i = _case("FluxPipeline", CACHE_CALL, latents(8))
    cfg = _case(
        "FluxPipeline",
        dict(CACHE_CALL, negative_prompt="a blurry dark sketch", true_cfg_scale=1.5),
        latents(9),
    )
    return {
        "FirstBlockCache threshold 0.38, 10 steps": (
            t2i,
            ("FirstBlockCacheConfig", dict(threshold=0.38)),
        ),
        "FirstBlockCache threshold 0.38, 10 steps, true CFG": (
            cfg,
            ("FirstBlockCacheConfig", dict(threshold=0.38)),
        ),
        "TaylorSeer interval 3, order 1, float32 factors, 10 steps": (
            t2i,
            (
                "TaylorSeerCacheConfig",
                dict(
                    cache_interval=3,
                    disable_cache_before_step=2,
                    max_order=1,
                    taylor_factors_dtype="float32",
                ),
            ),
        ),
        "TaylorSeer interval 2, order 2, bfloat16 factors, 10 steps": (
            t2i,
            (
                "TaylorSeerCacheConfig",
                dict(
                    cache_interval=2,
                    disable_cache_before_step=3,
                    max_order=2,
                    taylor_factors_dtype="bfloat16",
                ),
            ),
        ),
        "TaylorSeer lite mode, interval 2, float32 factors, 10 steps, true CFG": (
            cfg,
            (
                "TaylorSeerCacheConfig",
                dict(
                    cache_interval=2,
                    disable_cache_before_step=2,
                    use_lite_mode=True,
                    taylor_factors_dtype="float32",
                ),
            ),
        ),
    }


# SigLIP tower and Redux embedder of the Redux cases (images are made at the tower's size, so
# the two libraries' resize implementations do not enter the comparison)
SIGLIP = dict(
    hidden_size=32,
    intermediate_size=37,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=32,
    patch_size=8,
)


def redux_cases() -> dict:
    """name -> (images, prompt, prompt_embeds_scale, pooled_prompt_embeds_scale, generate):
    ``generate`` also runs FluxPipeline (2 steps) on the Redux embeddings."""
    return {
        "FluxPriorReduxPipeline, 1 image + prompt": ([image(20, size=32)], PROMPT, 1.0, 1.0, False),
        "FluxPriorReduxPipeline, 2 images, scales 0.6/0.4 + FluxPipeline 2 steps": (
            [image(21, size=32), image(22, size=32)],
            "a red cat",
            [0.6, 0.4],
            [0.7, 0.3],
            True,
        ),
    }


# IP-Adapter: a tiny CLIP vision tower (projection 24) and an adapter file in the XLabs layout
IP_CLIP = dict(
    hidden_size=32,
    intermediate_size=37,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=32,
    patch_size=8,
    projection_dim=24,
)


def ip_adapter_tensors(
    num_double_blocks: int = 2,
    text_dim: int = 32,
    inner: int = 32,
    image_dim: int = 24,
    tokens: int = 4,
) -> dict:
    """Random IP-Adapter weights with the key names of XLabs' FLUX IP-Adapter files."""
    rng = np.random.default_rng(13)

    def normal(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    tensors = {
        "ip_adapter_proj_model.proj.weight": normal(tokens * text_dim, image_dim),
        "ip_adapter_proj_model.proj.bias": normal(tokens * text_dim),
        "ip_adapter_proj_model.norm.weight": 1 + normal(text_dim, scale=0.1),
        "ip_adapter_proj_model.norm.bias": normal(text_dim, scale=0.1),
    }
    for i in range(num_double_blocks):
        for kv in ("k", "v"):
            prefix = f"double_blocks.{i}.processor.ip_adapter_double_stream_{kv}_proj"
            tensors[f"{prefix}.weight"] = normal(inner, text_dim)
            tensors[f"{prefix}.bias"] = normal(inner)
    return tensors


def ip_adapter_cases() -> dict:
    """name -> (set_ip_adapter_scale argument, call kwargs without prompt, latents)."""
    call = dict(height=64, width=64, guidance_scale=3.5, **COMMON)
    return {
        "FluxPipeline + IP-Adapter, 2 steps, scale 0.7": (
            0.7,
            dict(call, ip_adapter_image=image(23, size=32)),
            latents(11),
        ),
        "FluxPipeline + IP-Adapter, per-block scales, true CFG (black negative image)": (
            [0.5, 1.2],
            dict(
                call,
                ip_adapter_image=image(24, size=32),
                negative_prompt="a blurry dark sketch",
                true_cfg_scale=1.5,
            ),
            latents(12),
        ),
    }


# BFL's Canny/Depth control LoRA layout for the tiny transformer (reference.TINY_TRANSFORMER:
# 2 double + 2 single blocks, width 32, head 16, MLP 128, guidance): lora_A / lora_B / lora_B
# bias per BFL module, ``img_in`` reading 128 channels (latents + control latents),
# and the full q/k RMSNorm scales that such files carry.
CONTROL_LORA_SIZES = dict(num_layers=2, num_single_layers=2, inner_dim=32, mlp_ratio=4.0)


def control_lora_tensors(rank: int = 4) -> dict:
    rng = np.random.default_rng(31)
    width, mlp, head = 32, 128, 16

    def normal(*shape, scale=0.1):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    tensors = {}

    def lora(name, n_in, n_out):
        # BFL's files carry a lora_B bias on every module (PEFT's lora_bias is all or nothing)
        tensors[f"{name}.lora_A.weight"] = normal(rank, n_in, scale=0.3)
        tensors[f"{name}.lora_B.weight"] = normal(n_out, rank)
        tensors[f"{name}.lora_B.bias"] = normal(n_out, scale=0.05)

    lora("img_in", 128, width)
    lora("txt_in", 32, width)
    lora("time_in.in_layer", 256, width)
    lora("time_in.out_layer", width, width)
    lora("vector_in.in_layer", 32, width)
    lora("vector_in.out_layer", width, width)
    lora("guidance_in.in_layer", 256, width)
    lora("guidance_in.out_layer", width, width)
    for i in range(2):
        p = f"double_blocks.{i}"
        for stream in ("img", "txt"):
            lora(f"{p}.{stream}_mod.lin", width, 6 * width)
            lora(f"{p}.{stream}_attn.qkv", width, 3 * width)
            lora(f"{p}.{stream}_attn.proj", width, width)
            lora(f"{p}.{stream}_mlp.0", width, mlp)
            lora(f"{p}.{stream}_mlp.2", mlp, width)
            for qk in ("query", "key"):
                tensors[f"{p}.{stream}_attn.norm.{qk}_norm.scale"] = 1 + normal(head, scale=0.2)
    for i in range(2):
        p = f"single_blocks.{i}"
        lora(f"{p}.modulation.lin", width, 3 * width)
        lora(f"{p}.linear1", width, 3 * width + mlp)
        lora(f"{p}.linear2", width + mlp, width)
        for qk in ("query", "key"):
            tensors[f"{p}.norm.{qk}_norm.scale"] = 1 + normal(head, scale=0.2)
    lora("final_layer.linear", width, 64)
    lora("final_layer.adaLN_modulation.1", width, 2 * width)
    # diffusers (0.42.1) swaps the halves of this layer's lora_A rows as well as lora_B's;
    # BFL's (shift, scale) -> diffusers' (scale, shift) reorders only the output rows (lora_B).
    # Equal halves make lora_A invariant under that swap, so both conversions agree here.
    a = tensors["final_layer.adaLN_modulation.1.lora_A.weight"]
    a[rank // 2 :] = a[: rank // 2]
    return tensors


def control_lora_cases() -> dict:
    """name -> (FluxControlPipeline call kwargs without prompt, latents)."""
    call = dict(control_image=image(10), height=64, width=64, guidance_scale=3.5, **COMMON)
    return {
        "FluxControlPipeline + BFL control LoRA (x_embedder 64 -> 128), 2 steps": (
            call,
            latents(14),
        ),
        "FluxControlPipeline + BFL control LoRA, joint_attention_kwargs scale 0.6": (
            dict(call, joint_attention_kwargs={"scale": 0.6}),
            latents(15),
        ),
    }


def control_lora_model_inputs() -> dict:
    """Transformer inputs with 128 channels (latents + control latents), guidance 3.5."""
    inputs = transformer_inputs(seed=16)
    rng = np.random.default_rng(16)
    inputs["hidden_states"] = rng.standard_normal((1, 16, 128)).astype(np.float32)
    inputs["guidance"] = np.array([3.5], np.float32)
    return inputs


def kontext_lora_tensors(rank: int = 4) -> dict:
    """A Kontext LoRA in fal's layout (BFL module names under ``base_model.model.``, no
    alphas) for the tiny transformer: the double and single blocks and the final linear."""
    rng = np.random.default_rng(37)
    width, mlp = 32, 128
    tensors = {}

    def lora(name, n_in, n_out):
        tensors[f"base_model.model.{name}.lora_A.weight"] = (
            rng.standard_normal((rank, n_in)) * 0.3
        ).astype(np.float32)
        tensors[f"base_model.model.{name}.lora_B.weight"] = (
            rng.standard_normal((n_out, rank)) * 0.1
        ).astype(np.float32)

    for i in range(2):
        p = f"double_blocks.{i}"
        for stream in ("img", "txt"):
            lora(f"{p}.{stream}_mod.lin", width, 6 * width)
            lora(f"{p}.{stream}_attn.qkv", width, 3 * width)
            lora(f"{p}.{stream}_attn.proj", width, width)
            lora(f"{p}.{stream}_mlp.0", width, mlp)
            lora(f"{p}.{stream}_mlp.2", mlp, width)
    for i in range(2):
        p = f"single_blocks.{i}"
        lora(f"{p}.modulation.lin", width, 3 * width)
        lora(f"{p}.linear1", width, 3 * width + mlp)
        lora(f"{p}.linear2", width + mlp, width)
    lora("final_layer.linear", width, 64)
    return tensors


# the Kontext cases that run again with the Kontext LoRA loaded
KONTEXT_LORA_CASES = [
    "FluxKontextPipeline 2 steps, reference image",
    "FluxKontextPipeline 2 steps, 48 px reference, true CFG",
]
