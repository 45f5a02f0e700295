"""Small configs embedded for tests and the demo (layouts of PaddleSpeech's examples, sizes
cut so that export + verification of each takes seconds)."""

from __future__ import annotations

from pathlib import Path

_DIR = Path(__file__).with_name("configs")


def names() -> list[str]:
    return sorted(p.stem for p in _DIR.glob("*.yaml"))


def path(name: str) -> Path:
    p = _DIR / f"{name}.yaml"
    if not p.is_file():
        raise KeyError(f"no embedded config {name!r}; have {', '.join(names())}")
    return p
