"""Original single-file (BFL / XLabs) -> diffusers conversion, and diffusers -> Paddle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from bfl_layout import to_bfl
from safetensors.torch import save_file

from ppflux.cli import main
from ppflux.convert import ConversionError, convert_original, transformer_specs
from ppflux.safetensors_io import SafeOpen


def _assert_same_state(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(
    "guidance,overrides",
    [
        (True, {}),
        (False, dict(num_layers=3, num_single_layers=1, num_attention_heads=3)),
        # FLUX.1 Fill and Canny/Depth: wider x_embedder, 64 output channels (Kontext = dev)
        (True, dict(in_channels=384, out_channels=64)),
        (True, dict(in_channels=128, out_channels=64)),
    ],
)
def test_bfl_transformer_round_trip_exact(tmp_path, guidance, overrides):
    import reference
    from diffusers import FluxTransformer2DModel as Ref

    model = reference.randomize_(reference.make_transformer(guidance, **overrides), 0.1)
    save_file(to_bfl(model.state_dict()), tmp_path / "flux1.safetensors")
    config = convert_original(
        tmp_path / "flux1.safetensors", tmp_path / "out", axes_dims_rope=[4, 6, 6], progress=False
    )
    assert config["num_layers"] == model.config.num_layers
    assert config["num_attention_heads"] == model.config.num_attention_heads
    assert config["guidance_embeds"] is guidance
    back = Ref.from_pretrained(tmp_path / "out")
    _assert_same_state(model.state_dict(), back.state_dict())


def test_bf16_stays_bf16_and_recast(tmp_path):
    import reference

    model = reference.make_transformer(True).to(torch.bfloat16)
    save_file(to_bfl(model.state_dict()), tmp_path / "flux1.safetensors")
    convert_original(
        tmp_path / "flux1.safetensors", tmp_path / "bf16", axes_dims_rope=[4, 6, 6], progress=False
    )
    with SafeOpen(tmp_path / "bf16" / "diffusion_pytorch_model.safetensors") as r:
        assert {r.dtype(k) for k in r.keys()} == {"BF16"}
    convert_original(
        tmp_path / "flux1.safetensors",
        tmp_path / "f32",
        axes_dims_rope=[4, 6, 6],
        dtype="float32",
        progress=False,
    )
    from diffusers import FluxTransformer2DModel as Ref

    back = Ref.from_pretrained(tmp_path / "f32")
    for key, value in model.state_dict().items():
        assert torch.equal(value.float(), back.state_dict()[key]), key


def test_xlabs_controlnet_round_trip_exact(tmp_path):
    import reference
    from diffusers import FluxControlNetModel as Ref

    model = reference.make_controlnet(True, num_single_layers=0, conditioning_embedding_channels=16)
    reference.randomize_(model, 0.1)
    save_file(to_bfl(model.state_dict(), controlnet=True), tmp_path / "canny.safetensors")
    config = convert_original(
        tmp_path / "canny.safetensors", tmp_path / "out", axes_dims_rope=[4, 6, 6], progress=False
    )
    assert config["conditioning_embedding_channels"] == 16
    back = Ref.from_pretrained(tmp_path / "out")
    _assert_same_state(model.state_dict(), back.state_dict())


@pytest.mark.parametrize("in_channels, out_channels", [(64, None), (384, 64), (128, 64)])
def test_full_size_keys_and_shapes_match_diffusers_converter(tmp_path, in_channels, out_channels):
    """FLUX.1-dev / Fill / Canny-Depth-shaped headers (hidden 3072, 19+38 blocks) as sparse
    files: ppflux's output names/shapes equal diffusers' own converter run on meta tensors."""
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers
    from synthetic import flux_bfl_shapes, write_sparse_safetensors

    shapes = flux_bfl_shapes(
        hidden=3072, depth=19, single_depth=38, in_channels=in_channels, out_channels=out_channels
    )
    path = write_sparse_safetensors(tmp_path / "flux1-dev.safetensors", shapes, "BF16")
    with SafeOpen(path) as reader:
        config, specs = transformer_specs(reader)
    ours = {name: list(shape) for name, _, shape, _ in specs}
    meta = {k: torch.empty(v, device="meta", dtype=torch.bfloat16) for k, v in shapes.items()}
    theirs = {
        k: list(v.shape) for k, v in convert_flux_transformer_checkpoint_to_diffusers(meta).items()
    }
    assert ours == theirs
    assert config["axes_dims_rope"] == [16, 56, 56] and config["num_attention_heads"] == 24
    assert config["in_channels"] == in_channels and config["out_channels"] == out_channels


def test_cli_convert_and_errors(tmp_path, capsys):
    import reference

    model = reference.make_transformer(True)
    save_file(to_bfl(model.state_dict()), tmp_path / "flux1.safetensors")
    assert (
        main(
            [
                "convert",
                str(tmp_path / "flux1.safetensors"),
                str(tmp_path / "out"),
                "--axes-dims-rope",
                "4",
                "6",
                "6",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "out" / "config.json").read_text())["num_layers"] == 2
    # without --axes-dims-rope the head dim 16 cannot be split like FLUX's
    assert main(["convert", str(tmp_path / "flux1.safetensors"), str(tmp_path / "x")]) == 2
    assert "axes_dims_rope" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    save_file({"foo.weight": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(ConversionError, match="not a FLUX checkpoint"):
        convert_original(tmp_path / "other.safetensors", tmp_path / "y", progress=False)
    model.save_pretrained(tmp_path / "diffusers")
    with pytest.raises(ConversionError, match="already in the diffusers layout"):
        convert_original(
            tmp_path / "diffusers" / "diffusion_pytorch_model.safetensors",
            tmp_path / "y",
            progress=False,
        )
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(ValueError, match="not a safetensors file"):
        convert_original(tmp_path / "broken.safetensors", tmp_path / "y", progress=False)
    assert not (tmp_path / "y").exists()


def test_pipeline_to_paddle_and_back(dev_pipe_dir, tmp_path):
    from ppflux import FluxPipeline

    assert main(["convert", str(dev_pipe_dir), str(tmp_path / "pd")]) == 0
    assert (tmp_path / "pd" / "transformer" / "diffusion_paddle_model.safetensors").is_file()
    lat = np.random.default_rng(0).standard_normal((1, 16, 64)).astype(np.float32)
    kwargs = dict(
        height=64,
        width=64,
        num_inference_steps=2,
        latents=lat,
        output_type="np",
        max_sequence_length=32,
    )
    a = FluxPipeline.from_pretrained(dev_pipe_dir)("a red tree", **kwargs).images
    b = FluxPipeline.from_pretrained(tmp_path / "pd")("a red tree", **kwargs).images
    np.testing.assert_array_equal(a, b)
