"""Outputs written whole or not at all (``_atomic``), with the permissions the umask gives; inputs
read with an error that names the file."""

from __future__ import annotations

import json
from pathlib import Path

from . import _atomic
from ._errors import read_text
from .errors import MigratorError


def check_outputs(*paths: str | Path, overwrite: bool = False) -> None:
    """Refuse, before any work, outputs that exist (unless ``overwrite``) or cannot be written."""
    for p in paths:
        _atomic.prepare_output(p, overwrite=overwrite, kind="file")


def write_atomic(path: str | Path, text: str, overwrite: bool = True) -> None:
    _atomic.write_text(path, text, overwrite=overwrite)


def write_json(path: str | Path, data, overwrite: bool = True) -> None:
    write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n", overwrite=overwrite)


def read_json(path: str | Path, what: str) -> dict | list:
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MigratorError(
            f"{path}: not a valid {what} JSON file: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from exc
