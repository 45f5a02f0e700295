"""Scan + plan on a generated tree at Paddle's scale (~15,000 files, ~3M lines).

    python benchmarks/bench_scan.py [--files 15000] [--list all]

Writes benchmarks/results/bench_scan.json. The tree is the miniature fixture tree plus filler
files (C++ kernels, CUDA, fluid ops, Python, tests) of ~200 lines each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from minitree import build_tree  # noqa: E402
from paddle_op_migrator.lists import load_list  # noqa: E402
from paddle_op_migrator.planner import plan  # noqa: E402
from paddle_op_migrator.scanner import scan  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=15000)
    ap.add_argument("--list", default="all")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pom-bench-") as tmp:
        root = Path(tmp) / "Paddle"
        t0 = time.perf_counter()
        build_tree(root, scale=args.files)
        gen = time.perf_counter() - t0
        entries = load_list(args.list) + load_list(str(root / "oplist.txt"))
        t0 = time.perf_counter()
        inv = scan(root, entries)
        t_scan = time.perf_counter() - t0
        t0 = time.perf_counter()
        decisions = plan(inv)
        t_plan = time.perf_counter() - t0
    total = t_scan + t_plan
    res = {
        "files": inv["files_scanned"],
        "lines": inv["lines_scanned"],
        "ops": len(decisions),
        "scan_s": round(t_scan, 2),
        "plan_s": round(t_plan, 3),
        "scan_plus_plan_s": round(total, 2),
        "files_per_s": round(inv["files_scanned"] / t_scan),
        "lines_per_s": round(inv["lines_scanned"] / t_scan),
        "target_s": 30,
        "generate_s": round(gen, 1),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    out = HERE / "results" / "bench_scan.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
