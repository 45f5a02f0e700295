"""Two-step pipelines vs diffusers on the same tiny random components: images within 1e-4.

The randomness a pipeline draws itself (initial noise in img2img/inpaint, the VAE posterior
sample) is made identical on both sides by patching each library's own ``randn_tensor`` /
``retrieve_latents`` with the same deterministic numpy source; text-to-image gets ``latents``.
"""

from __future__ import annotations

import numpy as np
import paddle
import ppflux.pipelines.pipeline_flux as pp_base
import pytest
import torch
from PIL import Image
from ppflux import (
    FluxControlNetModel,
    FluxControlNetPipeline,
    FluxImg2ImgPipeline,
    FluxInpaintPipeline,
    FluxMultiControlNetModel,
    FluxPipeline,
)

TOL = 1e-4
PROMPT = "a photo of a red cat on the moon"
COMMON = dict(num_inference_steps=2, output_type="np", max_sequence_length=48)


def _noise(shape):
    rng = np.random.default_rng(abs(hash(tuple(int(s) for s in shape))) % 2**32)
    return rng.standard_normal(tuple(int(s) for s in shape)).astype(np.float32)


@pytest.fixture
def deterministic(monkeypatch):
    import diffusers.pipelines.flux.pipeline_flux_controlnet as d_cn
    import diffusers.pipelines.flux.pipeline_flux_img2img as d_i2i
    import diffusers.pipelines.flux.pipeline_flux_inpaint as d_inp

    def t_randn(shape, generator=None, device=None, dtype=None, layout=None):
        return torch.tensor(_noise(shape)).to(dtype or torch.float32)

    def t_latents(encoder_output, generator=None, sample_mode="sample"):
        return encoder_output.latent_dist.mode()

    for mod in (d_i2i, d_inp, d_cn):
        monkeypatch.setattr(mod, "randn_tensor", t_randn, raising=False)
        monkeypatch.setattr(mod, "retrieve_latents", t_latents)
    monkeypatch.setattr(pp_base, "randn_tensor",
                        lambda shape, generator=None, dtype="float32":
                        paddle.to_tensor(_noise(shape)).astype(dtype))
    monkeypatch.setattr(pp_base, "retrieve_latents",
                        lambda enc, generator=None, sample_mode="sample": enc.latent_dist.mode())


