"""Runtime fixes to X2Paddle 1.6.0, one per root cause (see ``registry``)."""

from __future__ import annotations

from . import packaging  # noqa: F401  (registers R2, R3)
from .registry import FIXES, Fix, apply_fixes, describe, revert_fixes, without_fix

from . import export  # noqa: E402,F401  (R10)

__all__ = ["FIXES", "Fix", "apply_fixes", "describe", "revert_fixes", "without_fix"]
