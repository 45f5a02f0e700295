"""``apply --write``: every file of the patch is replaced, created or removed, or none is.

The new contents are first written into one hidden staging folder at the root of the tree
(``.paddle-op-migrator-txn-HOST-PID-RANDOM``), so a full disk or an unwritable file stops the
run before the tree is touched. Then each target is moved aside into that folder and its new
version moved into place (renames on one file system). If any step fails, every file already
switched is put back, folders the run created are removed again, and the staging folder goes:
the tree is as it was, and the error names the file. A run killed outright leaves its staging
folder with a journal of what it switched; the next ``apply`` or ``scan`` of the tree puts those
files back, removes the folder and says so.

Replaced files keep their permission bits; created files get the ones the umask gives.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import stat
import sys
from pathlib import Path

from .errors import MigratorError

PREFIX = ".paddle-op-migrator-txn-"
JOURNAL = "journal.json"
COMPLETE = "complete"


def _host() -> str:
    name = socket.gethostname().split(".")[0] or "host"
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _why(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc)


def _check_target(root: Path, rel: str, new: str | None) -> None:
    """Refuse before any write: a special file, a folder, or an unwritable place."""
    p = root / rel
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        kind = (
            "a folder"
            if stat.S_ISDIR(st.st_mode)
            else "not a regular file (FIFO, device or socket)"
        )
        raise MigratorError(f"{p}: is {kind}; apply edits regular files only")
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise MigratorError(f"{parent}: is not a folder, so {rel} cannot be written")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MigratorError(f"{parent}: permission denied (cannot write {rel})")


class Transaction:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.dir = self.root / f"{PREFIX}{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.done: list[dict] = []  # steps applied, in order (for the rollback)

    def _journal(self) -> None:
        tmp = self.dir / (JOURNAL + ".new")
        tmp.write_text(json.dumps(self.done), encoding="utf-8")
        os.replace(tmp, self.dir / JOURNAL)

    def run(self, changes: list[tuple[str, str | None, str | None]]) -> None:
        for rel, _old, new in changes:
            _check_target(self.root, rel, new)
        try:
            os.mkdir(self.dir)
        except OSError as exc:
            raise MigratorError(f"{self.root}: cannot write into the tree: {_why(exc)}") from exc
        try:
            staged = self._stage(changes)
            self._commit(changes, staged)
        except BaseException:
            self.rollback()
            raise
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _stage(self, changes) -> dict[str, Path]:
        staged = {}
        for i, (rel, _old, new) in enumerate(changes):
            if new is None:
                continue
            tmp = self.dir / f"{i}.new"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                    fh.write(new)
                    fh.flush()
                    os.fsync(fh.fileno())
                target = self.root / rel
                if target.exists():
                    os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
            except OSError as exc:
                raise MigratorError(
                    f"{self.root / rel}: cannot write the new version: {_why(exc)}; "
                    "nothing in the tree was changed"
                ) from exc
            staged[rel] = tmp
        return staged

    def _commit(self, changes, staged: dict[str, Path]) -> None:
        # Each step is journaled with what it *will* do before doing it; the rollback reads the
        # files themselves (is the backup there? is the staged file gone?) to know what was done.
        for i, (rel, _old, new) in enumerate(changes):
            target = self.root / rel
            exists = target.exists() or target.is_symlink()
            step = {
                "rel": rel,
                "backup": f"{i}.orig" if exists else None,
                "new": staged[rel].name if new is not None else None,
                "dirs": [],
            }
            self.done.append(step)
            try:
                if new is not None:
                    missing = []
                    parent = target.parent
                    while not parent.exists():
                        missing.append(parent)
                        parent = parent.parent
                    step["dirs"] = [os.path.relpath(d, self.root) for d in reversed(missing)]
                self._journal()
                for d in step["dirs"]:
                    os.mkdir(self.root / d)
                if exists:
                    os.replace(target, self.dir / step["backup"])
                if new is not None:
                    os.replace(staged[rel], target)
            except OSError as exc:
                raise MigratorError(
                    f"{target}: cannot replace: {_why(exc)}; every file was put back as it was"
                ) from exc
        (self.dir / COMPLETE).touch()  # from here on, a leftover folder is only litter

    def rollback(self) -> None:
        _undo(self.root, self.dir, self.done)


def _undo(root: Path, folder: Path, steps: list[dict]) -> None:
    for step in reversed(steps):
        target = root / step["rel"]
        if (
            step.get("new")
            and not (folder / step["new"]).exists()
            and (target.exists() or target.is_symlink())
        ):
            target.unlink()  # the new version was put in place
        if step.get("backup"):
            backup = folder / step["backup"]
            if backup.exists() or backup.is_symlink():
                os.replace(backup, target)
        for d in reversed(step.get("dirs", [])):
            try:
                os.rmdir(root / d)
            except OSError:
                pass


def recover(root: Path) -> list[str]:
    """Roll back and remove what runs killed during ``apply --write`` left in the tree."""
    root = Path(root)
    notes = []
    try:
        entries = [e for e in root.iterdir() if e.name.startswith(PREFIX)]
    except OSError:
        return notes
    for entry in entries:
        parts = entry.name[len(PREFIX) :].split("-")
        if (
            len(parts) != 3
            or parts[0] != _host()
            or not parts[1].isdigit()
            or _alive(int(parts[1]))
        ):
            continue  # another machine's run, or one still running
        if (entry / COMPLETE).exists():
            shutil.rmtree(entry, ignore_errors=True)
            note = f"{entry}: removed the staging folder of a completed 'apply --write'"
        else:
            try:
                steps = json.loads((entry / JOURNAL).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                steps = []
            _undo(root, entry, steps)
            shutil.rmtree(entry, ignore_errors=True)
            note = (
                f"{entry}: an interrupted 'apply --write' was rolled back ({len(steps)} files "
                "put back) and its staging folder removed"
            )
        print(note, file=sys.stderr)
        notes.append(note)
    return notes


def write_changes(root: Path, changes: list[tuple[str, str | None, str | None]]) -> None:
    recover(root)
    Transaction(root).run(changes)
