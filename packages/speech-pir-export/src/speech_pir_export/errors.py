"""The error types of the package: both are user errors (``error: <file>: <problem>``, exit
2 on the command line)."""

from __future__ import annotations

from ._errors import UserError


class ConfigError(UserError, ValueError):
    """The config (or a file given with it) does not describe the requested model."""


class ExportError(UserError, RuntimeError):
    """An export folder or an inference input cannot be used."""


class UnknownModelError(UserError, KeyError):
    """A model name that is not in the export registry."""

    __str__ = Exception.__str__  # not KeyError's repr-quoted message
