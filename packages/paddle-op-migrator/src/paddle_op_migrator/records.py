"""The records passed between the stages, written once: ``scan`` -> inventory (``Site``) ->
``plan`` (``Decision``) -> ``apply``. Reading them back checks every field, so a damaged or
hand-edited inventory or plan is refused with the file and the field named."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from .errors import MigratorError
from .io_utils import read_json
from .scanner import SCHEMA, Site

VERDICTS = ("DELETE", "MIGRATE", "MIGRATE_LEGACY", "REPLACE_THEN_DELETE", "KEEP", "DONE")


@dataclass
class KernelVerdict:
    kernel: str
    verdict: str  # MOVE | DELETE
    rule: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class Decision:
    """One op's verdict: the row of ``plan.json`` / ``plan.md`` / ``plan.csv``."""

    op: str
    names: list[str]
    entries: list[str]
    verdict: str
    rule: str
    reason: str
    evidence: list[str]
    registrations: list[str]
    replacement: str | None = None
    legacy_kernel: bool = False
    kernels: list[KernelVerdict] = field(default_factory=list)
    needs_human: list[str] = field(default_factory=list)
    pr_group: str = "–"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object, where: str) -> Decision:
        if not isinstance(d, dict):
            raise MigratorError(f"{where}: expected an object, found {type(d).__name__}")
        values = _checked(cls, d, where)
        if values["verdict"] not in VERDICTS:
            raise MigratorError(
                f"{where}: verdict {values['verdict']!r} is not one of {', '.join(VERDICTS)}"
            )
        values["kernels"] = [
            KernelVerdict(**_checked(KernelVerdict, k, f"{where}.kernels[{i}]"))
            if isinstance(k, dict)
            else _bad(f"{where}.kernels[{i}]", "an object", k)
            for i, k in enumerate(values.get("kernels") or [])
        ]
        return cls(**values)


def _bad(where: str, want: str, value: object):
    raise MigratorError(f"{where}: expected {want}, found {type(value).__name__}")


_TYPES = {"str": str, "int": int, "bool": bool}


def _checked(cls, d: dict, where: str) -> dict:
    """The fields of dataclass ``cls`` from ``d``, each of the declared type (lists of str)."""
    out = {}
    for f in fields(cls):
        if f.name not in d:
            if f.default is MISSING and f.default_factory is MISSING:
                raise MigratorError(f"{where}: field '{f.name}' is missing")
            continue
        v = d[f.name]
        t = str(f.type)
        if t.startswith("list[") and t != "list[KernelVerdict]":
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                _bad(f"{where}.{f.name}", "a list of strings", v)
        elif t == "str | None":
            if v is not None and not isinstance(v, str):
                _bad(f"{where}.{f.name}", "a string or null", v)
        elif t in _TYPES:
            if not isinstance(v, _TYPES[t]) or (t == "int" and isinstance(v, bool)):
                _bad(f"{where}.{f.name}", f"a {t}", v)
        out[f.name] = v
    return out


def site_from_dict(d: object, where: str) -> Site:
    if not isinstance(d, dict):
        _bad(where, "an object", d)
    return Site(**_checked(Site, d, where))


def load_plan(path: str | Path) -> list[dict]:
    """``plan.json``, every decision checked; returned as the dicts ``apply`` reads."""
    data = read_json(path, "plan")
    if not isinstance(data, list):
        raise MigratorError(
            f"{path}: not a plan written by 'plan' (expected a list of decisions, "
            f"found {type(data).__name__})"
        )
    return [Decision.from_dict(d, f"{path}: decision {i}").to_dict() for i, d in enumerate(data)]


def load_inventory(path: str | Path) -> dict:
    """An inventory written by ``scan``, every site checked."""
    inv = read_json(path, "inventory")
    if not isinstance(inv, dict) or "ops" not in inv:
        raise MigratorError(f"{path}: not an inventory written by 'scan'")
    if inv.get("schema", SCHEMA) != SCHEMA:
        raise MigratorError(
            f"{path}: inventory schema {inv.get('schema')!r}, this version reads {SCHEMA}"
        )
    if not isinstance(inv["ops"], dict):
        _bad(f"{path}: ops", "an object", inv["ops"])
    for op, rec in inv["ops"].items():
        where = f"{path}: ops.{op}"
        if not isinstance(rec, dict):
            _bad(where, "an object", rec)
        for key in ("entries", "names", "sites"):
            if not isinstance(rec.get(key), list):
                _bad(f"{where}.{key}", "a list", rec.get(key))
        rec["sites"] = [
            asdict(site_from_dict(s, f"{where}.sites[{i}]")) for i, s in enumerate(rec["sites"])
        ]
    for key, want in (("phi_aliases", dict), ("phi_comm_ops", list)):
        if key in inv and not isinstance(inv[key], want):
            _bad(f"{path}: {key}", f"a {want.__name__}", inv[key])
    return inv
