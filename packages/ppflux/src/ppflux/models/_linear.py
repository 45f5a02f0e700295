"""``nn.Linear`` without ``F.linear``'s per-call flag lookup.

Paddle 3.3.1's ``F.linear`` reads ``FLAGS_use_legacy_linear`` through ``paddle.get_flags`` on
every call (about 11 us, more than the matmul of a small layer) and then, on a build without
CUDA and in dygraph, runs ``_C_ops.linear``. ``linear`` below takes that same kernel directly in
that case and defers to ``F.linear`` everywhere else (CUDA builds, static graphs), so results
are identical. The tiny training model runs 110 linears per forward: 1.2 ms of a 9 ms forward
was the flag lookup.
"""

from __future__ import annotations

from .._compat import require_paddle

paddle = require_paddle()
import paddle.nn as nn  # noqa: E402
import paddle.nn.functional as F  # noqa: E402
from paddle import _C_ops  # noqa: E402

_CPU_BUILD = not paddle.is_compiled_with_cuda()


def linear(x, weight, bias=None):
    """``F.linear(x, weight, bias)``."""
    if _CPU_BUILD and paddle.in_dynamic_mode():
        return _C_ops.linear(x, weight, bias)
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and names) calling :func:`linear`."""

    def forward(self, input):
        return linear(input, self.weight, self.bias)
