"""Pipelines vs diffusers on the same tiny random components, in one process: images within
1e-4. The cases are the table of ``tests/newest/cases.py`` (shared with the newest-stack run),
run here for every pipeline class the installed diffusers has, plus in-process-only rows.

The randomness a pipeline draws itself (initial noise, the VAE posterior sample) is made
identical on both sides by patching each library's own ``randn_tensor`` / ``retrieve_latents``
(and diffusers' ``DiagonalGaussianDistribution.sample``) with the same deterministic numpy
source; text-to-image cases pass ``latents``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
import torch

import ppflux
import ppflux.pipelines.pipeline_flux as pp_base

sys.path.insert(0, str(Path(__file__).parent / "newest"))
import cases  # noqa: E402  (tests/newest/cases.py: numpy only)

TOL = cases.TOL_IMAGE
PROMPT = cases.PROMPT
COMMON = cases.COMMON

IN_PROCESS_ONLY = {
    "FluxPipeline prompt_2 + sigmas + 2 images per prompt (low_memory)": dict(
        cases._case(
            "FluxPipeline",
            dict(
                prompt_2="oil painting of a tree",
                height=64,
                width=64,
                guidance_scale=2.0,
                num_images_per_prompt=2,
                sigmas=[1.0, 0.4],
                num_inference_steps=2,
                output_type="np",
                max_sequence_length=32,
            ),
            cases.latents(1, batch=2),
        ),
        low_memory=True,
    ),
}


def all_cases() -> dict:
    return {**cases.pipeline_cases(), **IN_PROCESS_ONLY}


class PipelineParity:
    """Build the same pipeline in diffusers and in ppflux from one case row, run both with the
    same inputs and compare the images."""

    def __init__(self, pipe_dir: Path, model_dirs: Path):
        self.pipe_dir, self.model_dirs = pipe_dir, model_dirs

    def reference(self, case):
        import diffusers

        extra = {}
        if case["controlnet"]:
            nets = [
                diffusers.FluxControlNetModel.from_pretrained(self.model_dirs / n)
                for n in np.atleast_1d(case["controlnet"])
            ]
            extra["controlnet"] = (
                diffusers.FluxMultiControlNetModel(nets)
                if isinstance(case["controlnet"], list)
                else nets[0]
            )
        if case["transformer"]:
            extra["transformer"] = diffusers.FluxTransformer2DModel.from_pretrained(
                self.model_dirs / case["transformer"]
            )
        pipe = getattr(diffusers, case["cls"]).from_pretrained(self.pipe_dir, **extra)
        pipe.set_progress_bar_config(disable=True)
        kwargs = self._kwargs(case, torch.tensor)
        with torch.no_grad():
            return pipe(prompt=PROMPT, **kwargs).images

    def ppflux(self, case):
        extra = {}
        if case["controlnet"]:
            nets = [
                ppflux.FluxControlNetModel.from_pretrained(self.model_dirs / n)
                for n in np.atleast_1d(case["controlnet"])
            ]
            extra["controlnet"] = (
                ppflux.FluxMultiControlNetModel(nets)
                if isinstance(case["controlnet"], list)
                else nets[0]
            )
        if case["transformer"]:
            extra["transformer"] = ppflux.FluxTransformer2DModel.from_pretrained(
                self.model_dirs / case["transformer"]
            )
        pipe = getattr(ppflux, case["cls"]).from_pretrained(
            self.pipe_dir, low_memory=case.get("low_memory", False), **extra
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe(prompt=PROMPT, **self._kwargs(case, lambda a: a)).images

    @staticmethod
    def _kwargs(case, to_tensor):
        kwargs = dict(case["kwargs"])
        if case["latents"] is not None:
            kwargs["latents"] = to_tensor(case["latents"])
        return kwargs

    @staticmethod
    def compare(ref_images, mine_images):
        assert ref_images.shape == mine_images.shape
        assert ref_images.std() > 0.01  # a real image, not a constant
        return float(np.abs(ref_images - mine_images).max())


@pytest.fixture
def deterministic(monkeypatch):
    import diffusers.models.autoencoders.vae as vae

    def t_randn(shape, generator=None, device=None, dtype=None, layout=None):
        return torch.tensor(cases.noise(shape)).to(dtype or torch.float32)

    def t_latents(encoder_output, generator=None, sample_mode="sample"):
        return encoder_output.latent_dist.mode()

    for name in (
        "pipeline_flux_img2img",
        "pipeline_flux_inpaint",
        "pipeline_flux_controlnet",
        "pipeline_flux_controlnet_image_to_image",
        "pipeline_flux_controlnet_inpainting",
        "pipeline_flux_fill",
        "pipeline_flux_control",
        "pipeline_flux_control_img2img",
        "pipeline_flux_control_inpaint",
    ):
        try:
            module = importlib.import_module(f"diffusers.pipelines.flux.{name}")
        except ImportError:
            continue
        monkeypatch.setattr(module, "randn_tensor", t_randn, raising=False)
        monkeypatch.setattr(module, "retrieve_latents", t_latents, raising=False)
    monkeypatch.setattr(
        vae.DiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mode()
    )
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


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    import reference

    root = tmp_path_factory.mktemp("models")
    reference.make_controlnet(True, seed=1).save_pretrained(root / "canny")
    reference.make_controlnet(True, seed=2, num_mode=3).save_pretrained(root / "union")
    for key, overrides in cases.VARIANT_TRANSFORMERS.items():
        reference.make_transformer(True, seed=11, **overrides).save_pretrained(root / key)
    return root


@pytest.mark.parametrize("name", list(all_cases()))
def test_pipeline_parity(name, dev_pipe_dir, model_dirs, deterministic, parity):
    import diffusers

    case = all_cases()[name]
    if not hasattr(diffusers, case["cls"]):
        pytest.skip(
            f"diffusers {diffusers.__version__} has no {case['cls']}; compared with "
            "diffusers 0.42.1 in test-ppflux-newest"
        )
    import inspect

    accepted = inspect.signature(getattr(diffusers, case["cls"]).__call__).parameters
    missing = sorted(set(case["kwargs"]) - set(accepted))
    if missing:
        pytest.skip(
            f"diffusers {diffusers.__version__}'s {case['cls']} has no {missing}; "
            "compared with diffusers 0.42.1 in test-ppflux-newest"
        )
    tester = PipelineParity(dev_pipe_dir, model_dirs)
    diff = tester.compare(tester.reference(case), tester.ppflux(case))
    parity(f"{name}, image", diff, TOL)
    assert diff < TOL, diff


def test_prompt_embeds_and_callback(dev_pipe_dir):
    mine = ppflux.FluxPipeline.from_pretrained(dev_pipe_dir)
    pe, pooled, _ = mine.encode_prompt(PROMPT, max_sequence_length=48)
    seen = []

    def callback(pipe, i, t, kwargs):
        seen.append((i, float(t)))
        return {"latents": kwargs["latents"]}

    lat = cases.latents(0)
    a = mine(
        prompt_embeds=pe,
        pooled_prompt_embeds=pooled,
        height=64,
        width=64,
        latents=lat,
        callback_on_step_end=callback,
        **COMMON,
    ).images
    b = mine(PROMPT, height=64, width=64, latents=lat, **COMMON).images
    np.testing.assert_array_equal(a, b)
    assert [i for i, _ in seen] == [0, 1]
    # diffusers' output_type="pt" gives a tensor: here a Paddle tensor, the same values
    pt = mine(PROMPT, height=64, width=64, latents=lat, **{**COMMON, "output_type": "pt"}).images
    assert isinstance(pt, paddle.Tensor)
    np.testing.assert_allclose(pt.numpy().transpose(0, 2, 3, 1), b, atol=1e-6)


def test_controlnet_parity_model(model_dirs, parity):
    from conftest import to_paddle, to_torch, transformer_inputs
    from diffusers import FluxControlNetModel as Ref

    for name, mode in (("canny", None), ("union", 2)):
        ref = Ref.from_pretrained(model_dirs / name).eval()
        mine = ppflux.FluxControlNetModel.from_pretrained(model_dirs / name)
        inputs = transformer_inputs(seed=4)
        inputs["guidance"] = np.array([3.5], np.float32)
        inputs["controlnet_cond"] = cases.noise((1, 16, 64))
        inputs["conditioning_scale"] = 0.7
        if mode is not None:
            inputs["controlnet_mode"] = np.array([[mode]], np.int64)
        with torch.no_grad():
            rb, rs = ref(**to_torch(inputs), return_dict=False)
        with paddle.no_grad():
            mb, ms = mine(**to_paddle(inputs), return_dict=False)
        worst = 0.0
        for r, m in zip(list(rb) + list(rs), list(mb) + list(ms)):
            assert np.abs(r.numpy()).max() > 1e-3
            worst = max(worst, float(np.abs(r.numpy() - m.numpy()).max()))
        parity(f"FluxControlNetModel ({name}) block samples", worst, 1e-5)
        assert worst < 1e-5
