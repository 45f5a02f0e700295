"""The operator lists: the two raw Hackathon lists shipped as package data, or a user file.

Every list entry is one kernel *registration site* under ``paddle/fluid/operators`` (a name
repeats once per registering file); some entries are PHI kernel names (``save_combine_tensor``)
rather than op types. Row numbers are kept because upstream PR titles cite them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ._errors import read_text
from .errors import MigratorError

BUILTIN = ("task1", "task2")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Suffixes by which a kernel name differs from the op type that owns it. Generic naming
# conventions of PHI kernels registered from fluid files, not knowledge about particular ops.
GRAD_SUFFIXES = ("_grad_grad", "_grad")
KERNEL_SUFFIXES = (
    "_sparse_coo_tensor",
    "_dense_tensor",
    "_strings",
    "_tensor",
    "_vocab",
    "_coo",
    "_sr",
    "_sparse",
)


@dataclass(frozen=True)
class ListEntry:
    list_name: str
    row: int  # 1-based row in the raw list
    name: str


def _parse_lines(text: str, origin: str) -> list[str]:
    names: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        for part in line.split(","):
            part = part.strip()
            if not part:
                continue
            if not _NAME_RE.match(part):
                raise MigratorError(f"{origin}:{lineno}: {part!r} is not an operator name")
            names.append(part)
    return names


def builtin_text(name: str) -> str:
    return resources.files("paddle_op_migrator").joinpath(f"data/{name}.txt").read_text("utf-8")


def load_list(spec: str) -> list[ListEntry]:
    """``task1``, ``task2``, ``all`` (task1 then task2) or a path to a text file.

    A file holds names separated by newlines and/or commas; ``#`` starts a comment.
    """
    if spec in BUILTIN:
        return [
            ListEntry(spec, i, n) for i, n in enumerate(_parse_lines(builtin_text(spec), spec), 1)
        ]
    if spec == "all":
        return load_list("task1") + load_list("task2")
    path = Path(spec)
    if not path.exists():
        raise MigratorError(f"--list {spec!r}: neither task1/task2/all nor an existing file")
    text = read_text(path, "list")
    entries = [ListEntry(path.name, i, n) for i, n in enumerate(_parse_lines(text, str(path)), 1)]
    if not entries:
        raise MigratorError(f"{path}: the list is empty")
    return entries


def candidate_ops(name: str) -> list[str]:
    """Op types an entry may belong to, most specific first (the name itself first)."""
    out = [name]
    base = name
    for suf in GRAD_SUFFIXES:
        if base.endswith(suf):
            base = base[: -len(suf)]
            out.append(base)
            break
    for suf in KERNEL_SUFFIXES:
        if base.endswith(suf) and len(base) > len(suf):
            out.append(base[: -len(suf)])
    return out
