"""The registry of runtime fixes applied to X2Paddle 1.6.0.

Each fix has an id, the root cause it addresses (``R1`` .. ``R21`` of the research note,
repeated in the package README) and an ``apply`` function that patches X2Paddle at runtime
and records how to undo it, so tests can run a conversion with every fix but one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fix:
    id: str
    root_cause: str
    summary: str
    apply_fn: Callable[[Fix], None]
    priority: int = 10  # lower applies first: packaging fixes make x2paddle importable
    applied: bool = False
    unavailable: str = ""  # why the fix could not be applied (framework not installed)
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def patch(self, owner: Any, name: str, value: Any) -> Any:
        """Set ``owner.name = value``, remembering the old value; returns the old value."""
        missing = object()
        old = getattr(owner, name, missing)

        def undo() -> None:
            if old is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, old)

        setattr(owner, name, value)
        self._undo.append(undo)
        return None if old is missing else old

    def on_undo(self, fn: Callable[[], None]) -> None:
        self._undo.append(fn)

    def apply(self) -> None:
        if self.applied:
            return
        try:
            self.apply_fn(self)
        except ImportError as exc:
            # the fix patches a converter whose source framework (torch, onnx,
            # tensorflow) is not installed: nothing to fix until it is
            self.revert()
            self.unavailable = f"{exc}"
            return
        self.applied = True
        self.unavailable = ""

    def revert(self) -> None:
        while self._undo:
            self._undo.pop()()
        self.applied = False


FIXES: dict[str, Fix] = {}


def register(fix_id: str, root_cause: str, summary: str, priority: int = 10):
    """Decorator: register ``fn(fix)`` as the apply function of a fix."""

    def deco(fn: Callable[[Fix], None]) -> Callable[[Fix], None]:
        if fix_id in FIXES:
            raise ValueError(f"duplicate fix id {fix_id}")
        FIXES[fix_id] = Fix(fix_id, root_cause, summary, fn, priority)
        return fn

    return deco


def apply_fixes(exclude: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Apply every registered fix not in ``exclude`` (idempotent); return the applied ids."""
    unknown = set(exclude) - set(FIXES)
    if unknown:
        raise KeyError(f"unknown fix ids: {sorted(unknown)}")
    for fix in sorted(FIXES.values(), key=lambda f: f.priority):
        if fix.id not in exclude:
            fix.apply()
    return [f.id for f in FIXES.values() if f.applied]


def revert_fixes() -> None:
    for fix in reversed(list(FIXES.values())):
        fix.revert()


@contextlib.contextmanager
def without_fix(*fix_ids: str) -> Iterator[None]:
    """Temporarily revert the named fixes (used by tests to show each one is needed)."""
    fixes = [FIXES[i] for i in fix_ids]
    was = [f.applied for f in fixes]
    for f in fixes:
        f.revert()
    try:
        yield
    finally:
        for f, applied in zip(fixes, was):
            if applied:
                f.apply()


def describe() -> list[dict[str, str]]:
    return [
        {
            "id": f.id,
            "root_cause": f.root_cause,
            "summary": f.summary,
            "applied": str(f.applied),
            "unavailable": f.unavailable,
        }
        for f in FIXES.values()
    ]
