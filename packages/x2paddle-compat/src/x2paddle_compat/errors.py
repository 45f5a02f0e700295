"""Exceptions raised by x2paddle-compat."""

from __future__ import annotations


class X2PaddleCompatError(RuntimeError):
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
