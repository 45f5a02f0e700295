"""What upstream really did with each list entry, established without the planner's rules.

Two independent sources, in this order:

1. **The fork's history** (a Paddle checkout at a later commit, e.g. ``develop`` of co63oc/Paddle,
   which is upstream ``develop`` up to 2024-10-24, next to the checkout at the reference commit).
   The scanner is used only to *locate* registration macros in both trees (syntax, no rule):
   * the entry's fluid kernel registrations are gone at the later commit and a PHI kernel of
     the name (or ``legacy_<name>``) is registered under ``paddle/phi`` -> ``migrated`` (or
     ``migrated_legacy``; a PHI name that op_compat gives to another fluid op does not count);
     nothing of the name is registered anywhere any more -> ``deleted``;
   * an entry that is a PHI kernel registered from a fluid file: now registered under
     ``paddle/phi`` -> ``migrated``; registered nowhere -> ``deleted``;
   * still registered as at the reference commit -> not decided yet at that commit.
2. **The wheels** for what the history does not decide (``audit-wheel`` censuses of paddlepaddle
   2.6.2 and 3.3.1, committed under ``benchmarks/results``): a fluid structure kernel left in
   3.3.1 -> ``kept``; a ``legacy_<op>`` kernel -> ``migrated_legacy``; the op still registered
   with a PHI function kernel or a ``pd_op`` -> ``migrated``; the op's proto gone in 3.3.1 while
   ``pd_op.<op>`` and its PHI function kernel exist under a name no other fluid op owns
   (op_compat) -> ``migrated`` (OpMaker removed, op lives in PHI); the proto present in 2.6.2 and gone in 3.3.1 -> ``deleted``.
   Otherwise (GPU-only ops invisible in CPU wheels) -> ``unknown``, left out of the score.

A grad entry (``x_grad``) shares its op's outcome when it has no registration of its own.

    python benchmarks/upstream_outcome.py --before-tree REF_CHECKOUT --after-tree LATER_CHECKOUT \
        [--git-dir FORK_GIT] --out benchmarks/results/upstream_outcome.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from paddle_op_migrator.lists import load_list  # noqa: E402
from paddle_op_migrator.scanner import (  # noqa: E402
    FLUID_KERNEL_MACROS,
    FUNCTION_KERNEL_MACROS,
    OP_MACROS,
    _fluid_op_names,
    build_index,
    interest_names,
    resolve_entry,
)

FLUID_REG = FLUID_KERNEL_MACROS | FUNCTION_KERNEL_MACROS | OP_MACROS


def _regs(idx, name: str, area: str, kinds) -> list:
    return [s for s in idx.sites.get(name, []) if s.area == area and s.kind in kinds]


def _removed_by(git_dir: str | None, before: str, after: str, paths: list[str], name: str) -> str:
    """The first commit between the two trees that touched the name in the files that held it."""
    if not git_dir or not paths:
        return ""
    proc = subprocess.run(
        [
            "git",
            "--git-dir",
            git_dir,
            "log",
            "--reverse",
            "--format=%h %cs %s",
            f"{before}..{after}",
            "-G",
            rf"\b{name}\b",
            "--",
            *sorted(set(paths)),
        ],
        capture_output=True,
        text=True,
    )
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def history_outcome(
    name: str, before_idx, after_idx, phi_alias: dict
) -> tuple[str | None, list[str]]:
    fluid_before = _regs(before_idx, name, "fluid_op", FLUID_KERNEL_MACROS | FUNCTION_KERNEL_MACROS)
    fluid_after = _regs(after_idx, name, "fluid_op", FLUID_KERNEL_MACROS | FUNCTION_KERNEL_MACROS)
    op_after = _regs(after_idx, name, "fluid_op", OP_MACROS | {"LOCAL_REGISTER_MACRO"})
    # a PHI kernel whose name op_compat gives to another fluid op (v1 linear_interp vs PHI
    # linear_interp = fluid linear_interp_v2) is not this op's
    stem = name[:-5] if name.endswith("_grad") else name
    phi_after = (
        []
        if phi_alias.get(stem, stem) != stem
        else _regs(after_idx, name, "phi_kernel", FUNCTION_KERNEL_MACROS)
    )
    legacy_after = _regs(after_idx, "legacy_" + name, "phi_kernel", FUNCTION_KERNEL_MACROS)
    yaml_after = [
        s
        for s in after_idx.sites.get(name, [])
        if s.kind in ("yaml_ops", "yaml_static", "yaml_fused")
    ]
    paths = sorted({s.path for s in fluid_before})
    if not fluid_before or fluid_after:
        return None, paths
    if legacy_after:
        return "migrated_legacy", paths
    if phi_after or (op_after and yaml_after):
        return "migrated", paths
    if not op_after:
        return "deleted", paths
    return None, paths


def wheel_outcome(op: str, before: dict, after: dict, phi_alias: dict) -> str:
    b, a = before.get(op), after.get(op)
    if not a:
        return "unknown"
    if a["struct_kernel"]:
        return "kept"
    if a["legacy_kernel"] or str(a.get("phi_kernel_name") or "").startswith("legacy_"):
        return "migrated_legacy"
    if a["op_proto"] and (a["function_kernel"] or a["pd_op"]):
        return "migrated"
    if not a["op_proto"]:
        if a["pd_op"] and a["function_kernel"] and phi_alias.get(op, op) == op:
            return "migrated"
        if b and b["op_proto"]:
            return "deleted"
    return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before-tree", required=True, help="checkout at the reference commit")
    ap.add_argument(
        "--after-tree", required=True, help="checkout at a later commit of the same history"
    )
    ap.add_argument("--git-dir", help="git dir of the history, to name the commit of each removal")
    ap.add_argument("--before-census", default=str(HERE / "results/census_paddle_2.6.2.json"))
    ap.add_argument("--after-census", default=str(HERE / "results/census_paddle_3.3.1.json"))
    ap.add_argument("--list", default="all")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    entries = load_list(a.list)
    interest = interest_names(entries)
    bidx = build_index(Path(a.before_tree), interest)
    aidx = build_index(Path(a.after_tree), interest)
    phi_alias = {
        y.name: y.fluid
        for y in bidx.yaml_ops
        if y.path.endswith("op_compat.yaml") and y.fluid != y.name
    }
    before = json.loads(Path(a.before_census).read_text())["ops"]
    after = json.loads(Path(a.after_census).read_text())["ops"]
    fluid_ops = _fluid_op_names(bidx)
    rev = {}
    for tree, key in ((a.before_tree, "before"), (a.after_tree, "after")):
        proc = subprocess.run(
            ["git", "-C", tree, "log", "-1", "--format=%h %cs"], capture_output=True, text=True
        )
        rev[key] = proc.stdout.strip()
    out = {}
    for name in dict.fromkeys(e.name for e in entries):
        op, _sites = resolve_entry(name, bidx, fluid_ops)
        outcome, paths = history_outcome(name, bidx, aidx, phi_alias)
        source = f"history {rev['before']} -> {rev['after']}"
        if (
            outcome is None
            and name != op
            and not _regs(bidx, name, "fluid_op", FLUID_KERNEL_MACROS | FUNCTION_KERNEL_MACROS)
        ):
            outcome, paths = history_outcome(
                op, bidx, aidx, phi_alias
            )  # a grad entry follows its op
        detail = ""
        if outcome is not None and a.git_dir:
            detail = _removed_by(
                a.git_dir, rev["before"].split()[0], rev["after"].split()[0], paths, name
            )
        if outcome is None:
            outcome = wheel_outcome(op, before, after, phi_alias)
            source = "wheels 2.6.2 -> 3.3.1"
        out[name] = {"op": op, "outcome": outcome, "source": source, "commit": detail}
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    counts: dict[str, int] = {}
    for r in out.values():
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    print(f"{len(out)} entries: {counts}; wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
