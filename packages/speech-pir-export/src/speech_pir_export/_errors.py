# Copied from x2paddle-llm:src/x2paddle_llm/_errors.py
"""One error type for bad input, and the command-line wrapper that turns it into one line.

A command line of this package prints ``error: <file>: <problem>`` on stderr and exits 2 for
anything the user can fix (a missing or damaged file, a wrong value, a full or read-only disk);
a traceback means a bug. ``run_cli`` is the only place that decides this, so every command
behaves the same.

This file is copied verbatim into other packages of the repository (each copy starts with a
``# Copied from`` line); change it here and re-copy.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem with what the user gave, printed as ``error: <path>: <problem>``."""

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = str(problem)
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.problem if self.path is None else f"{self.path}: {self.problem}")


def describe_os_error(exc: OSError) -> str:
    """``<file>: <reason>`` for an OSError, naming the file whenever Python knows it."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on device"
    elif exc.errno == errno.EROFS:
        reason = "read-only file system"
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    return ": ".join([*map(os.fsdecode, names), reason]) if names else reason


def run_cli(
    main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None
) -> int:
    """Run ``main(argv)`` and turn user-facing failures into one line on stderr.

    Returns the exit code: ``main``'s own (``None`` counts as 0), 2 for a ``UserError`` or an
    ``OSError`` (missing file, permission, full or read-only disk), 130 for Ctrl-C.
    """
    try:
        code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if code is None else int(code)


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of ``path``, or a ``UserError`` naming the file and the problem."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} does not exist", p)
    if p.is_dir():
        raise UserError(f"{what} is a folder, expected a file", p)
    if not p.is_file():
        raise UserError(f"{what} is not a regular file", p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {what}: {exc.strerror or exc}", p) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} is not UTF-8 text (bad byte at offset {exc.start})", p) from exc


def read_json_object(path: str | os.PathLike, what: str = "JSON file") -> dict[str, Any]:
    """Parse ``path`` as a JSON object (a dict); anything else is a ``UserError``."""
    text = read_text(path, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path
        ) from exc
    if not isinstance(value, dict):
        raise UserError(f"{what} must hold a JSON object, found {type(value).__name__}", path)
    return value
