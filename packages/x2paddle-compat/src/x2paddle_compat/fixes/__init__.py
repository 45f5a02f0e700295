"""Runtime fixes to X2Paddle 1.6.0, one per root cause (see ``registry``)."""

from __future__ import annotations

# Registration order is application order: packaging fixes first (they make the
# x2paddle modules importable), then the modules they patch.
from . import packaging  # noqa: F401  (R2, R3)
from . import export  # noqa: F401  (R10)
from . import onnx_fixes  # noqa: F401  (R7, R9, R15-R19)
from . import torch_fixes  # noqa: F401  (R4, R7, R19, R21)
from .registry import FIXES, Fix, apply_fixes, describe, revert_fixes, without_fix

__all__ = ["FIXES", "Fix", "apply_fixes", "describe", "revert_fixes", "without_fix"]
