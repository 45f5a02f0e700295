"""FlowMatchEulerDiscreteScheduler with FLUX's dynamic (resolution-dependent) shifting.

ppdiffusers 0.29.0 ships the SD3-only version (no ``mu``, no ``sigmas=``). This one follows
diffusers 0.42: sigmas are computed as numpy float32 (the same rounding), shifted with
``exp(mu) / (exp(mu) + (1/sigma - 1))`` when ``use_dynamic_shifting``, converted to float32,
and a terminal 0 is appended; ``timesteps = sigmas * num_train_timesteps`` (floats).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._compat import require_paddle

paddle = require_paddle()
from ppdiffusers.configuration_utils import ConfigMixin, register_to_config  # noqa: E402


@dataclass
class FlowMatchEulerDiscreteSchedulerOutput:
    prev_sample: paddle.Tensor


def calculate_shift(
    image_seq_len,
    base_seq_len: int = 256,
    max_seq_len: int = 4096,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> float:
    """mu for the dynamic shift, linear in the number of packed image tokens."""
    m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    b = base_shift - m * base_seq_len
    return image_seq_len * m + b


class FlowMatchEulerDiscreteScheduler(ConfigMixin):
    config_name = "scheduler_config.json"
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        shift: float = 1.0,
        use_dynamic_shifting: bool = False,
        base_shift: float | None = 0.5,
        max_shift: float | None = 1.15,
        base_image_seq_len: int | None = 256,
        max_image_seq_len: int | None = 4096,
        invert_sigmas: bool = False,
        shift_terminal: float | None = None,
        time_shift_type: str = "exponential",
    ):
        if time_shift_type not in ("exponential", "linear"):
            raise ValueError("time_shift_type must be 'exponential' or 'linear'")
        timesteps = np.linspace(1, num_train_timesteps, num_train_timesteps, dtype=np.float32)[
            ::-1
        ].copy()
        sigmas = timesteps / num_train_timesteps
        if not use_dynamic_shifting:
            sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
        sigmas = sigmas.astype(np.float32)
        self._sigmas_np = sigmas
        self.timesteps = paddle.to_tensor(sigmas * num_train_timesteps)
        self.sigmas = paddle.to_tensor(sigmas)
        self._shift = shift
        self.sigma_min = float(sigmas[-1])
        self.sigma_max = float(sigmas[0])
        self._step_index = None
        self._begin_index = None
        self.num_inference_steps = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, subfolder: str | None = None, **kwargs):
        import inspect
        import json
        from pathlib import Path

        folder = Path(pretrained_model_name_or_path) / (subfolder or "")
        path = folder / cls.config_name
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: no {cls.config_name}")
        config = json.loads(path.read_text())
        accepted = set(inspect.signature(cls.__init__).parameters)
        return cls(**{k: v for k, v in {**config, **kwargs}.items() if k in accepted})

    def save_pretrained(self, save_directory):
        self.save_config(str(save_directory))

    # ------------------------------------------------------------------ properties
    @property
    def shift(self):
        return self._shift

    @property
    def step_index(self):
        return self._step_index

    @property
    def begin_index(self):
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0):
        self._begin_index = begin_index

    def set_shift(self, shift: float):
        self._shift = shift

    # ------------------------------------------------------------------ schedule
    def time_shift(self, mu: float, sigma: float, t: np.ndarray):
        if self.config.time_shift_type == "exponential":
            return math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** sigma)
        return mu / (mu + (1 / t - 1) ** sigma)

    def stretch_shift_to_terminal(self, t: np.ndarray) -> np.ndarray:
        one_minus_z = 1 - t
        scale_factor = one_minus_z[-1] / (1 - self.config.shift_terminal)
        return 1 - (one_minus_z / scale_factor)

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device=None,
        sigmas=None,
        mu: float | None = None,
        timesteps=None,
    ):
        cfg = self.config
        if cfg.use_dynamic_shifting and mu is None:
            raise ValueError(
                "this scheduler uses dynamic shifting: pass mu= to set_timesteps "
                "(see ppflux.calculate_shift)"
            )
        if sigmas is not None and timesteps is not None and len(sigmas) != len(timesteps):
            raise ValueError("sigmas and timesteps must have the same length")
        if num_inference_steps is None:
            if sigmas is None and timesteps is None:
                raise ValueError("pass num_inference_steps, sigmas or timesteps")
            num_inference_steps = len(sigmas) if sigmas is not None else len(timesteps)
        self.num_inference_steps = num_inference_steps
        timesteps_given = timesteps is not None
        if timesteps_given:
            timesteps = np.array(timesteps).astype(np.float32)
        if sigmas is None:
            if timesteps is None:
                timesteps = np.linspace(
                    self.sigma_max * cfg.num_train_timesteps,
                    self.sigma_min * cfg.num_train_timesteps,
                    num_inference_steps,
                )
            sigmas = timesteps / cfg.num_train_timesteps
        else:
            sigmas = np.array(sigmas).astype(np.float32)
            self.num_inference_steps = len(sigmas)
        if cfg.use_dynamic_shifting:
            sigmas = self.time_shift(mu, 1.0, sigmas)
        else:
            sigmas = self.shift * sigmas / (1 + (self.shift - 1) * sigmas)
        if cfg.shift_terminal:
            sigmas = self.stretch_shift_to_terminal(sigmas)
        sigmas = np.asarray(sigmas).astype(np.float32)
        if not timesteps_given:
            timesteps = sigmas * np.float32(cfg.num_train_timesteps)
        timesteps = np.asarray(timesteps, dtype=np.float32)
        if cfg.invert_sigmas:
            sigmas = (1.0 - sigmas).astype(np.float32)
            timesteps = sigmas * np.float32(cfg.num_train_timesteps)
            sigmas = np.concatenate([sigmas, np.ones(1, np.float32)])
        else:
            sigmas = np.concatenate([sigmas, np.zeros(1, np.float32)])
        self._sigmas_np = sigmas
        self._timesteps_np = timesteps
        self.timesteps = paddle.to_tensor(timesteps)
        self.sigmas = paddle.to_tensor(sigmas)
        self._step_index = None
        self._begin_index = None

    def index_for_timestep(self, timestep, schedule_timesteps=None):
        schedule = (
            self._timesteps_np if schedule_timesteps is None else np.asarray(schedule_timesteps)
        )
        value = (
            float(timestep.numpy().reshape(-1)[0])
            if isinstance(timestep, paddle.Tensor)
            else float(timestep)
        )
        indices = np.nonzero(schedule == np.float32(value))[0]
        if len(indices) == 0:
            raise ValueError(f"timestep {value} is not in the schedule")
        return int(indices[1 if len(indices) > 1 else 0])

    def _init_step_index(self, timestep):
        self._step_index = (
            self.index_for_timestep(timestep) if self._begin_index is None else self._begin_index
        )

    def scale_noise(self, sample, timestep, noise):
        """Forward flow-matching process: sigma * noise + (1 - sigma) * sample (img2img)."""
        ts = (
            timestep.numpy().reshape(-1)
            if isinstance(timestep, paddle.Tensor)
            else np.atleast_1d(np.asarray(timestep, np.float32))
        )
        if self._begin_index is None:
            idx = [self.index_for_timestep(t) for t in ts]
        elif self._step_index is not None:
            idx = [self._step_index] * len(ts)
        else:
            idx = [self._begin_index] * len(ts)
        sigma = paddle.to_tensor(self._sigmas_np[idx]).astype(sample.dtype)
        while sigma.ndim < sample.ndim:
            sigma = sigma.unsqueeze(-1)
        return sigma * noise + (1.0 - sigma) * sample

    def step(self, model_output, timestep, sample, return_dict: bool = True, **_unused):
        if self._step_index is None:
            self._init_step_index(timestep)
        sample32 = sample.astype("float32")
        sigma = self._sigmas_np[self._step_index]
        sigma_next = self._sigmas_np[self._step_index + 1]
        dt = paddle.to_tensor(np.float32(sigma_next - sigma))
        prev_sample = sample32 + dt * model_output
        self._step_index += 1
        prev_sample = prev_sample.astype(model_output.dtype)
        if not return_dict:
            return (prev_sample,)
        return FlowMatchEulerDiscreteSchedulerOutput(prev_sample=prev_sample)

    def __len__(self):
        return self.config.num_train_timesteps
