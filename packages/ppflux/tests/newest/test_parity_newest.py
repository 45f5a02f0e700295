"""ppflux vs the newest diffusers / transformers (made in their own venv by
``make_reference.py`` from the same ``cases.py``): models within 1e-5, scheduler equal,
two-step pipeline images within 1e-4."""

from __future__ import annotations

import cases
import numpy as np
import paddle
import pytest

import ppflux
import ppflux.pipelines.pipeline_flux as pp_base


def _close(name, got, want, tol, record):
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.abs(want).max() > 1e-3  # a real output, not zeros
    diff = float(np.abs(got - want).max())
    record(name, diff, tol)
    assert diff < tol, f"{name}: max abs diff {diff:.3g} >= {tol}"


@pytest.mark.parametrize("name", list(cases.model_cases()))
def test_model(name, ref_dir, expected, record):
    folder, inputs = cases.model_cases()[name]
    tensors = {
        k: paddle.to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in inputs.items()
    }
    with paddle.no_grad():
        if "ControlNet" in name:
            model = ppflux.FluxControlNetModel.from_pretrained(ref_dir / folder)
            blocks, singles = model(**tensors, return_dict=False)
            outs = [t.numpy() for t in list(blocks) + list(singles)]
            want = [expected[f"{name}/{i}"] for i in range(len(outs))]
            assert f"{name}/{len(outs)}" not in expected  # as many samples as diffusers
            got, want = (
                np.concatenate([o.ravel() for o in outs]),
                np.concatenate([w.ravel() for w in want]),
            )
        else:
            model = ppflux.FluxTransformer2DModel.from_pretrained(ref_dir / folder)
            got, want = model(**tensors, return_dict=False)[0].numpy(), expected[name]
    _close(f"{name} output", got, want, cases.TOL_MODEL, record)


@pytest.mark.parametrize("name", list(cases.SCHEDULER_CASES))
def test_scheduler_equal(name, expected, record):
    import reference

    overrides, kwargs = cases.SCHEDULER_CASES[name]
    sched = ppflux.FlowMatchEulerDiscreteScheduler(**{**reference.DEV_SCHEDULER, **overrides})
    sched.set_timesteps(**kwargs)
    for part in ("sigmas", "timesteps"):
        want = expected[f"scheduler {name}/{part}"]
        got = getattr(sched, part).numpy()
        record(
            f"scheduler {name} {part}",
            np.abs(got - want).max() if got.shape == want.shape else np.inf,
            0.0,
        )
        np.testing.assert_array_equal(got, want)


@pytest.fixture
def deterministic(monkeypatch):
    monkeypatch.setattr(
        pp_base,
        "randn_tensor",
        lambda shape, generator=None, dtype="float32": paddle.to_tensor(cases.noise(shape)).astype(
            dtype
        ),
    )
    monkeypatch.setattr(
        pp_base,
        "retrieve_latents",
        lambda enc, generator=None, sample_mode="sample": enc.latent_dist.mode(),
    )


@pytest.fixture(scope="session")
def variant_transformers(ref_dir):
    return {
        key: ppflux.FluxTransformer2DModel.from_pretrained(ref_dir / key)
        for key in cases.VARIANT_TRANSFORMERS
    }


@pytest.mark.parametrize("name", list(cases.pipeline_cases()))
def test_pipeline(name, ref_dir, expected, record, deterministic, variant_transformers):
    case = cases.pipeline_cases()[name]
    extra = {}
    cn = case["controlnet"]
    if isinstance(cn, list):
        extra["controlnet"] = ppflux.FluxMultiControlNetModel(
            [ppflux.FluxControlNetModel.from_pretrained(ref_dir / n) for n in cn]
        )
    elif cn:
        extra["controlnet"] = ppflux.FluxControlNetModel.from_pretrained(ref_dir / cn)
    if case["transformer"]:
        extra["transformer"] = variant_transformers[case["transformer"]]
    pipe = getattr(ppflux, case["cls"]).from_pretrained(ref_dir / "pipe", **extra)
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(case["kwargs"])
    if case["latents"] is not None:
        kwargs["latents"] = case["latents"]
    got = pipe(prompt=cases.PROMPT, **kwargs).images
    assert expected[name].std() > 0.01  # a real image, not a constant
    _close(f"{name}, image", got, expected[name], cases.TOL_IMAGE, record)


