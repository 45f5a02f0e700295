"""Every figure of the README's "Real Paddle sources" section, measured on real checkouts.

    python benchmarks/realtree.py --paddle-src REF_CHECKOUT --later LATER_CHECKOUT \
        [--git-dir FORK_GIT] [--truth TRUTH.csv] [--include DIR ...] --out results.json

1. ``scan`` + ``plan`` of the reference checkout, timed.
2. Upstream's outcome per list entry (``upstream_outcome.py``: the history from the reference to
   the later checkout, then the 2.6.2 -> 3.3.1 wheel censuses), and the plan's agreement with it
   (``score_plan.py``); with ``--truth``, the entries of that file are scored against it and
   reported apart.
3. ``verify`` of the untouched reference checkout, as a user runs it (baseline: its git HEAD).
4. The patch of every DELETE / MIGRATE / MIGRATE_LEGACY / REPLACE_THEN_DELETE op: ``git apply
   --check`` on a fresh copy, ``apply --write`` there, ``verify`` against the untouched checkout
   (consistency of signature mappings, yaml, kernels, CMake, includes; ``g++ -fsyntax-only`` of
   generated and edited C++ files), a second ``apply`` (must change nothing). An op passes when
   its files are in no problem and none of its C++ files fails to compile.
5. ``scan`` + ``plan`` of the later checkout, scored on the entries still registered there.

The copy is made with ``git archive`` into a temporary folder; nothing is written to the
checkouts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import score_plan  # noqa: E402
import upstream_outcome  # noqa: E402

from paddle_op_migrator.apply import APPLIED_VERDICTS, apply_plan  # noqa: E402
from paddle_op_migrator.lists import load_list  # noqa: E402
from paddle_op_migrator.planner import plan  # noqa: E402
from paddle_op_migrator.scanner import scan  # noqa: E402
from paddle_op_migrator.verify import verify  # noqa: E402

ALL = (*APPLIED_VERDICTS, "REPLACE_THEN_DELETE")


def _rev(tree: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %cs"], capture_output=True, text=True
    ).stdout.strip()


def scan_and_plan(tree: Path) -> tuple[dict, list[dict], float]:
    t0 = time.perf_counter()
    inv = scan(tree, load_list("all"))
    decisions = plan(inv)
    return inv, decisions, round(time.perf_counter() - t0, 2)


def outcome(ref: Path, later: Path, git_dir: str | None, tmp: Path) -> dict:
    out = tmp / "outcome.json"
    args = ["--before-tree", str(ref), "--after-tree", str(later), "--out", str(out)]
    upstream_outcome.main(args + (["--git-dir", git_dir] if git_dir else []))
    return json.loads(out.read_text())


def patch_check(ref: Path, decisions: list[dict], tmp: Path, include: list[str]) -> dict:
    res = apply_plan(ref, decisions, verdicts=ALL)
    copy = tmp / "patched"
    copy.mkdir()
    arch = subprocess.run(
        ["git", "-C", str(ref), "archive", "HEAD"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(copy)], input=arch.stdout, check=True)
    (tmp / "all.patch").write_text(res.patch)
    check = subprocess.run(
        ["git", "apply", "--check", str(tmp / "all.patch")],
        cwd=copy,
        capture_output=True,
        text=True,
    )
    apply_plan(copy, decisions, verdicts=ALL, write=True)
    rep = verify(copy, baseline=ref, include=include)
    second = apply_plan(copy, decisions, verdicts=ALL)
    comp, edit = rep["compile"], rep["compile_edited"]
    failed = {f["file"] for f in comp.get("failures", []) + edit.get("failures", [])}
    bad_ops = {}
    for op, files in res.files_by_op.items():
        why = [p for p in rep["problems"] if any(f in p for f in files) or f"'{op}'" in p]
        why += [f"{f}: does not compile" for f in files if f in failed]
        if why:
            bad_ops[op] = why
    ops = sorted(res.files_by_op)
    return {
        "ops_with_a_patch": len(ops),
        "files": len(res.changed),
        "git_apply_check": check.returncode == 0,
        "git_apply_error": check.stderr[-1000:],
        "verify_problems": rep["problems"],
        "compile_generated": {
            k: comp.get(k) for k in ("status", "reason", "files", "not_compiled")
        },
        "compile_generated_failures": [f["file"] for f in comp.get("failures", [])],
        "compile_edited": {
            "status": edit.get("status"),
            "reason": edit.get("reason"),
            "passed": len(edit.get("passed", [])),
            "failed": [f["file"] for f in edit.get("failures", [])],
            "not_checkable": edit.get("not_checkable", []),
        },
        "second_apply_files": len(second.changed),
        "ops_passing": sorted(set(ops) - set(bad_ops))
        if check.returncode == 0 and not second.changed
        else [],
        "ops_failing": bad_ops,
    }


def run(
    ref: Path, later: Path | None, git_dir: str | None, truth: str | None, include: list[str]
) -> dict:
    with tempfile.TemporaryDirectory(prefix="pom-realtree-") as tmpname:
        tmp = Path(tmpname)
        inv, decisions, seconds = scan_and_plan(ref)
        result = {
            "reference": _rev(ref),
            "files_scanned": inv["files_scanned"],
            "lines_scanned": inv["lines_scanned"],
            "scan_plan_seconds": seconds,
            "verdicts": {
                v: sum(d["verdict"] == v for d in decisions)
                for v in sorted({d["verdict"] for d in decisions})
            },
        }
        if later is not None:
            up = outcome(ref, later, git_dir, tmp)
            result["outcome_from"] = _rev(later)
            result["score"] = score_plan.score(
                decisions, up, score_plan.read_truth(truth) if truth else None
            )
            later_inv, later_decisions, later_seconds = scan_and_plan(later)
            still = {e["name"] for e in later_inv["entries"] if e["status"] != "absent"}
            present = {n: o for n, o in up.items() if n in still}
            result["later"] = {
                "commit": _rev(later),
                "scan_plan_seconds": later_seconds,
                "entries_present": len(present),
                "score": score_plan.score(
                    later_decisions, present, score_plan.read_truth(truth) if truth else None
                ),
            }
        untouched = verify(
            ref, compile_check=False
        )  # as a user runs it: against the checkout's HEAD
        result["verify_untouched_problems"] = len(untouched["problems"])
        result["patch"] = patch_check(ref, decisions, tmp, include)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paddle-src", required=True, help="checkout at the reference commit")
    ap.add_argument("--later", help="checkout at a later commit of the same history")
    ap.add_argument("--git-dir", help="the history's git dir (names the commit of each removal)")
    ap.add_argument("--truth", help="CSV of upstream decisions to score against separately")
    ap.add_argument("--include", action="append", default=[], help="extra include folder for g++")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    result = run(
        Path(a.paddle_src), Path(a.later) if a.later else None, a.git_dir, a.truth, a.include
    )
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    for name, g in result.get("score", {}).items():
        print(f"{name}: {g['agree']} of {g['n']} entries agree ({g['agreement']})")
    p = result["patch"]
    print(
        f"scan+plan {result['scan_plan_seconds']} s; verify on the untouched tree: "
        f"{result['verify_untouched_problems']} problems; patch: {len(p['ops_passing'])} of "
        f"{p['ops_with_a_patch']} ops pass; wrote {a.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
