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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", default=str(PKG / "build" / "upgrade-old-models"))
    a = p.parse_args(argv)
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
        before = sorted(
            {
                results[c["name"]]["before"].split(" (at ")[0][:70]
                for c in cs
                if c["name"] in results
            }
        )
        if cs:
            rows = []
            ok = True
            for c in cs:
                r = results.get(c["name"], {})
                if "jit" in r:
                    rows.append(f"{r['jit']:.0e} / {r['predictor']:.0e} / {r.get('onednn_class')}")
                elif r.get("result"):
                    rows.append(r["result"])
                else:
                    ok = False
                    rows.append(r.get("error", "not run")[:60])
            worst = "verified" if ok else "FAILED"
            jit = max((results[c["name"]].get("jit", 0) or 0) for c in cs if c["name"] in results)
            pred = max(
                (results[c["name"]].get("predictor", 0) or 0) for c in cs if c["name"] in results
            )
            classes = sorted(
                {
                    results[c["name"]].get("onednn_class") or "n/a"
                    for c in cs
                    if c["name"] in results
                }
            )
            nored = [c for c in cs if c.get("no_reference")]
            if nored:
                result = (
                    "upgraded; 2.6.2 cannot run it on CPU ("
                    + nored[0]["no_reference"][:60]
                    + "), single-card identity checked"
                )
            else:
                result = f"**{worst}** {jit:.0e} / {pred:.0e} / oneDNN: {', '.join(classes)}"
            done += ok
            models_s = ", ".join(c["name"] for c in cs)
        elif op in unbuildable:
            result, models_s = (
                f"not built: 2.6.2 refuses it on one card ({unbuildable[op][:70]})",
                "-",
            )
        elif cpu == "no op":
            result, models_s = "no old program can hold it (no operator of this name in 2.6.2)", "-"
        elif cpu == "no CPU kernel":
            result, models_s = (
                "not built: 2.6.2 CPU has no kernel for it (GPU/XPU/distributed only)",
                "-",
            )
        else:
            result, models_s = "not built: needs a distributed / parameter-server job to run", "-"
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
