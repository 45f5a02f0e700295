"""FluxTransformer2DModel parity with diffusers (dev and schnell), loading and saving."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch
from conftest import to_paddle, to_torch, transformer_inputs

from ppflux import FluxTransformer2DModel, LayoutError

TOL = 1e-5  # max abs difference, fp32 CPU


def _run_both(folder, inputs):
    from diffusers import FluxTransformer2DModel as Ref

    ref = Ref.from_pretrained(folder).eval()
    mine = FluxTransformer2DModel.from_pretrained(folder)
    with torch.no_grad():
        expected = ref(**to_torch(inputs), return_dict=False)[0].numpy()
    with paddle.no_grad():
        got = mine(**to_paddle(inputs), return_dict=False)[0].numpy()
    return expected, got


def test_dev_parity(dev_pipe_dir, parity):
    inputs = transformer_inputs(batch=2)
    inputs["guidance"] = np.array([3.5, 1.0], np.float32)
    expected, got = _run_both(dev_pipe_dir / "transformer", inputs)
    assert got.shape == expected.shape == (2, 16, 64)
    assert np.abs(expected).max() > 0.1
    parity("transformer dev output", np.abs(got - expected).max(), TOL)
    assert np.abs(got - expected).max() < TOL


def test_schnell_parity(schnell_transformer_dir, parity):
    inputs = transformer_inputs(seed=3, image_tokens=24, text_tokens=5, grid_w=6)
    expected, got = _run_both(schnell_transformer_dir, inputs)
    parity("transformer schnell output", np.abs(got - expected).max(), TOL)
    assert np.abs(got - expected).max() < TOL


def test_heavily_randomised_weights_relative(tmp_path, parity):
    """All weights N(0, 0.2): activations grow large, and the 1-2 ulp differences between
    torch's and numpy's float32 exp/sin/cos in the timestep features are amplified through
    every modulation. Compared relative to the output scale, tolerance 1e-4."""
    import reference

    model = reference.randomize_(reference.make_transformer(True), 0.2, seed=11)
    model.save_pretrained(tmp_path)
    inputs = transformer_inputs(seed=5)
    inputs["guidance"] = np.array([4.0], np.float32)
    expected, got = _run_both(tmp_path, inputs)
    rel = np.abs(got - expected).max() / np.abs(expected).max()
    parity("transformer, all weights N(0,0.2), relative to max |out|", rel, 1e-4)
    assert rel < 1e-4


def test_last_block_without_text_outputs(dev_pipe_dir, monkeypatch, parity):
    """The last single block computes only the image tokens' MLP and output projection (its
    text outputs are discarded): against diffusers, and against the same model computing every
    token (a cache enabled keeps the full block), output and input gradients."""
    from ppflux.models import transformer_flux

    monkeypatch.setattr(transformer_flux, "_SKIP_TEXT_MIN_NUMEL", 0)
    inputs = transformer_inputs(batch=2)
    inputs["guidance"] = np.array([3.5, 1.0], np.float32)
    expected, got = _run_both(dev_pipe_dir / "transformer", inputs)
    parity(
        "transformer dev output, last block image tokens only", np.abs(got - expected).max(), TOL
    )
    assert np.abs(got - expected).max() < TOL

    model = FluxTransformer2DModel.from_pretrained(dev_pipe_dir / "transformer")
    calls = []
    block = model.single_transformer_blocks[-1]
    original = block.forward
    monkeypatch.setattr(block, "forward", lambda *a: calls.append(a[-1]) or original(*a))
    results = []
    for cache_config in (None, "full block"):
        model._cache_config = cache_config
        feed = to_paddle(inputs)
        feed["hidden_states"].stop_gradient = False
        feed["encoder_hidden_states"].stop_gradient = False
        out = model(**feed, return_dict=False)[0]
        (out * out).sum().backward()
        grads = [feed[k].grad.numpy() for k in ("hidden_states", "encoder_hidden_states")]
        results.append((out.numpy(), *grads))
    model._cache_config = None
    assert calls == [False, True]  # text_out: the image-only path, then the full block
    for pruned, full in zip(*results):
        assert np.abs(full).max() > 0
        np.testing.assert_allclose(pruned, full, rtol=0, atol=1e-6 * np.abs(full).max())


def test_save_and_reload_paddle_layout(dev_pipe_dir, tmp_path):
    model = FluxTransformer2DModel.from_pretrained(dev_pipe_dir / "transformer")
    model.save_pretrained(tmp_path / "pd")
    assert (tmp_path / "pd" / "diffusion_paddle_model.safetensors").is_file()
    again = FluxTransformer2DModel.from_pretrained(tmp_path / "pd")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), again.state_dict()[key].numpy())


def test_save_torch_layout_loads_in_diffusers(dev_pipe_dir, tmp_path):
    from diffusers import FluxTransformer2DModel as Ref

    model = FluxTransformer2DModel.from_pretrained(dev_pipe_dir / "transformer")
    model.save_pretrained(tmp_path / "pt", layout="torch")
    ref = Ref.from_pretrained(dev_pipe_dir / "transformer")
    back = Ref.from_pretrained(tmp_path / "pt")
    for (k, a), (_, b) in zip(ref.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k


def test_bf16_checkpoint_is_read(dev_pipe_dir, tmp_path):
    from diffusers import FluxTransformer2DModel as Ref

    ref = Ref.from_pretrained(dev_pipe_dir / "transformer").to(torch.bfloat16)
    ref.save_pretrained(tmp_path)
    mine = FluxTransformer2DModel.from_pretrained(tmp_path)
    key = "transformer_blocks.0.attn.to_q.weight"
    expected = ref.state_dict()[key].float().numpy().T
    np.testing.assert_array_equal(mine.state_dict()[key].numpy(), expected)


def test_wrong_layout_errors(tmp_path, dev_pipe_dir):
    with pytest.raises(LayoutError, match="no config.json"):
        FluxTransformer2DModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(
        (dev_pipe_dir / "transformer" / "config.json").read_text()
    )
    with pytest.raises(LayoutError, match="diffusion_pytorch_model.safetensors"):
        FluxTransformer2DModel.from_pretrained(tmp_path)
    with pytest.raises(LayoutError, match="shape"):
        FluxTransformer2DModel.from_pretrained(
            dev_pipe_dir / "transformer",
            num_attention_heads=4,
            attention_head_dim=8,
            axes_dims_rope=[2, 2, 4],
        )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rope_pair_rotation_by_matmul_equals_the_stack(dtype):
    """The CPU rotation of RoPE pairs, (a, b) -> (-b, a), as one matmul with a 0/+-1 matrix:
    bit-identical to unbind/negate/stack, forward and gradient."""
    from ppflux.models.transformer_flux import _rotate_pairs

    rng = np.random.default_rng(3)
    shape = [2, 5, 3, 8]
    x_np = (rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 6, shape)).astype(dtype)
    g_np = rng.standard_normal(shape).astype(dtype)
    results = []
    for how in ("matmul", "stack"):
        x = paddle.to_tensor(x_np, stop_gradient=False)
        if how == "matmul":
            y = _rotate_pairs(x)
        else:
            a, b = x.reshape([*shape[:-1], shape[-1] // 2, 2]).unbind(-1)
            y = paddle.stack([-b, a], axis=-1).reshape(shape)
        y.backward(paddle.to_tensor(g_np))
        results.append((y.numpy(), x.grad.numpy()))
    (y0, g0), (y1, g1) = results
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(g0, g1)
    # the rotation itself, independent of either implementation
    pairs = x_np.reshape(*shape[:-1], -1, 2)
    np.testing.assert_array_equal(y0.reshape(pairs.shape)[..., 0], -pairs[..., 1])
    np.testing.assert_array_equal(y0.reshape(pairs.shape)[..., 1], pairs[..., 0])
