"""Exceptions raised by x2paddle-compat.

Every error a user can act on derives from :class:`UserError` (the command line prints it as
``error: <file>: <problem>`` and exits 2); :class:`SourceRuntimeError` gets its own exit code
(3) because it is no verdict on the conversion.
"""

from __future__ import annotations

from ._errors import UserError

EXIT_WRONG = 1
EXIT_SOURCE_RUNTIME = 3


class X2PaddleCompatError(UserError, RuntimeError):
    """Base class of the errors this package raises."""


class ConversionError(X2PaddleCompatError):
    """X2Paddle could not convert the model (the message says which file and why)."""


class UnsupportedOpsError(ConversionError):
    """The model uses operators X2Paddle has no mapping for; all of them are listed."""

    def __init__(self, framework: str, ops: list[str], source: str = "") -> None:
        self.framework = framework
        self.ops = sorted(set(ops))
        where = f" in {source}" if source else ""
        super().__init__(
            f"{len(self.ops)} {framework} operator(s) not supported by X2Paddle{where}: "
            + ", ".join(self.ops)
        )


class InvalidModelError(ConversionError):
    """The model file is missing, truncated or not a model of the declared framework."""


class VerificationError(X2PaddleCompatError):
    """The converted model's outputs differ from the source model above the tolerance."""


class ConversionWarning(UserWarning):
    """Something a fix changed that the user must know about (a scripted argument frozen to
    its example value, a trace check skipped). Raised while X2Paddle's own output is sent to
    a log, and shown once the conversion returns."""


class SourceRuntimeError(X2PaddleCompatError):
    """The source runtime (onnxruntime, TensorFlow) failed or crashed on the verification
    inputs: there is no reference to compare with, so no verdict."""
