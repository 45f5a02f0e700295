"""LoRA loading in ppflux vs diffusers on the same tiny pipeline: images within 1e-4.

diffusers/PEFT files are written by peft+diffusers themselves; kohya files are built in the
kohya layout and loaded by diffusers' own kohya converter as the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ppflux import FluxPipeline
from ppflux.lora import DEFAULT_TARGET_MODULES, LoraError

TOL = 1e-4
PROMPT = "a small house on the river"


def _make_diffusers_lora(transformer_dir, out_dir, seed, rank=4):
    from diffusers import FluxPipeline as Ref
    from diffusers import FluxTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    model = FluxTransformer2DModel.from_pretrained(transformer_dir)
    model.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=DEFAULT_TARGET_MODULES,
        )
    )
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    Ref.save_lora_weights(out_dir, transformer_lora_layers=get_peft_model_state_dict(model))
    return out_dir / "pytorch_lora_weights.safetensors"


@pytest.fixture(scope="module")
def loras(dev_pipe_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return {
        name: _make_diffusers_lora(dev_pipe_dir / "transformer", root / name, seed)
        for name, seed in (("a", 1), ("b", 2))
    }


def _run(pipe, torch_side, **extra):
    lat = np.random.default_rng(0).standard_normal((1, 16, 64)).astype(np.float32)
    kwargs = dict(
        height=64,
        width=64,
        num_inference_steps=2,
        output_type="np",
        max_sequence_length=32,
        guidance_scale=3.5,
        **extra,
    )
    if torch_side:
        with torch.no_grad():
            return pipe(PROMPT, latents=torch.tensor(lat), **kwargs).images
    return pipe(PROMPT, latents=lat, **kwargs).images


def _close(a, b, tol=TOL):
    diff = np.abs(a - b).max()
    assert diff < tol, diff
    return diff


def test_load_set_adapters_fuse_unfuse_unload(dev_pipe_dir, loras, parity):
    from diffusers import FluxPipeline as Ref

    ref = Ref.from_pretrained(dev_pipe_dir)
    mine = FluxPipeline.from_pretrained(dev_pipe_dir)
    base_ref, base_mine = _run(ref, True), _run(mine, False)
    for name in ("a", "b"):  # diffusers needs weight_name when HF_HUB_OFFLINE=1
        ref.load_lora_weights(loras[name].parent, weight_name=loras[name].name, adapter_name=name)
        mine.load_lora_weights(loras[name], adapter_name=name)
    ref.set_adapters(["a"])
    mine.set_adapters(["a"])
    only_a = _run(mine, False)
    parity("LoRA (diffusers/PEFT file) one adapter, image", _close(_run(ref, True), only_a), TOL)
    assert np.abs(only_a - base_mine).max() > 1e-3  # the LoRA does change the image
    ref.set_adapters(["a", "b"], adapter_weights=[0.7, 0.3])
    mine.set_adapters(["a", "b"], adapter_weights=[0.7, 0.3])
    mixed = _run(mine, False)
    parity("LoRA set_adapters([a, b], [0.7, 0.3]), image", _close(_run(ref, True), mixed), TOL)
    # runtime scale through joint_attention_kwargs
    _close(
        _run(ref, True, joint_attention_kwargs={"scale": 0.5}),
        _run(mine, False, joint_attention_kwargs={"scale": 0.5}),
    )
    ref.fuse_lora(lora_scale=0.5, adapter_names=["a", "b"])
    mine.fuse_lora(lora_scale=0.5)
    parity("LoRA fuse_lora(lora_scale=0.5), image", _close(_run(ref, True), _run(mine, False)), TOL)
    ref.unfuse_lora()
    mine.unfuse_lora()
    _close(_run(mine, False), mixed, 1e-5)
    ref.unload_lora_weights()
    mine.unload_lora_weights()
    _close(_run(mine, False), base_mine, 1e-5)  # fuse+unfuse round-off only
    _close(base_ref, base_mine)


def test_ppflux_saved_lora_loads_in_diffusers(dev_pipe_dir, loras, tmp_path, parity):
    from diffusers import FluxPipeline as Ref

    mine = FluxPipeline.from_pretrained(dev_pipe_dir)
    mine.load_lora_weights(loras["b"], adapter_name="b")
    path = mine.save_lora_weights_of(tmp_path / "out", "b")
    ref = Ref.from_pretrained(dev_pipe_dir)
    ref.load_lora_weights(path.parent, weight_name=path.name)
    parity(
        "LoRA saved by ppflux, loaded by diffusers, image",
        _close(_run(ref, True), _run(mine, False)),
        TOL,
    )


def _kohya_dict(hidden=32, mlp=128, rank=4, seed=0, linear1=True):
    gen = torch.Generator().manual_seed(seed)
    sd = {}

    def add(name, d_in, d_out, alpha=8.0):
        sd[f"{name}.lora_down.weight"] = torch.randn(rank, d_in, generator=gen) * 0.2
        sd[f"{name}.lora_up.weight"] = torch.randn(d_out, rank, generator=gen) * 0.2
        sd[f"{name}.alpha"] = torch.tensor(alpha)

    for i in range(2):
        p = f"lora_unet_double_blocks_{i}"
        for side in ("img", "txt"):
            add(f"{p}_{side}_attn_qkv", hidden, 3 * hidden)
            add(f"{p}_{side}_attn_proj", hidden, hidden)
            add(f"{p}_{side}_mlp_0", hidden, mlp)
            add(f"{p}_{side}_mlp_2", mlp, hidden)
            add(f"{p}_{side}_mod_lin", hidden, 6 * hidden)
        q = f"lora_unet_single_blocks_{i}"
        if linear1:  # diffusers 0.32's kohya converter hard-codes FLUX.1's 3072/12288 split
            add(f"{q}_linear1", hidden, 3 * hidden + mlp)
        add(f"{q}_linear2", hidden + mlp, hidden)
        add(f"{q}_modulation_lin", hidden, 3 * hidden)
    return sd


def test_kohya_lora_matches_diffusers(dev_pipe_dir, tmp_path, parity):
    from diffusers import FluxPipeline as Ref
    from safetensors.torch import save_file

    save_file(_kohya_dict(linear1=False), tmp_path / "kohya.safetensors")
    ref = Ref.from_pretrained(dev_pipe_dir)
    ref.load_lora_weights(tmp_path, weight_name="kohya.safetensors")
    mine = FluxPipeline.from_pretrained(dev_pipe_dir)
    mine.load_lora_weights(tmp_path / "kohya.safetensors")
    parity("LoRA kohya file, image", _close(_run(ref, True), _run(mine, False)), TOL)


def test_original_flux_names_equal_kohya(dev_pipe_dir, tmp_path):
    """BFL module names with lora_A/lora_B (original-FLUX format) load like kohya's."""
    from safetensors.torch import save_file

    kohya = _kohya_dict(seed=3)
    save_file(kohya, tmp_path / "kohya.safetensors")
    bfl = {}
    for key, value in kohya.items():
        module, _, part = key.partition(".")
        import re

        name = module[len("lora_unet_") :]
        name = re.sub(r"^(double|single)_blocks_(\d+)_", r"\1_blocks.\2.", name)
        name = re.sub(r"^(double_blocks\.\d+\.)(img|txt)_(attn|mlp|mod)_", r"\1\2_\3.", name)
        name = name.replace("modulation_lin", "modulation.lin")
        if part == "alpha":
            bfl[f"diffusion_model.{name}.alpha"] = value
        else:
            kind = "lora_A" if part.startswith("lora_down") else "lora_B"
            bfl[f"diffusion_model.{name}.{kind}.weight"] = value
    save_file(bfl, tmp_path / "bfl.safetensors")
    a = FluxPipeline.from_pretrained(dev_pipe_dir)
    a.load_lora_weights(tmp_path / "kohya.safetensors")
    b = FluxPipeline.from_pretrained(dev_pipe_dir)
    b.load_lora_weights(tmp_path / "bfl.safetensors")
    np.testing.assert_array_equal(_run(a, False), _run(b, False))


