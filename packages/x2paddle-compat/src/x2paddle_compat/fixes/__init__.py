"""Runtime fixes to X2Paddle 1.6.0, one per root cause (see ``registry``)."""

from __future__ import annotations

# The fix modules import x2paddle lazily, inside their apply functions; apply_fixes()
# runs the packaging fixes (priority 0) before the ones that import x2paddle's mappers.
from . import (
    export,  # noqa: F401  (R10)
    onnx_control,  # noqa: F401  (N20: If on run-time values, Loop)
    onnx_fixes,  # noqa: F401  (R7, R9, R15-R19)
    onnx_ops2,  # noqa: F401  (R18: run-time Reduce axes, GroupNormalization)
    onnx_quant,  # noqa: F401  (N19: quantized operators)
    onnx_real,  # noqa: F401  (N9-N14: found on trained models)
    onnx_while,  # noqa: F401  (N25: Loop as a while loop)
    packaging,  # noqa: F401  (R2, R3)
    tf_fixes,  # noqa: F401  (N3, N4)
    torch_fixes,  # noqa: F401  (R4, R7, R19, R21)
    torch_script,  # noqa: F401  (N21: scripted modules' operators)
)
from .registry import FIXES, Fix, apply_fixes, describe, revert_fixes, without_fix

__all__ = ["FIXES", "Fix", "apply_fixes", "describe", "revert_fixes", "without_fix"]
