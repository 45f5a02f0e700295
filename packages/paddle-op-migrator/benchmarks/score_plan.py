"""Score a plan against what upstream did, per list entry (the unit of the lists).

Classes compared: ``deleted`` (DELETE, REPLACE_THEN_DELETE), ``migrated`` (MIGRATE,
MIGRATE_LEGACY, DONE: the op lives on, backed by PHI) and ``kept`` (KEEP). An entry that is a PHI
kernel name registered from a fluid file (``save_combine_tensor``) is scored by its kernel verdict
(MOVE = migrated, DELETE = deleted).

Upstream's outcome comes from ``upstream_outcome.py`` (history + wheels, no planner rule). A truth
file (CSV with ``op`` = entry name and ``upstream_decision``, e.g. from upstream PR review) may be
given too: its entries are scored against it and reported separately from the others.

    python benchmarks/score_plan.py --plan plan.json --outcome upstream_outcome.json \
        [--truth truth.csv] [--json result.json] [--markdown result.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

CLASSES = ("deleted", "migrated", "kept")


def verdict_class(verdict: str) -> str:
    if verdict in ("DELETE", "REPLACE_THEN_DELETE"):
        return "deleted"
    if verdict == "KEEP":
        return "kept"
    return "migrated"


def outcome_class(outcome: str) -> str | None:
    for c in CLASSES:
        if outcome.startswith(c):
            return c
    return None


def entry_verdicts(plan: list[dict]) -> dict[str, tuple[str, str, str]]:
    """entry name -> (class, verdict, rule)."""
    out = {}
    for d in plan:
        kern = {k["kernel"]: k for k in d.get("kernels", [])}
        for name in d["entry_names"] if "entry_names" in d else d["names"]:
            if name in kern:
                k = kern[name]
                out[name] = (
                    "migrated" if k["verdict"] == "MOVE" else "deleted",
                    k["verdict"],
                    k["rule"],
                )
            else:
                out[name] = (verdict_class(d["verdict"]), d["verdict"], d["rule"])
    return out


def score(plan: list[dict], outcome: dict, truth: dict[str, str] | None = None) -> dict:
    verdicts = entry_verdicts(plan)
    groups: dict[str, dict] = {}
    for name, up in outcome.items():
        group = "truth" if truth and name in truth else "independent"
        expected = outcome_class(truth[name]) if group == "truth" else outcome_class(up["outcome"])
        g = groups.setdefault(
            group, {"n": 0, "agree": 0, "unknown": [], "confusion": {}, "disagreements": []}
        )
        if expected is None:
            g["unknown"].append(name)
            continue
        got, verdict, rule = verdicts.get(name, ("migrated", "?", "?"))
        g["n"] += 1
        g["agree"] += got == expected
        key = f"{expected}->{got}"
        g["confusion"][key] = g["confusion"].get(key, 0) + 1
        if got != expected:
            g["disagreements"].append(
                {
                    "entry": name,
                    "op": up["op"],
                    "upstream": expected,
                    "plan": verdict,
                    "rule": rule,
                    "upstream_source": up.get("commit") or up.get("source"),
                }
            )
    for g in groups.values():
        g["agreement"] = round(g["agree"] / g["n"], 3) if g["n"] else None
    return groups


def to_markdown(groups: dict) -> str:
    lines = []
    for name, g in groups.items():
        lines += [
            f"### {name}: {g['agree']} of {g['n']} entries agree ({100 * (g['agreement'] or 0):.0f} %)"
            + (f", {len(g['unknown'])} without a known outcome" if g["unknown"] else ""),
            "",
            "| upstream \\ plan | " + " | ".join(CLASSES) + " |",
            "|---|---|---|---|",
        ]
        for e in CLASSES:
            lines.append(
                f"| {e} | "
                + " | ".join(str(g["confusion"].get(f"{e}->{p}", 0)) for p in CLASSES)
                + " |"
            )
        lines.append("")
        for d in g["disagreements"]:
            lines.append(
                f"* `{d['entry']}` (op `{d['op']}`): upstream {d['upstream']}, plan {d['plan']} "
                f"({d['rule']}); upstream: {d['upstream_source']}"
            )
        lines.append("")
    return "\n".join(lines)


def read_truth(path: str) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["op"]: r["upstream_decision"] for r in csv.DictReader(fh)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", required=True)
    ap.add_argument("--outcome", required=True, help="JSON from upstream_outcome.py")
    ap.add_argument("--truth", help="CSV of upstream decisions (op, upstream_decision)")
    ap.add_argument("--json", help="write the score here")
    ap.add_argument("--markdown", help="write the tables here")
    a = ap.parse_args(argv)
    plan = json.loads(Path(a.plan).read_text())
    outcome = json.loads(Path(a.outcome).read_text())
    groups = score(plan, outcome, read_truth(a.truth) if a.truth else None)
    md = to_markdown(groups)
    print(md)
    if a.json:
        Path(a.json).write_text(json.dumps(groups, indent=1) + "\n")
    if a.markdown:
        Path(a.markdown).write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