def test_lora_for_another_architecture_is_rejected(dev_pipe_dir, tmp_path):
    from safetensors.torch import save_file

    mine = FluxPipeline.from_pretrained(dev_pipe_dir)
    save_file(
        {
            "unet.down_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 32),
            "unet.down_blocks.0.attn.to_q.lora_B.weight": torch.zeros(32, 4),
        },
        tmp_path / "sd.safetensors",
    )
    with pytest.raises(LoraError, match="UNet"):
        mine.load_lora_weights(tmp_path / "sd.safetensors")
    save_file(
        {
            "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 3072),
            "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(3072, 4),
        },
        tmp_path / "big.safetensors",
    )
    with pytest.raises(LoraError, match="another model size"):
        mine.load_lora_weights(tmp_path / "big.safetensors")
    save_file(
        {
            "transformer.foo.lora_A.weight": torch.zeros(4, 32),
            "transformer.foo.lora_B.weight": torch.zeros(32, 4),
        },
        tmp_path / "x.safetensors",
    )
    with pytest.raises(LoraError, match="another architecture"):
        mine.load_lora_weights(tmp_path / "x.safetensors")


def test_kohya_single_block_linear1_split(dev_pipe_dir, tmp_path):
    """linear1 = [q|k|v|mlp]: the four ppflux adapters together equal up @ down * alpha/r."""
    from safetensors.torch import save_file

    sd = _kohya_dict(seed=5)
    save_file(sd, tmp_path / "kohya.safetensors")
    mine = FluxPipeline.from_pretrained(dev_pipe_dir)
    name = mine.load_lora_weights(tmp_path / "kohya.safetensors")
    block = mine.transformer.single_transformer_blocks[1]
    deltas = [
        layer.delta_weight(name).numpy()
        for layer in (block.attn.to_q, block.attn.to_k, block.attn.to_v, block.proj_mlp)
    ]
    got = np.concatenate(deltas, axis=1).T  # torch layout [out, in]
    k = "lora_unet_single_blocks_1_linear1"
    expected = (sd[f"{k}.lora_up.weight"] @ sd[f"{k}.lora_down.weight"]).numpy() * (8.0 / 4)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def _xlabs_dict(hidden=32, mlp=128, rank=4, seed=0):
    """A LoRA in XLabs' layout (``*.processor.{qkv,proj}_lora*.{down,up}.weight``)."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}

    def add(name, d_in, d_out):
        sd[f"{name}.down.weight"] = torch.randn(rank, d_in, generator=gen) * 0.2
        sd[f"{name}.up.weight"] = torch.randn(d_out, rank, generator=gen) * 0.2

    for i in range(2):
        p = f"double_blocks.{i}.processor"
        add(f"{p}.qkv_lora1", hidden, 3 * hidden)
        add(f"{p}.qkv_lora2", hidden, 3 * hidden)
        add(f"{p}.proj_lora1", hidden, hidden)
        add(f"{p}.proj_lora2", hidden, hidden)
        q = f"single_blocks.{i}.processor"
        add(f"{q}.qkv_lora", hidden, 3 * hidden)
        add(f"{q}.proj_lora", hidden + mlp, hidden)
    return sd


def test_xlabs_lora_matches_diffusers(dev_pipe_dir, tmp_path, parity):
    from diffusers import FluxPipeline as Ref
    from safetensors.torch import save_file

    save_file(_xlabs_dict(seed=7), tmp_path / "xlabs.safetensors")
    ref = Ref.from_pretrained(dev_pipe_dir)
    base = _run(ref, True)
    ref.load_lora_weights(tmp_path, weight_name="xlabs.safetensors")
    mine = FluxPipeline.from_pretrained(dev_pipe_dir)
    mine.load_lora_weights(tmp_path / "xlabs.safetensors")
    want = _run(ref, True)
    assert np.abs(want - base).max() > 1e-3  # the LoRA changes the image
    parity("LoRA XLabs file, image", _close(want, _run(mine, False)), TOL)
