"""Census of the list's ops in an installed Paddle binary (any version from 2.6), and the
per-op outcome between two censuses. Needs ``paddlepaddle`` or ``paddlepaddle-gpu``."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import MigratorError
from .lists import ListEntry, candidate_ops

SCHEMA = "paddle-op-migrator/census/1"
OUTCOMES = ("migrated", "migrated_legacy", "deleted", "kept", "unchanged")


def _import_paddle():
    try:
        import paddle
        from paddle.base import core
    except ImportError as exc:
        raise MigratorError(
            "audit-wheel needs an installed Paddle: pip install paddlepaddle (CPU) or "
            f"paddlepaddle-gpu, any version from 2.6 ({exc})"
        ) from exc
    return paddle, core


def _names(obj) -> set[str]:
    if isinstance(obj, dict):
        return set(obj)
    return set(obj or [])


def audit_wheel(entries: list[ListEntry]) -> dict:
    paddle, core = _import_paddle()
    ops = sorted(
        {candidate_ops(e.name)[1] if e.name.endswith("_grad") else e.name for e in entries}
    )
    all_ops = set(core.get_all_op_names())
    struct = _names(core._get_registered_phi_kernels("structure"))
    function = _names(core._get_registered_phi_kernels("function"))
    try:
        fluid_kernels = _names(core._get_all_register_op_kernels("fluid"))
    except Exception:  # noqa: BLE001 - older/newer builds
        fluid_kernels = set()
    header = Path(paddle.__file__).parent / "include/paddle/fluid/pir/dialect/operator/ir/pd_op.h"
    pd_ops = (
        set(re.findall(r'return "pd_op\.(\w+)"', header.read_text(encoding="utf-8")))
        if header.exists()
        else None
    )
    c_ops = set(dir(paddle._C_ops))
    legacy_c_ops = set(dir(getattr(paddle, "_legacy_C_ops", object())))
    census = {}
    for op in ops:
        try:
            phi_name = core._get_phi_kernel_name(op)
        except Exception:  # noqa: BLE001
            phi_name = None
        census[op] = {
            "op_proto": op in all_ops,
            "grad_op_proto": op + "_grad" in all_ops,
            "struct_kernel": op in struct,
            "function_kernel": op in function,
            "fluid_kernel": op in fluid_kernels,
            "phi_kernel_name": phi_name or None,
            "legacy_kernel": ("legacy_" + op) in function,
            "pd_op": (op in pd_ops) if pd_ops is not None else None,
            "c_ops": op in c_ops,
            "legacy_c_ops": op in legacy_c_ops,
        }
    return {
        "schema": SCHEMA,
        "paddle_version": paddle.__version__,
        "paddle_commit": getattr(paddle.version, "commit", ""),
        "pd_op_header": pd_ops is not None,
        "ops": census,
    }


def _present(r: dict | None) -> bool:
    return bool(r) and (
        r["op_proto"] or r["struct_kernel"] or r["function_kernel"] or r["fluid_kernel"]
    )


def outcome(before: dict | None, after: dict | None) -> str:
    if not _present(after):
        return "deleted" if _present(before) else "unchanged"
    if not _present(before):
        return "migrated" if after["function_kernel"] else "unchanged"
    fluid_before = before["struct_kernel"] or before["fluid_kernel"]
    fluid_after = after["struct_kernel"] or after["fluid_kernel"]
    if fluid_before and not fluid_after:
        legacy = after["legacy_kernel"] or str(after.get("phi_kernel_name") or "").startswith(
            "legacy_"
        )
        return (
            "migrated_legacy"
            if legacy
            else "migrated"
            if after["function_kernel"] or after["op_proto"]
            else "deleted"
        )
    if fluid_before and fluid_after:
        return "kept"
    return "unchanged"


def audit_diff(before: dict, after: dict) -> dict:
    for c, n in ((before, "BEFORE"), (after, "AFTER")):
        if not isinstance(c, dict) or c.get("schema") != SCHEMA:
            raise MigratorError(f"{n}: not a census written by 'audit-wheel'")
    out = {}
    for op in sorted(set(before["ops"]) | set(after["ops"])):
        b, a = before["ops"].get(op), after["ops"].get(op)
        out[op] = {"outcome": outcome(b, a), "before": b, "after": a}
    return out


def diff_markdown(diff: dict, before: dict, after: dict) -> str:
    counts = {o: sum(d["outcome"] == o for d in diff.values()) for o in OUTCOMES}
    lines = [
        f"# Paddle {before['paddle_version']} -> {after['paddle_version']}",
        "",
        ", ".join(f"{k}: {v}" for k, v in counts.items()),
        "",
        "| op | outcome | before | after |",
        "|---|---|---|---|",
    ]

    def short(r):
        if not r:
            return "–"
        flags = [
            k
            for k in (
                "op_proto",
                "struct_kernel",
                "function_kernel",
                "fluid_kernel",
                "legacy_kernel",
            )
            if r.get(k)
        ]
        return " ".join(flags) or "absent"

    for op, d in diff.items():
        lines.append(f"| `{op}` | {d['outcome']} | {short(d['before'])} | {short(d['after'])} |")
    return "\n".join(lines) + "\n"
