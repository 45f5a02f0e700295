"""Reference side of the newest-stack parity run: torch + the newest diffusers / transformers.

Builds the tiny random components with diffusers / transformers 5 (``tests/reference.py``
builders), saves them in the diffusers layout, runs every case of ``cases.py`` and writes
``reference.npz`` + ``index.json`` + ``versions.json`` into OUT. Runs in its own venv
(``constraints.txt`` next to this file); ``run.py`` drives both sides.

    python tests/newest/make_reference.py OUT
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent.parent / "src")]

import cases  # noqa: E402

PIPELINE_MODULES = (
    "pipeline_flux_img2img",
    "pipeline_flux_inpaint",
    "pipeline_flux_controlnet",
    "pipeline_flux_controlnet_image_to_image",
    "pipeline_flux_controlnet_inpainting",
    "pipeline_flux_fill",
    "pipeline_flux_control",
    "pipeline_flux_control_img2img",
    "pipeline_flux_control_inpaint",
    "pipeline_flux_kontext",
    "pipeline_flux_kontext_inpaint",
)


def _patch_randomness():
    """Each pipeline's own noise draw and VAE posterior sample -> cases.noise / the mode."""
    import importlib

    import diffusers.models.autoencoders.vae as vae
    import torch

    def randn(shape, generator=None, device=None, dtype=None, layout=None):
        return torch.tensor(cases.noise(shape)).to(dtype or torch.float32)

    def mode(encoder_output, generator=None, sample_mode="sample"):
        return encoder_output.latent_dist.mode()

    for name in PIPELINE_MODULES:
        module = importlib.import_module(f"diffusers.pipelines.flux.{name}")
        module.randn_tensor = randn
        module.retrieve_latents = mode
    # the Control pipelines call latent_dist.sample() directly
    vae.DiagonalGaussianDistribution.sample = lambda self, generator=None: self.mode()


def _tiny_bfl_control_converter(name="_convert_bfl_flux_control_lora_to_diffusers"):
    """One of diffusers' BFL-layout LoRA converters (control, fal Kontext) with the tiny
    model's block counts and width in place of FLUX.1-dev's hard-coded 19 / 38 / 3072."""
    import inspect

    import diffusers.loaders.lora_conversion_utils as conversion
    import diffusers.loaders.lora_pipeline as lora_pipeline

    source = inspect.getsource(getattr(conversion, name))
    for key, value in cases.CONTROL_LORA_SIZES.items():
        line = next(x for x in source.splitlines() if x.strip().startswith(f"{key} = "))
        source = source.replace(line, f"    {key} = {value!r}")
    namespace = dict(vars(conversion))
    exec(compile(source, conversion.__file__, "exec"), namespace)
    for module in (conversion, lora_pipeline):
        setattr(module, name, namespace[name])