@pytest.mark.parametrize("name", list(cases.cache_cases()))
def test_cache(name, ref_dir, expected, record):
    """ppflux's cached image vs diffusers' cached image (same tolerance as the pipelines), and
    the drift of each from its own uncached image, side by side."""
    case, (config_name, config_kwargs) = cases.cache_cases()[name]
    pipe = ppflux.FluxPipeline.from_pretrained(ref_dir / "pipe")
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(case["kwargs"], latents=case["latents"])
    uncached = pipe(prompt=cases.PROMPT, **kwargs).images
    pipe.transformer.enable_cache(getattr(ppflux, config_name)(**config_kwargs))
    got = pipe(prompt=cases.PROMPT, **kwargs).images
    fbc = pipe.transformer._first_block_cache
    if fbc is not None:
        assert fbc.skipped > 0, "the cache never skipped a step: the case tests nothing"
    ref_drift = float(np.abs(expected[name] - expected[f"{name}/uncached"]).max())
    drift = float(np.abs(got - uncached).max())
    record(f"{name}: drift from uncached, diffusers", ref_drift, None)
    record(f"{name}: drift from uncached, ppflux", drift, None)
    assert ref_drift > 1e-3 and drift > 1e-3  # the cache changed the result on both sides
    _close(f"{name}, image", got, expected[name], cases.TOL_IMAGE, record)


@pytest.mark.parametrize("name", list(cases.redux_cases()))
def test_redux(name, ref_dir, expected, record):
    """FluxPriorReduxPipeline (SigLIP tower + Redux embedder in Paddle) vs diffusers' on the
    folder diffusers saved; embeddings within the model tolerance, images within 1e-4."""
    images, prompt, scale, pooled_scale, generate = cases.redux_cases()[name]
    redux = ppflux.FluxPriorReduxPipeline.from_pretrained(ref_dir / "redux")
    embeds, pooled = redux(
        images,
        prompt=prompt,
        prompt_embeds_scale=scale,
        pooled_prompt_embeds_scale=pooled_scale,
        return_dict=False,
    )
    got, want = embeds.numpy(), expected[f"{name}/prompt_embeds"]
    assert got.shape == want.shape, (got.shape, want.shape)
    # the Redux tokens (SigLIP tower + embedder, new here) at the model tolerance
    _close(f"{name}: Redux image tokens", got[:, 512:], want[:, 512:], cases.TOL_MODEL, record)
    # the 512 T5 tokens come from ppdiffusers' T5 port, which at 512 tokens differs from
    # transformers' by ~1.5e-5 relative to the largest value: checked relative to it
    t5_rel = float(np.abs(got[:, :512] - want[:, :512]).max() / np.abs(want[:, :512]).max())
    record(f"{name}: T5 prompt tokens (relative to max abs)", t5_rel, 1e-4)
    assert t5_rel < 1e-4, t5_rel
    _close(
        f"{name}: pooled_prompt_embeds",
        pooled.numpy(),
        expected[f"{name}/pooled_prompt_embeds"],
        cases.TOL_MODEL,
        record,
    )
    if generate:
        pipe = ppflux.FluxPipeline.from_pretrained(ref_dir / "pipe")
        pipe.set_progress_bar_config(disable=True)
        got = pipe(
            prompt_embeds=embeds,
            pooled_prompt_embeds=pooled,
            latents=cases.latents(10),
            height=64,
            width=64,
            guidance_scale=3.5,
            num_inference_steps=2,
            output_type="np",
        ).images
        _close(f"{name}, image", got, expected[name], cases.TOL_IMAGE, record)