def _image(seed, size=64, mode="RGB"):
    rng = np.random.default_rng(seed)
    if mode == "L":
        arr = np.zeros((size, size), np.uint8)
        arr[size // 4: 3 * size // 4, size // 8: size // 2] = 255
        return Image.fromarray(arr, "L")
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def _latents(seed=0, tokens=16):
    return np.random.default_rng(seed).standard_normal((1, tokens, 64)).astype(np.float32)


def _compare(ref_images, mine_images, record=None, name=None):
    assert ref_images.shape == mine_images.shape
    assert ref_images.std() > 0.01  # a real image, not a constant
    diff = np.abs(ref_images - mine_images).max()
    if record:
        record(name, diff, TOL)
    assert diff < TOL, diff
    return diff


def test_text_to_image(dev_pipe_dir, parity):
    from diffusers import FluxPipeline as Ref

    ref = Ref.from_pretrained(dev_pipe_dir)
    mine = FluxPipeline.from_pretrained(dev_pipe_dir)
    lat = _latents()
    with torch.no_grad():
        a = ref(PROMPT, height=64, width=64, guidance_scale=3.5, latents=torch.tensor(lat),
                **COMMON).images
    b = mine(PROMPT, height=64, width=64, guidance_scale=3.5, latents=lat, **COMMON).images
    _compare(a, b, parity, "FluxPipeline 2 steps, image")


def test_text_to_image_prompt_2_sigmas_and_batch(dev_pipe_dir, parity):
    from diffusers import FluxPipeline as Ref

    ref = Ref.from_pretrained(dev_pipe_dir)
    mine = FluxPipeline.from_pretrained(dev_pipe_dir, low_memory=True)
    lat = np.random.default_rng(1).standard_normal((2, 16, 64)).astype(np.float32)
    kwargs = dict(prompt_2="oil painting of a tree", height=64, width=64, guidance_scale=2.0,
                  num_images_per_prompt=2, sigmas=[1.0, 0.4], num_inference_steps=2,
                  output_type="np", max_sequence_length=32)
    with torch.no_grad():
        a = ref(PROMPT, latents=torch.tensor(lat), **kwargs).images
    b = mine(PROMPT, latents=lat, **kwargs).images
    _compare(a, b, parity, "FluxPipeline prompt_2+sigmas+2 images, image")


def test_prompt_embeds_and_callback(dev_pipe_dir):
    mine = FluxPipeline.from_pretrained(dev_pipe_dir)
    pe, pooled, _ = mine.encode_prompt(PROMPT, max_sequence_length=48)
    seen = []

    def callback(pipe, i, t, kwargs):
        seen.append((i, float(t)))
        return {"latents": kwargs["latents"]}

    lat = _latents()
    a = mine(prompt_embeds=pe, pooled_prompt_embeds=pooled, height=64, width=64, latents=lat,
             callback_on_step_end=callback, **COMMON).images
    b = mine(PROMPT, height=64, width=64, latents=lat, **COMMON).images
    np.testing.assert_array_equal(a, b)
    assert [i for i, _ in seen] == [0, 1]
    # diffusers' output_type="pt" gives a tensor: here a Paddle tensor, the same values
    pt = mine(PROMPT, height=64, width=64, latents=lat, **{**COMMON, "output_type": "pt"}).images
    assert isinstance(pt, paddle.Tensor)
    np.testing.assert_allclose(pt.numpy().transpose(0, 2, 3, 1), b, atol=1e-6)


def test_img2img(dev_pipe_dir, deterministic, parity):
    from diffusers import FluxImg2ImgPipeline as Ref

    ref = Ref.from_pretrained(dev_pipe_dir)
    mine = FluxImg2ImgPipeline.from_pretrained(dev_pipe_dir)
    kwargs = dict(image=_image(0), height=64, width=64, strength=0.8, guidance_scale=3.0,
                  num_inference_steps=3, output_type="np", max_sequence_length=48)
    with torch.no_grad():
        a = ref(PROMPT, **kwargs).images
    b = mine(PROMPT, **kwargs).images
    _compare(a, b, parity, "FluxImg2ImgPipeline 3 steps strength 0.8, image")


def test_inpaint(dev_pipe_dir, deterministic, parity):
    from diffusers import FluxInpaintPipeline as Ref

    ref = Ref.from_pretrained(dev_pipe_dir)
    mine = FluxInpaintPipeline.from_pretrained(dev_pipe_dir)
    kwargs = dict(image=_image(1), mask_image=_image(2, mode="L"), height=64, width=64,
                  strength=0.9, guidance_scale=3.0, num_inference_steps=3, output_type="np",
                  max_sequence_length=48)
    with torch.no_grad():
        a = ref(PROMPT, **kwargs).images
    b = mine(PROMPT, **kwargs).images
    _compare(a, b, parity, "FluxInpaintPipeline 3 steps strength 0.9, image")


@pytest.fixture(scope="module")
def controlnet_dirs(tmp_path_factory):
    import reference

    root = tmp_path_factory.mktemp("controlnets")
    reference.make_controlnet(True, seed=1).save_pretrained(root / "canny")
    reference.make_controlnet(True, seed=2, num_mode=3).save_pretrained(root / "union")
    return root


def test_controlnet_parity_model(controlnet_dirs, parity):
    from conftest import to_paddle, to_torch, transformer_inputs
    from diffusers import FluxControlNetModel as Ref

    for name, mode in (("canny", None), ("union", 2)):
        ref = Ref.from_pretrained(controlnet_dirs / name).eval()
        mine = FluxControlNetModel.from_pretrained(controlnet_dirs / name)
        inputs = transformer_inputs(seed=4)
        inputs["guidance"] = np.array([3.5], np.float32)
        inputs["controlnet_cond"] = _noise((1, 16, 64))
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


def test_controlnet_pipeline(dev_pipe_dir, controlnet_dirs, deterministic, parity):
    from diffusers import FluxControlNetModel as RefCN
    from diffusers import FluxControlNetPipeline as Ref

    ref = Ref.from_pretrained(dev_pipe_dir, controlnet=RefCN.from_pretrained(
        controlnet_dirs / "canny"))
    mine = FluxControlNetPipeline.from_pretrained(
        dev_pipe_dir, controlnet=FluxControlNetModel.from_pretrained(controlnet_dirs / "canny"))
    kwargs = dict(control_image=_image(3), height=64, width=64, guidance_scale=3.5,
                  controlnet_conditioning_scale=0.8, control_guidance_end=0.6, **COMMON)
    lat = _latents(2)
    with torch.no_grad():
        a = ref(PROMPT, latents=torch.tensor(lat), **kwargs).images
    b = mine(PROMPT, latents=lat, **kwargs).images
    _compare(a, b, parity, "FluxControlNetPipeline 2 steps, image")


def test_multi_union_controlnet_pipeline(dev_pipe_dir, controlnet_dirs, deterministic, parity):
    from diffusers import FluxControlNetModel as RefCN
    from diffusers import FluxControlNetPipeline as Ref
    from diffusers import FluxMultiControlNetModel as RefMulti

    ref = Ref.from_pretrained(dev_pipe_dir, controlnet=RefMulti(
        [RefCN.from_pretrained(controlnet_dirs / "union")]))
    mine = FluxControlNetPipeline.from_pretrained(dev_pipe_dir, controlnet=FluxMultiControlNetModel(
        [FluxControlNetModel.from_pretrained(controlnet_dirs / "union")]))
    kwargs = dict(control_image=[_image(4), _image(5)], control_mode=[0, 2],
                  controlnet_conditioning_scale=[0.5, 0.9], height=64, width=64,
                  guidance_scale=3.5, **COMMON)
    lat = _latents(3)
    with torch.no_grad():
        a = ref(PROMPT, latents=torch.tensor(lat), **kwargs).images
    b = mine(PROMPT, latents=lat, **kwargs).images
    _compare(a, b, parity, "FluxControlNetPipeline multi/union 2 images, image")
