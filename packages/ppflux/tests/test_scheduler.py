"""FlowMatchEulerDiscreteScheduler: timesteps and sigmas equal to diffusers' float32 values."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

from ppflux import FlowMatchEulerDiscreteScheduler, calculate_shift

DEV = dict(
    num_train_timesteps=1000,
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)
SCHNELL = dict(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)


def _pair(config):
    from diffusers import FlowMatchEulerDiscreteScheduler as Ref

    return Ref(**config), FlowMatchEulerDiscreteScheduler(**config)


@pytest.mark.parametrize("steps", [1, 2, 4, 28, 50])
@pytest.mark.parametrize("seq_len", [16, 256, 1024, 4096])
def test_dev_dynamic_shift_equal(steps, seq_len):
    ref, mine = _pair(DEV)
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift as ref_shift

    # (diffusers 0.32's own default max_shift is 1.16; the pipelines pass the config's 1.15)
    mu = calculate_shift(seq_len, 256, 4096, 0.5, 1.15)
    assert mu == ref_shift(seq_len, 256, 4096, 0.5, 1.15)
    sigmas = np.linspace(1.0, 1 / steps, steps)
    ref.set_timesteps(sigmas=sigmas, mu=mu)
    mine.set_timesteps(sigmas=sigmas, mu=mu)
    np.testing.assert_array_equal(mine.sigmas.numpy(), ref.sigmas.numpy())
    np.testing.assert_array_equal(mine.timesteps.numpy(), ref.timesteps.numpy())


@pytest.mark.parametrize("config", [DEV, SCHNELL, dict(SCHNELL, shift=3.0)])
def test_default_schedule_equal(config):
    ref, mine = _pair(config)
    np.testing.assert_array_equal(mine.sigmas.numpy(), ref.sigmas.numpy())
    kwargs = {"mu": 0.8} if config.get("use_dynamic_shifting") else {}
    ref.set_timesteps(7, **kwargs)
    mine.set_timesteps(7, **kwargs)
    np.testing.assert_array_equal(mine.sigmas.numpy(), ref.sigmas.numpy())
    np.testing.assert_array_equal(mine.timesteps.numpy(), ref.timesteps.numpy())


def test_custom_sigmas():
    ref, mine = _pair(DEV)
    sigmas = [1.0, 0.8, 0.55, 0.3, 0.1]
    ref.set_timesteps(sigmas=sigmas, mu=1.1)
    mine.set_timesteps(sigmas=sigmas, mu=1.1)
    np.testing.assert_array_equal(mine.sigmas.numpy(), ref.sigmas.numpy())


def test_step_and_scale_noise_equal():
    ref, mine = _pair(DEV)
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((1, 16, 64)).astype(np.float32)
    noise = rng.standard_normal((1, 16, 64)).astype(np.float32)
    ref.set_timesteps(sigmas=np.linspace(1, 0.25, 4), mu=0.7)
    mine.set_timesteps(sigmas=np.linspace(1, 0.25, 4), mu=0.7)
    t = ref.timesteps[1:2]
    a = ref.scale_noise(torch.tensor(sample), t, torch.tensor(noise)).numpy()
    b = mine.scale_noise(
        paddle.to_tensor(sample), paddle.to_tensor(t.numpy()), paddle.to_tensor(noise)
    ).numpy()
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    x_ref, x_mine = torch.tensor(sample), paddle.to_tensor(sample)
    for t_ref, t_mine in zip(ref.timesteps, mine.timesteps):
        out = rng.standard_normal((1, 16, 64)).astype(np.float32)
        x_ref = ref.step(torch.tensor(out), t_ref, x_ref).prev_sample
        x_mine = mine.step(paddle.to_tensor(out), t_mine, x_mine).prev_sample
    np.testing.assert_allclose(x_mine.numpy(), x_ref.numpy(), rtol=0, atol=1e-6)


def test_dynamic_shift_needs_mu():
    mine = FlowMatchEulerDiscreteScheduler(**DEV)
    with pytest.raises(ValueError, match="mu"):
        mine.set_timesteps(4)