@pytest.mark.parametrize("name", list(cases.ip_adapter_cases()))
def test_ip_adapter(name, ref_dir, expected, record):
    """load_ip_adapter (XLabs-layout file + CLIP vision tower saved by transformers 5) and
    generation with an image prompt, vs diffusers' FluxPipeline with the same adapter."""
    scale, kwargs, lat = cases.ip_adapter_cases()[name]
    pipe = ppflux.FluxPipeline.from_pretrained(ref_dir / "pipe")
    pipe.set_progress_bar_config(disable=True)
    ip_dir = ref_dir / "ip_adapter"
    pipe.load_ip_adapter(
        ip_dir,
        weight_name="ip_adapter.safetensors",
        image_encoder_pretrained_model_name_or_path=ip_dir / "image_encoder",
    )
    pipe.set_ip_adapter_scale(scale)
    got = pipe(prompt=cases.PROMPT, latents=lat, **kwargs).images
    without = pipe(
        prompt=cases.PROMPT,
        latents=lat,
        **{**kwargs, "ip_adapter_image": None, "negative_prompt": None},
    ).images
    assert np.abs(got - without).max() > 1e-3  # the image prompt changed the result
    _close(f"{name}, image", got, expected[name], cases.TOL_IMAGE, record)


@pytest.fixture(scope="module")
def control_lora_file(ref_dir):
    return ref_dir / "control_lora.safetensors"


@pytest.mark.parametrize("name", list(cases.control_lora_cases()))
def test_control_lora(name, ref_dir, expected, record, deterministic, control_lora_file):
    """A BFL Canny/Depth control LoRA (BFL key layout, lora_B biases, q/k norm scales,
    ``img_in`` reading 128 channels) loaded into FluxControlPipeline over the 64-channel dev
    transformer, vs diffusers' ``load_lora_weights`` on the same file."""
    kwargs, lat = cases.control_lora_cases()[name]
    pipe = ppflux.FluxControlPipeline.from_pretrained(ref_dir / "pipe")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.transformer.config.in_channels == 64
    pipe.load_lora_weights(control_lora_file)
    assert pipe.transformer.config.in_channels == 128
    got = pipe(prompt=cases.PROMPT, latents=lat, **kwargs).images
    _close(f"{name}, image", got, expected[name], cases.TOL_IMAGE, record)
    if "scale" in name:
        return
    model_name = "transformer + BFL control LoRA output"
    tensors = {
        k: paddle.to_tensor(v) if isinstance(v, np.ndarray) else v
        for k, v in cases.control_lora_model_inputs().items()
    }
    with paddle.no_grad():
        out = pipe.transformer(**tensors, return_dict=False)[0].numpy()
        _close(model_name, out, expected[model_name], cases.TOL_MODEL, record)
        pipe.unload_lora_weights()
        out = pipe.transformer(**tensors, return_dict=False)[0].numpy()
    _close(
        f"{model_name}, unloaded", out, expected[f"{model_name}, unloaded"], cases.TOL_MODEL, record
    )


@pytest.mark.parametrize("name", cases.KONTEXT_LORA_CASES)
def test_kontext_lora(name, ref_dir, expected, record, deterministic):
    """A Kontext LoRA in fal's layout (BFL names under ``base_model.model.``) loaded into
    FluxKontextPipeline, vs diffusers' ``load_lora_weights`` on the same file; the LoRA must
    change the image (the case without it is ``test_pipeline``'s)."""
    case = cases.pipeline_cases()[name]
    pipe = ppflux.FluxKontextPipeline.from_pretrained(ref_dir / "pipe")
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(ref_dir / "kontext_lora.safetensors")
    got = pipe(prompt=cases.PROMPT, latents=case["latents"], **case["kwargs"]).images
    assert np.abs(expected[f"{name} + Kontext LoRA"] - expected[name]).max() > 1e-2
    _close(
        f"{name} + Kontext LoRA, image",
        got,
        expected[f"{name} + Kontext LoRA"],
        cases.TOL_IMAGE,
        record,
    )
