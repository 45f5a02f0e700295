"""x2paddle-compat: X2Paddle 1.6.0 converting and verifying models on today's stack.

The first use of the package's API (``import x2paddle_compat as xc; xc.convert_onnx(...)``, or
``from x2paddle_compat import ...``) imports Paddle and X2Paddle and applies the registry of
runtime fixes (``x2paddle_compat.fixes``). Importing the package alone imports neither, so
``x2paddle3 --help`` and argument errors answer at once.
"""

from __future__ import annotations

import importlib

__version__ = "0.6.3"

__all__ = [
    "FIXES",
    "ConversionError",
    "ConversionWarning",
    "InvalidModelError",
    "SourceRuntimeError",
    "UnsupportedOpsError",
    "VerificationError",
    "VerifyReport",
    "__version__",
    "apply_fixes",
    "convert_caffe",
    "convert_onnx",
    "convert_tensorflow",
    "convert_torch",
    "create_predictor",
    "describe",
    "revert_fixes",
    "verify",
    "without_fix",
]

_WHERE = {
    "FIXES": "fixes",
    "apply_fixes": "fixes",
    "describe": "fixes",
    "revert_fixes": "fixes",
    "without_fix": "fixes",
    "convert_caffe": "convert",
    "convert_onnx": "convert",
    "convert_tensorflow": "convert",
    "convert_torch": "convert",
    "ConversionError": "errors",
    "ConversionWarning": "errors",
    "InvalidModelError": "errors",
    "SourceRuntimeError": "errors",
    "UnsupportedOpsError": "errors",
    "VerificationError": "errors",
    "VerifyReport": "verify",
    "create_predictor": "verify",
    "verify": "verify",
}
_LOADED = False


def load() -> None:
    """Import Paddle (clear error naming both wheels when missing) and apply the fixes."""
    global _LOADED
    if _LOADED:
        return
    from ._paddle import require_paddle

    require_paddle()
    from .fixes import apply_fixes

    apply_fixes()
    _LOADED = True


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'x2paddle_compat' has no attribute {name!r}")
    load()
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
