"""Scan + plan time: on a generated tree at Paddle's scale (~15,000 files, ~3M lines), or on a
real Paddle checkout.

    python benchmarks/bench_scan.py [--files 15000] [--list all] [--record]
    python benchmarks/bench_scan.py --paddle-src CHECKOUT [--repeat 2] [--record]

Prints the JSON result and writes it to ``benchmarks/results/bench_scan.local.json`` (generated
tree) or ``bench_scan_realtree.local.json`` (``--paddle-src``); ``--record`` writes the committed
``bench_scan.json`` / ``bench_scan_realtree.json`` instead. The generated tree is the miniature
fixture tree plus filler files (C++ kernels, CUDA, fluid ops, Python, tests) of ~200 lines each.
With ``--paddle-src`` the checkout is scanned with the list ``all`` (the realtree session's
scan) ``--repeat`` times in this process, each run timed; the first run may read files the
page cache does not hold yet. The 1-minute load average before each run is recorded: figures
taken at a load near the core count are not figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from _results import add_record_flag, load_average, write_result  # noqa: E402
from minitree import build_tree  # noqa: E402

from paddle_op_migrator import __version__  # noqa: E402
from paddle_op_migrator.lists import load_list  # noqa: E402
from paddle_op_migrator.planner import plan  # noqa: E402
from paddle_op_migrator.scanner import scan  # noqa: E402


def _machine() -> dict:
    return {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "paddle_op_migrator": __version__,
    }


def _timed(root: Path, entries) -> dict:
    load = load_average()
    t0 = time.perf_counter()
    inv = scan(root, entries)
    t_scan = time.perf_counter() - t0
    t0 = time.perf_counter()
    decisions = plan(inv)
    t_plan = time.perf_counter() - t0
    return {
        "files": inv["files_scanned"],
        "lines": inv["lines_scanned"],
        "ops": len(decisions),
        "scan_s": round(t_scan, 2),
        "plan_s": round(t_plan, 3),
        "scan_plus_plan_s": round(t_scan + t_plan, 2),
        "files_per_s": round(inv["files_scanned"] / t_scan),
        "lines_per_s": round(inv["lines_scanned"] / t_scan),
        "load_1min_before": load,
    }


def generated(files: int, list_name: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="pom-bench-") as tmp:
        root = Path(tmp) / "Paddle"
        t0 = time.perf_counter()
        build_tree(root, scale=files)
        gen = time.perf_counter() - t0
        entries = load_list(list_name) + load_list(str(root / "oplist.txt"))
        res = _timed(root, entries)
    return {**res, "target_s": 30, "generate_s": round(gen, 1), **_machine()}


def real(tree: Path, repeat: int) -> dict:
    if not (tree / "paddle").is_dir():
        raise SystemExit(f"error: {tree}: not a Paddle checkout (no paddle/ folder)")
    rev = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %cs"], capture_output=True, text=True
    ).stdout.strip()
    entries = load_list("all")
    runs = [_timed(tree, entries) for _ in range(repeat)]
    return {
        "tree_commit": rev or "unknown (not a git checkout)",
        "list": "all",
        "runs": runs,
        "scan_plus_plan_s": [r["scan_plus_plan_s"] for r in runs],
        **_machine(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=15000, help="size of the generated tree")
    ap.add_argument("--list", default="all", help="list of the generated-tree run")
    ap.add_argument("--paddle-src", type=Path, help="time a real Paddle checkout instead")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs on --paddle-src")
    add_record_flag(ap)
    args = ap.parse_args()
    if args.paddle_src:
        name, res = "bench_scan_realtree", real(args.paddle_src, args.repeat)
    else:
        name, res = "bench_scan", generated(args.files, args.list)
    print(json.dumps(res, indent=1))
    out = write_result(name, res, args.record)
    print(f"wrote {out.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
