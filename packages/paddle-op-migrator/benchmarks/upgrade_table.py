"""Markdown table of every retired operator of the two lists and what ``upgrade-program`` does
with it, from the artefacts of one run of ``nox -s test-paddle-op-migrator-upgrade``:

* ``build/upgrade-old-models/manifest.json``: the models Paddle 2.6.2 wrote and the list
  operators each really contains; ``results.json``: per model the rewrite, whether Paddle
  3.3.1 translated the *original*, and the three runtimes' max abs diff to 2.6.2;
* ``src/paddle_op_migrator/upgrade/rules.json``: the shipped rules;
* ``benchmarks/results/census_paddle_{2.6.2,3.3.1}.json`` (``audit-wheel``): whether 2.6.2 has
  the operator at all and a CPU kernel for it, and whether 3.3.1 still has it.

    python benchmarks/upgrade_table.py [--models build/upgrade-old-models]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PKG = HERE.parent
sys.path.insert(0, str(PKG / "src"))

from paddle_op_migrator.lists import load_list  # noqa: E402


def print_rules() -> int:
    data = json.loads((PKG / "src/paddle_op_migrator/upgrade/rules.json").read_text())
    print(f"Generated from {data['evidence_tree']}.\n")
    print(
        "| retired op | kind | successor | slots renamed | attributes renamed | must hold their default | transform |"
    )
    print("|---|---|---|---|---|---|---|")
    for op, r in sorted(data["rules"].items()):
        slots = ", ".join(
            f"{k}→{v}" for k, v in {**r["inputs"], **r["outputs"]}.items() if v and k != v
        )
        gone = [k for k, v in r["inputs"].items() if v is None]
        if gone:
            slots += ("; " if slots else "") + "no counterpart: " + ", ".join(gone)
        attrs = ", ".join(f"{k}→{v}" for k, v in r["attrs"].items() if k != v)
        fixed = ", ".join(f"{k}={v}" for k, v in r.get("fixed_attrs", {}).items())
        defaults = ", ".join(f"{k}={json.dumps(v)}" for k, v in r["defaults"].items())
        succ = f"`{r['new_type']}`" if r["new_type"] else "-"
        if r.get("single_card") or r["kind"] == "new-comm":
            succ += " (`assign` on one card)"
        print(
            f"| `{op}` | {r['kind']} | {succ} | {slots or '-'} | {', '.join(x for x in (attrs, fixed) if x) or '-'} "
            f"| {defaults or '-'} | {r.get('transform') or ('`_t_' + op + '`' if r['kind'] == 'decompose' else '-')} |"
        )
    return 0


def family(op: str) -> str:
    """Why no 2.6.2 model of this op is built here (documentation of the table only)."""
    if any(k in op for k in ("sparse", "distributed", "push_dense", "send_and_recv")):
        return "parameter-server op, lives in PS training jobs, not in saved inference programs"
    if op.startswith(("c_", "partial_", "global_", "mp_")) or op in (
        "barrier",
        "alltoall",
        "send_v2",
        "recv_v2",
    ):
        return "collective, runs only with >= 2 ranks (gloo/NCCL), not on one CPU card"
    if op in ("load", "load_combine", "save", "save_combine", "fetch_v2"):
        return "I/O op, never part of a saved inference program (the loader reads the files itself)"
    if op in (
        "assign_pos",
        "limit_by_capacity",
        "number_count",
        "prune_gate_by_capacity",
        "random_routing",
    ):
        return "MoE routing op, only inside distributed MoE layers"
    return "not covered by a 2.6.2 model here (see the README)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", default=str(PKG / "build" / "upgrade-old-models"))
    p.add_argument(
        "--rules", action="store_true", help="print the table of the shipped rules instead"
    )
    a = p.parse_args(argv)
    if a.rules:
        return print_rules()
    models = Path(a.models)
    manifest = json.loads((models / "manifest.json").read_text())
    results = json.loads((models / "results.json").read_text())
    rules = json.loads((PKG / "src/paddle_op_migrator/upgrade/rules.json").read_text())
    old = json.loads((HERE / "results/census_paddle_2.6.2.json").read_text())["ops"]
    new = json.loads((HERE / "results/census_paddle_3.3.1.json").read_text())["ops"]
    entries = load_list("all")
    names: dict[str, list[str]] = {}
    lists: dict[str, set[str]] = {}
    for e in entries:
        op = (
            e.name[: -len("_grad")]
            if e.name.endswith("_grad") and e.name[:-5] in {x.name for x in entries}
            else e.name
        )
        op = op[: -len("_grad")] if op.endswith("_grad_grad") else op
        names.setdefault(op, [])
        if e.name != op and e.name not in names[op]:
            names[op].append(e.name)
        lists.setdefault(op, set()).add(e.list_name)
    cases_of: dict[str, list[dict]] = {}
    unbuildable: dict[str, str] = {}
    for c in manifest["cases"]:
        if "unbuildable" in c:
            unbuildable[c["name"].removeprefix("collective_")] = c["unbuildable"]
            continue
        for op in c["listed_ops"]:
            cases_of.setdefault(op, []).append(c)
    print(
        "| operator | list | 2.6.2 CPU | Paddle 3.3.1 on the old program | upgrade rule | result (max abs diff to 2.6.2: jit.load / predictor / predictor+oneDNN) | models |"
    )
    print("|---|---|---|---|---|---|---|")
    done = 0
    for op in sorted(names):
        o, n = old.get(op, {}), new.get(op, {})
        kernel = o.get("struct_kernel") or o.get("function_kernel") or o.get("fluid_kernel")
        cpu = "no op" if not o.get("op_proto") else ("kernel" if kernel else "no CPU kernel")
        rule = rules["rules"].get(op)
        if rule:
            how = {"rename": f"→ `{rule['new_type']}`" + (f" ({rule['transform']})" if rule.get("transform") else ""),
                   "new-comm": f"→ `assign` (single card) / `{rule['new_type']}` (new-comm)",
                   "identity": "→ `assign` (single card)",
                   "decompose": "rebuilt from current ops"}[rule["kind"]]  # fmt: skip
        else:
            how = "none (" + rules["not_rewritten"].get(op, "not in the rules") + ")"
        cs = cases_of.get(op, [])
        alone = [c for c in cs if c["listed_ops"] == [op]] or cs  # the op's own model first
        before = sorted(
            {
                results[c["name"]]["before"].split(" (at ")[0][:70]
                for c in alone
                if c["name"] in results
            }
        )
        if cs:
            outcomes = [results.get(c["name"], {}) for c in cs]
            refused = [
                r["result"] for r in outcomes if str(r.get("result", "")).startswith("refused")
            ]
            noref = [
                r["result"] for r in outcomes if str(r.get("result", "")).startswith("no 2.6.2")
            ]
            ran = [r for r in outcomes if "jit" in r]
            if ran:
                jit = max(r["jit"] for r in ran)
                pred = max(r["predictor"] for r in ran)
                classes = ", ".join(sorted({r.get("onednn_class", "n/a") for r in ran}))
                result = f"**verified** {jit:.0e} / {pred:.0e} / oneDNN: {classes}"
                done += 1
            elif noref:
                result = "upgraded, " + noref[0]
            else:
                result = "**not upgraded**, " + (refused[0] if refused else "no result")
            if refused and ran:
                result += f"; {len(refused)} model(s) " + refused[0]
            models_s = ", ".join(c["name"] for c in cs)
        elif op in unbuildable:
            result, models_s = (
                f"no model: 2.6.2 refuses it on one card ({unbuildable[op][:70]})",
                "-",
            )
        elif cpu == "no op":
            result, models_s = (
                "no model: 2.6.2 has no operator of this name, no old program holds it",
                "-",
            )
        elif cpu == "no CPU kernel":
            result, models_s = "no model: 2.6.2 CPU has no kernel for it (GPU/XPU only)", "-"
        else:
            result, models_s = f"no model: {family(op)}", "-"
        still = "registered" if n.get("op_proto") else "gone"
        label = ", ".join([f"`{op}`", *[f"`{x}`" for x in names[op]]])
        print(
            f"| {label} | {', '.join(sorted(lists[op]))} | {cpu} | {('; '.join(before) or still)} | {how} | {result} | {models_s} |"
        )
    print(
        f"\n{done} operators verified on models written by Paddle {manifest['paddle']}.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
