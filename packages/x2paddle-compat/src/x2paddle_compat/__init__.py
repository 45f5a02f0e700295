"""x2paddle-compat: X2Paddle 1.6.0 converting and verifying models on today's stack.

Importing this package applies the registry of runtime fixes (``x2paddle_compat.fixes``).
"""

from __future__ import annotations

__version__ = "0.2.0"

from ._paddle import require_paddle

require_paddle()

from .fixes import FIXES, apply_fixes, describe, revert_fixes, without_fix  # noqa: E402

apply_fixes()

from .convert import (  # noqa: E402
    convert_caffe,
    convert_onnx,
    convert_tensorflow,
    convert_torch,
)
from .errors import (  # noqa: E402
    ConversionError,
    InvalidModelError,
    UnsupportedOpsError,
    VerificationError,
)
from .verify import VerifyReport, create_predictor, verify  # noqa: E402

__all__ = [
    "FIXES", "ConversionError", "InvalidModelError", "UnsupportedOpsError", "VerificationError",
    "__version__", "apply_fixes", "convert_caffe", "convert_onnx", "convert_tensorflow",
    "convert_torch", "describe", "revert_fixes", "without_fix", "VerifyReport",
    "create_predictor", "verify",
]
