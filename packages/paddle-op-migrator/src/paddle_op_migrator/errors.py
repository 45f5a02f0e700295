"""Errors that the CLI turns into a one-line message and a non-zero exit."""


class MigratorError(Exception):
    """A real error of the user's input (bad tree, bad list, unreadable file)."""
