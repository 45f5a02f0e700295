"""Exceptions with messages that name the file and the problem.

Every one is a :class:`~x2paddle_llm._errors.UserError`, so the command line prints it as
``error: <file>: <problem>`` and exits with status 2.
"""

from ._errors import UserError


class X2PaddleLLMError(UserError):
    """Base class of every error this package raises on bad input."""


class ConfigError(X2PaddleLLMError, ValueError):
    """config.json is missing, malformed or asks for something unsupported."""


class UnsupportedArchitectureError(ConfigError):
    """The checkpoint's architecture is not one this package converts."""


class CheckpointError(X2PaddleLLMError, ValueError):
    """Weight files are missing, truncated, or do not match the config."""