def main(out: Path) -> None:
    import diffusers
    import reference
    import torch
    import transformers

    torch.set_num_threads(1)
    for lib in (diffusers, transformers):
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    pipe_dir = reference.build_pipeline_folder(out, True)
    reference.make_transformer(False, seed=7).save_pretrained(out / "schnell")
    reference.make_controlnet(True, seed=1).save_pretrained(out / "canny")
    reference.make_controlnet(True, seed=2, num_mode=3).save_pretrained(out / "union")
    results: dict[str, np.ndarray] = {}

    def as_torch(inputs):
        return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}

    with torch.no_grad():
        for name, (folder, inputs) in cases.model_cases().items():
            if "ControlNet" in name:
                model = diffusers.FluxControlNetModel.from_pretrained(out / folder).eval()
                blocks, singles = model(**as_torch(inputs), return_dict=False)
                for i, t in enumerate(list(blocks) + list(singles)):
                    results[f"{name}/{i}"] = t.numpy()
            else:
                model = diffusers.FluxTransformer2DModel.from_pretrained(out / folder).eval()
                results[name] = model(**as_torch(inputs), return_dict=False)[0].numpy()

    for name, (overrides, kwargs) in cases.SCHEDULER_CASES.items():
        sched = diffusers.FlowMatchEulerDiscreteScheduler(
            **{**reference.DEV_SCHEDULER, **overrides}
        )
        sched.set_timesteps(**kwargs)
        results[f"scheduler {name}/sigmas"] = sched.sigmas.numpy()
        results[f"scheduler {name}/timesteps"] = sched.timesteps.numpy()

    _patch_randomness()
    controlnets = {
        n: diffusers.FluxControlNetModel.from_pretrained(out / n).eval() for n in ("canny", "union")
    }
    for key, overrides in cases.VARIANT_TRANSFORMERS.items():
        reference.make_transformer(True, seed=11, **overrides).save_pretrained(out / key)
    variants = {
        key: diffusers.FluxTransformer2DModel.from_pretrained(out / key).eval()
        for key in cases.VARIANT_TRANSFORMERS
    }
    for name, case in cases.pipeline_cases().items():
        extra = {}
        cn = case["controlnet"]
        if isinstance(cn, list):
            extra["controlnet"] = diffusers.FluxMultiControlNetModel([controlnets[n] for n in cn])
        elif cn:
            extra["controlnet"] = controlnets[cn]
        if case["transformer"]:
            extra["transformer"] = variants[case["transformer"]]
        pipe = getattr(diffusers, case["cls"]).from_pretrained(pipe_dir, **extra)
        pipe.set_progress_bar_config(disable=True)
        kwargs = dict(case["kwargs"])
        if case["latents"] is not None:
            kwargs["latents"] = torch.tensor(case["latents"])
        with torch.no_grad():
            results[name] = pipe(prompt=cases.PROMPT, **kwargs).images

    from diffusers.hooks import FirstBlockCacheConfig, TaylorSeerCacheConfig

    configs = {
        "FirstBlockCacheConfig": FirstBlockCacheConfig,
        "TaylorSeerCacheConfig": TaylorSeerCacheConfig,
    }
    for name, (case, (config_name, config_kwargs)) in cases.cache_cases().items():
        config_kwargs = dict(config_kwargs)
        if "taylor_factors_dtype" in config_kwargs:
            config_kwargs["taylor_factors_dtype"] = getattr(
                torch, config_kwargs["taylor_factors_dtype"]
            )
        pipe = diffusers.FluxPipeline.from_pretrained(pipe_dir)
        pipe.set_progress_bar_config(disable=True)
        kwargs = dict(case["kwargs"], latents=torch.tensor(case["latents"]))
        with torch.no_grad():
            results[f"{name}/uncached"] = pipe(prompt=cases.PROMPT, **kwargs).images
            pipe.transformer.enable_cache(configs[config_name](**config_kwargs))
            results[name] = pipe(prompt=cases.PROMPT, **kwargs).images

    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    reference.seed_all(12)
    base = diffusers.FluxPipeline.from_pretrained(pipe_dir)
    redux = diffusers.FluxPriorReduxPipeline(
        image_encoder=SiglipVisionModel(SiglipVisionConfig(**cases.SIGLIP)).eval(),
        feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}),
        image_embedder=ReduxImageEncoder(redux_dim=32, txt_in_features=32).eval(),
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        text_encoder_2=base.text_encoder_2,
        tokenizer_2=base.tokenizer_2,
    )
    redux.save_pretrained(out / "redux")
    for name, (images, prompt, scale, pooled_scale, generate) in cases.redux_cases().items():
        with torch.no_grad():
            embeds, pooled = redux(
                images,
                prompt=prompt,
                prompt_embeds_scale=scale,
                pooled_prompt_embeds_scale=pooled_scale,
                return_dict=False,
            )
            results[f"{name}/prompt_embeds"] = embeds.numpy()
            results[f"{name}/pooled_prompt_embeds"] = pooled.numpy()
            if generate:
                base.set_progress_bar_config(disable=True)
                results[name] = base(
                    prompt_embeds=embeds,
                    pooled_prompt_embeds=pooled,
                    latents=torch.tensor(cases.latents(10)),
                    height=64,
                    width=64,
                    guidance_scale=3.5,
                    num_inference_steps=2,
                    output_type="np",
                ).images

    from safetensors.numpy import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    ip_dir = out / "ip_adapter"
    reference.seed_all(13)
    CLIPVisionModelWithProjection(CLIPVisionConfig(**cases.IP_CLIP)).eval().save_pretrained(
        ip_dir / "image_encoder"
    )
    save_file(cases.ip_adapter_tensors(), str(ip_dir / "ip_adapter.safetensors"))
    for name, (scale, kwargs, lat) in cases.ip_adapter_cases().items():
        pipe = diffusers.FluxPipeline.from_pretrained(pipe_dir)
        pipe.set_progress_bar_config(disable=True)
        pipe.load_ip_adapter(
            ip_dir,
            weight_name="ip_adapter.safetensors",
            image_encoder_pretrained_model_name_or_path=ip_dir / "image_encoder",
            image_encoder_dtype=torch.float32,
        )
        pipe.set_ip_adapter_scale(scale)
        with torch.no_grad():
            results[name] = pipe(prompt=cases.PROMPT, latents=torch.tensor(lat), **kwargs).images

    # BFL control LoRA: diffusers' own loading path (detection, conversion, x_embedder
    # expansion, norm replacement); its converter hard-codes FLUX.1-dev's 19 + 38 blocks and
    # width 3072, so it runs here with the tiny transformer's sizes put in their place
    _tiny_bfl_control_converter()
    save_file(cases.control_lora_tensors(), str(out / "control_lora.safetensors"))
    for i, (name, (kwargs, lat)) in enumerate(cases.control_lora_cases().items()):
        pipe = diffusers.FluxControlPipeline.from_pretrained(pipe_dir)
        pipe.set_progress_bar_config(disable=True)
        pipe.load_lora_weights(str(out / "control_lora.safetensors"))
        assert pipe.transformer.config.in_channels == 128
        with torch.no_grad():
            results[name] = pipe(prompt=cases.PROMPT, latents=torch.tensor(lat), **kwargs).images
            if i == 0:
                model_name = "transformer + BFL control LoRA output"
                inputs = as_torch(cases.control_lora_model_inputs())
                results[model_name] = pipe.transformer(**inputs, return_dict=False)[0].numpy()
                pipe.unload_lora_weights()
                # the norms are the model's own again, x_embedder stays 128 wide
                results[f"{model_name}, unloaded"] = pipe.transformer(**inputs, return_dict=False)[
                    0
                ].numpy()

    # Kontext LoRA in fal's layout, through diffusers' own converter (same block-count patch)
    _tiny_bfl_control_converter("_convert_fal_kontext_lora_to_diffusers")
    save_file(cases.kontext_lora_tensors(), str(out / "kontext_lora.safetensors"))
    for name in cases.KONTEXT_LORA_CASES:
        case = cases.pipeline_cases()[name]
        pipe = diffusers.FluxKontextPipeline.from_pretrained(pipe_dir)
        pipe.set_progress_bar_config(disable=True)
        pipe.load_lora_weights(str(out / "kontext_lora.safetensors"))
        with torch.no_grad():
            results[f"{name} + Kontext LoRA"] = pipe(
                prompt=cases.PROMPT, latents=torch.tensor(case["latents"]), **case["kwargs"]
            ).images

    index = {name: f"a{i}" for i, name in enumerate(results)}
    np.savez(out / "reference.npz", **{index[n]: v for n, v in results.items()})
    (out / "index.json").write_text(json.dumps(index, indent=1))
    (out / "versions.json").write_text(
        json.dumps(
            {
                "diffusers": diffusers.__version__,
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
            }
        )
    )
    print(
        f"reference: {len(results)} arrays from diffusers {diffusers.__version__}, "
        f"transformers {transformers.__version__}, torch {torch.__version__} "
        f"in {time.perf_counter() - started:.1f} s -> {out}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
