"""Atomic output: write to a temporary file next to the target, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import MigratorError


def write_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise MigratorError(f"{path}: cannot write output: {exc}") from exc


def write_json(path: str | Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def read_json(path: str | Path, what: str) -> dict | list:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MigratorError(f"{path}: {what} not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MigratorError(f"{path}: not a valid {what} JSON file: {exc}") from exc
