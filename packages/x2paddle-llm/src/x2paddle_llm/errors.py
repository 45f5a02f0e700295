"""Exceptions with messages that name the file and the problem."""


class X2PaddleLLMError(Exception):
    """Base class of every error this package raises on bad input."""


class ConfigError(X2PaddleLLMError, ValueError):
    """config.json is missing, malformed or asks for something unsupported."""


class UnsupportedArchitectureError(ConfigError):
    """The checkpoint's architecture is not one this package converts."""


class CheckpointError(X2PaddleLLMError, ValueError):
    """Weight files are missing, truncated, or do not match the config."""
