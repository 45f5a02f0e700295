"""Verdicts on real Paddle sources, compared with what upstream did to those ops.

    python benchmarks/real_sample.py --paddle-src DIR [--list all]
        [--before benchmarks/results/census_paddle_2.6.2.json]
        [--after benchmarks/results/census_paddle_3.3.1.json]
        [--in-place] [--no-compile] [--record | --out FILE]

DIR is a Paddle checkout (a real clone at the "before" commit, or a sample of real files in
Paddle's layout). The script runs scan -> plan -> apply --write -> verify -> apply again on a
copy of DIR (``--in-place`` edits DIR itself: use a disposable checkout for a full clone), then
compares each verdict with upstream's outcome for the op.

Upstream's outcome comes from two wheel censuses (``paddle-op-migrator audit-wheel``), before
(2.6.2, Dec 2023) and after (3.3.1): the fluid op proto gone -> ``deleted``; a ``legacy_<op>``
kernel -> ``migrated_legacy``; a fluid structure kernel left -> ``kept``; a PHI function kernel
or a ``pd_op`` op -> ``migrated``. Verdicts map to outcomes as DELETE/REPLACE_THEN_DELETE ->
deleted, MIGRATE/DONE -> migrated, MIGRATE_LEGACY -> migrated_legacy, KEEP -> kept. Only ops
the tree still registers are compared (entries reported absent are skipped). CPU wheels do not
show GPU-only ops: those compare as ``unknown``.

The summary goes to ``benchmarks/results/real_sample.local.json`` (not committed) unless
``--out`` names a file; ``--record`` updates the committed ``real_sample.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import add_record_flag, result_path  # noqa: E402

from paddle_op_migrator.apply import apply_plan  # noqa: E402
from paddle_op_migrator.lists import load_list  # noqa: E402
from paddle_op_migrator.planner import plan  # noqa: E402
from paddle_op_migrator.scanner import scan  # noqa: E402
from paddle_op_migrator.verify import verify  # noqa: E402

EXPECTED_OUTCOME = {
    "DELETE": "deleted",
    "REPLACE_THEN_DELETE": "deleted",
    "MIGRATE": "migrated",
    "DONE": "migrated",
    "MIGRATE_LEGACY": "migrated_legacy",
    "KEEP": "kept",
}


def upstream_outcome(before: dict | None, after: dict | None) -> str:
    """What upstream did to the op, read from the two censuses."""
    if not before or not (
        before["op_proto"] or before["struct_kernel"] or before["function_kernel"]
    ):
        return "unknown"  # not in the CPU wheel (GPU/XPU-only op) or not an op
    if before["op_proto"] and not (after and after["op_proto"]):
        return "deleted"
    if after["legacy_kernel"]:
        return "migrated_legacy"
    if after["struct_kernel"]:
        return "kept"
    if after["function_kernel"] or after.get("pd_op"):
        return "migrated"
    return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--paddle-src", required=True, type=Path)
    ap.add_argument("--list", default="all")
    ap.add_argument("--before", type=Path, default=HERE / "results/census_paddle_2.6.2.json")
    ap.add_argument("--after", type=Path, default=HERE / "results/census_paddle_3.3.1.json")
    ap.add_argument("--in-place", action="store_true", help="edit --paddle-src itself (no copy)")
    ap.add_argument("--no-compile", action="store_true", help="skip the g++ check of verify")
    ap.add_argument("--out", type=Path, help="write the summary here")
    add_record_flag(ap)
    a = ap.parse_args()
    before = json.loads(a.before.read_text())["ops"]
    after = json.loads(a.after.read_text())["ops"]
    t0 = time.perf_counter()
    inv = scan(a.paddle_src, load_list(a.list))
    decisions = plan(inv)
    present = [d for d in decisions if not d["rule"].startswith("R0")]
    rows, agree = [], 0
    for d in present:
        up = upstream_outcome(before.get(d["op"]), after.get(d["op"]))
        ok = up == EXPECTED_OUTCOME[d["verdict"]]
        agree += ok
        rows.append(
            {
                "op": d["op"],
                "entries": d["entries"],
                "verdict": d["verdict"],
                "rule": d["rule"],
                "upstream": up,
                "agree": ok,
            }
        )
    known = [r for r in rows if r["upstream"] != "unknown"]
    entries_known = sum(len(r["entries"]) for r in known)
    entries_agree = sum(len(r["entries"]) for r in known if r["agree"])

    with tempfile.TemporaryDirectory(prefix="pom-real-") as tmp:
        work = a.paddle_src
        if not a.in_place:
            work = Path(tmp) / "Paddle"
            shutil.copytree(a.paddle_src, work, symlinks=True)
        res = apply_plan(work, decisions, write=True)
        rep = verify(work, compile_check=not a.no_compile)
        again = apply_plan(work, decisions)
    summary = {
        "paddle_src": str(a.paddle_src),
        "list": a.list,
        "seconds": round(time.perf_counter() - t0, 2),
        "files_scanned": inv["files_scanned"],
        "ops_compared": len(known),
        "ops_agree": agree,
        "entries_compared": entries_known,
        "entries_agree": entries_agree,
        "ops_unknown_upstream": [r["op"] for r in rows if r["upstream"] == "unknown"],
        "apply": {
            "changed": len(res.changed),
            "deleted": len(res.deleted),
            "created": len(res.created),
            "needs_human": len(res.human),
        },
        "verify": {
            "ok": rep["ok"],
            "problems": rep["problems"],
            "todos": len(rep["todos"]),
            "compile": rep["compile"]["status"],
            "compiled": rep["compile"].get("files", []),
            "compile_reason": rep["compile"].get("reason", ""),
        },
        "second_apply_empty": again.patch == "",
        "ops": rows,
    }
    if a.out is None:
        a.out = result_path("real_sample", a.record)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=2) + "\n")
    print("| op | entries | verdict | rule | upstream | agree |\n|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['op']}` | {len(r['entries'])} | {r['verdict']} | {r['rule']} | {r['upstream']} | "
            f"{'yes' if r['agree'] else ('-' if r['upstream'] == 'unknown' else 'NO')} |"
        )
    print(
        f"\n{agree} of {len(known)} op verdicts ({entries_agree} of {entries_known} list entries) agree with "
        f"upstream's outcome; apply: {summary['apply']}; verify ok={rep['ok']} "
        f"(g++: {rep['compile']['status']}); second apply empty: {summary['second_apply_empty']}"
    )
    print(f"wrote {a.out}")
    return 0 if rep["ok"] and summary["second_apply_empty"] else 1


if __name__ == "__main__":
    sys.exit(main())
