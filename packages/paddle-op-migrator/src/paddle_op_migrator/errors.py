"""Errors that the CLI turns into a one-line message and exit code 2."""

from ._errors import UserError


class MigratorError(UserError):
    """A real error of the user's input (bad tree, bad list, unreadable file); the message
    names the file."""
