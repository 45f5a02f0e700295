# Copied from x2paddle-llm:src/x2paddle_llm/_atomic.py
"""Outputs that appear complete or not at all, and never at the cost of the user's files.

The rules every writer of the package follows:

* An existing output is replaced only when the caller says so (``overwrite=True``, a
  ``--overwrite`` flag), and only after the new output is complete: the new content is
  written into a hidden temporary sibling (``.NAME.partial-HOST-PID-RANDOM``), then the old
  output is moved aside and the new one renamed into place.
* On any failure (an exception, Ctrl-C) the temporary is removed and the old output is
  untouched. A run killed outright (``kill -9``, power loss) leaves its temporary behind; the
  next run that writes beside it removes temporaries whose process is gone and says so.
* Only the output that was asked for is ever deleted: nothing else in its folder.
* Outputs get the permissions the user's umask gives, like any file the user creates
  (not the 0700 / 0600 of ``tempfile``).

This file is copied verbatim into other packages of the repository (each copy starts with a
``# Copied from`` line); change it here and re-copy.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ._errors import UserError

_PARTIAL = ".partial-"
_OLD = ".old-"


class OutputExistsError(UserError):
    """The output exists and the caller did not ask to overwrite it."""


def _host() -> str:
    name = socket.gethostname().split(".")[0] or "host"
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _token() -> str:
    return f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _dead_run_leftover(entry: Path, name: str) -> str | None:
    """``"partial"`` / ``"old"`` if ``entry`` is a temporary of a finished run writing ``name``."""
    for kind, marker in (("partial", _PARTIAL), ("old", _OLD)):
        prefix = f".{name}{marker}"
        if not entry.name.startswith(prefix):
            continue
        parts = entry.name[len(prefix) :].split("-")
        if len(parts) != 3 or parts[0] != _host() or not parts[1].isdigit():
            return None  # another machine's run (shared disk) or not one of ours: leave it
        return None if _pid_alive(int(parts[1])) else kind
    return None


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove what runs that died while writing ``target`` left beside it; return those paths.

    A leftover ``.old-`` copy is the previous output moved aside by a run killed between its
    two renames: if ``target`` is missing it is put back, otherwise it is removed.
    """
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return []
    removed = []
    for entry in sorted(parent.iterdir()):
        kind = _dead_run_leftover(entry, target.name)
        if kind is None:
            continue
        if kind == "old" and not target.exists() and not target.is_symlink():
            os.replace(entry, target)
            print(
                f"restored {target} from {entry.name}, left by an interrupted run", file=sys.stderr
            )
            continue
        _remove(entry)
        removed.append(entry)
        print(f"removed {entry}, a temporary left by an interrupted run", file=sys.stderr)
    return removed


def prepare_output(
    target: str | os.PathLike, *, overwrite: bool = False, kind: str = "dir"
) -> Path:
    """Check that ``target`` may be written (``kind`` ``"dir"`` or ``"file"``) before any work.

    Refuses an existing non-empty folder or an existing file unless ``overwrite``, and a file
    where a folder belongs (or the reverse) always. Removes stale temporaries of dead runs.
    Returns the absolute path.
    """
    if kind not in ("dir", "file"):
        raise ValueError(f"kind must be 'dir' or 'file', not {kind!r}")
    target = Path(os.path.abspath(os.fspath(target)))
    remove_stale_temporaries(target)
    if target.is_symlink() and not target.exists():
        raise UserError("is a broken symbolic link; remove it or choose another output", target)
    if target.exists():
        if kind == "dir" and not target.is_dir():
            raise UserError("exists and is not a folder; an output folder is written here", target)
        if kind == "file" and target.is_dir():
            raise UserError("is a folder; an output file is written here", target)
        if kind == "file" and not overwrite:
            raise OutputExistsError("exists (pass --overwrite to replace it)", target)
        if kind == "dir" and not overwrite and any(target.iterdir()):
            raise OutputExistsError(
                "exists and is not empty (pass --overwrite to replace it)", target
            )
    parent = target.parent
    if parent.exists() and not parent.is_dir():
        raise UserError("is not a folder, so the output cannot be written inside it", parent)
    return target


def apply_umask(path: str | os.PathLike) -> None:
    """Give ``path`` (and everything below it) the permissions the user's umask gives."""
    mask = _umask()
    root = Path(path)
    entries = [root] if not root.is_dir() else [root, *root.rglob("*")]
    for entry in entries:
        if entry.is_symlink():
            continue
        mode = entry.stat().st_mode
        if stat.S_ISDIR(mode) or mode & 0o111:
            wanted = 0o777 & ~mask
        else:
            wanted = 0o666 & ~mask
        if stat.S_IMODE(mode) != wanted:
            os.chmod(entry, wanted)


def _put_in_place(tmp: Path, target: Path) -> None:
    if not (target.exists() or target.is_symlink()):
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}{_OLD}{_token()}")
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    _remove(old)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``target``; it becomes ``target`` when the block ends.

    An existing non-empty ``target`` is refused unless ``overwrite`` (then replaced only once
    the block completed). On any failure ``target`` is left as it was and nothing remains.
    """
    target = prepare_output(target, overwrite=overwrite, kind="dir")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{_PARTIAL}{_token()}")
    os.mkdir(tmp)
    try:
        yield tmp
        apply_umask(tmp)
        _put_in_place(tmp, target)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


@contextlib.contextmanager
def atomic_file(
    target: str | os.PathLike,
    *,
    overwrite: bool = False,
    mode: str = "wb",
    encoding: str | None = None,
) -> Iterator[IO]:
    """Yield an open file that becomes ``target`` (synced to disk) when the block ends.

    An existing ``target`` is refused unless ``overwrite``. On any failure, including a full
    disk, ``target`` is left as it was and no partial file remains.
    """
    if "w" not in mode:
        raise ValueError(f"mode must write, not {mode!r}")
    target = prepare_output(target, overwrite=overwrite, kind="file")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{_PARTIAL}{_token()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _put_in_place(tmp, target)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def write_bytes(target: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``target`` atomically; returns the absolute path."""
    with atomic_file(target, overwrite=overwrite, mode="wb") as handle:
        handle.write(data)
    return Path(os.path.abspath(os.fspath(target)))


def write_text(
    target: str | os.PathLike, text: str, *, overwrite: bool = False, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` to ``target`` atomically; returns the absolute path."""
    with atomic_file(target, overwrite=overwrite, mode="w", encoding=encoding) as handle:
        handle.write(text)
    return Path(os.path.abspath(os.fspath(target)))
