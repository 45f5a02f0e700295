"""FLUX.1 Redux's image embedder: SigLIP features -> extra T5-width prompt tokens."""

from __future__ import annotations

from dataclasses import dataclass

from .._compat import require_paddle

paddle = require_paddle()
import paddle.nn as nn  # noqa: E402
import paddle.nn.functional as F  # noqa: E402
from ppdiffusers.configuration_utils import ConfigMixin, register_to_config  # noqa: E402

from .loading import FluxLoadingMixin  # noqa: E402


@dataclass
class ReduxImageEncoderOutput:
    image_embeds: paddle.Tensor


class ReduxImageEncoder(FluxLoadingMixin, nn.Layer, ConfigMixin):
    """``redux_down(silu(redux_up(x)))``: diffusers' ``ReduxImageEncoder`` (same keys)."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, redux_dim: int = 1152, txt_in_features: int = 4096):
        super().__init__()
        self.redux_up = nn.Linear(redux_dim, txt_in_features * 3)
        self.redux_down = nn.Linear(txt_in_features * 3, txt_in_features)

    def forward(self, x):
        """SigLIP ``last_hidden_state`` ``[B, N, redux_dim]`` ->
        ``ReduxImageEncoderOutput(image_embeds=[B, N, txt_in_features])``."""
        return ReduxImageEncoderOutput(image_embeds=self.redux_down(F.silu(self.redux_up(x))))
