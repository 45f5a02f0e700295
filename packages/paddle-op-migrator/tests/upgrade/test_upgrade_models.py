"""Old models written by Paddle 2.6.2, upgraded, run by Paddle 3.3.1, compared in the same run.

The session ``test-paddle-op-migrator-upgrade`` makes the models with Paddle 2.6.2
(``make_old_models.py``, reference outputs computed there) and points
``PADDLE_OP_MIGRATOR_OLD_MODELS`` at them; without it these tests skip. Every case is upgraded
with ``upgrade-program`` and run three ways: dygraph ``paddle.jit.load``, the predictor without
oneDNN, and the predictor with oneDNN (in a child process). Tolerance: max abs diff <= 1e-5.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from runtimes import load_io, max_diff, run_jit, run_predictor

from paddle_op_migrator.upgrade.rewrite import load_rules

ATOL = 1e-5
RULES = load_rules()["rules"]
ROOT = os.environ.get("PADDLE_OP_MIGRATOR_OLD_MODELS")
MANIFEST = json.loads((Path(ROOT) / "manifest.json").read_text()) if ROOT else {"cases": []}
CASES = [c for c in MANIFEST["cases"] if "unbuildable" not in c]
ONEDNN_DRIFT = 1e-3  # below this a oneDNN-only difference counts as kernel numerics


def onednn_class(result: dict, prefix: str, want: list) -> tuple[str, str]:
    """Classify the oneDNN predictor's outcome: ("ok", diff) or (defect class, detail)."""
    if result["status"] != "ran":
        err = result.get("error", "not run")
        key = re.sub(r"\(at [^)]*\)|\d+|\[[^\]]*\]", "", err).strip()[:90]
        return f"error: {key}", err
    data = np.load(Path(prefix).parent / "onednn.npz")
    got = [data[f"arr_{i}"] for i in range(len(data.files))]
    if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
        shapes = [(list(g.shape), list(w.shape)) for g, w in zip(got, want)]
        return "wrong output shape", f"(got, want) shapes {shapes}"
    d = max_diff(got, want)
    if d <= ATOL:
        return "ok", f"{d:.1e}"
    return ("numeric drift" if d <= ONEDNN_DRIFT else "wrong values"), f"max abs diff {d:.1e}"


pytestmark = pytest.mark.skipif(ROOT is None, reason="PADDLE_OP_MIGRATOR_OLD_MODELS is not set: "
                                "run `nox -s test-paddle-op-migrator-upgrade` (makes the models with Paddle 2.6.2)")  # fmt: skip


def _translates_unchanged(model: Path) -> str:
    """Does Paddle 3.3.1 translate the *original* program? (for the table: why the upgrade)"""
    import paddle
    from paddle.base import core

    try:
        desc = core.ProgramDesc(model.read_bytes())
        missing = sorted({desc.block(0).op(i).type() for i in range(desc.block(0).op_size())}
                         - set(core.get_all_op_names()) - {"feed", "fetch"})  # fmt: skip
        paddle.pir.translate_to_pir(desc)
        return "translates" + (f" (but {', '.join(missing)} not registered)" if missing else "")
    except Exception as exc:  # noqa: BLE001
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        return "fails: " + (lines[0] if lines else type(exc).__name__)


@pytest.fixture(scope="session")
def upgraded(tmp_path_factory):
    """Upgrade every case once, then run the oneDNN predictor over all of them in one child."""
    from paddle_op_migrator.upgrade import upgrade_program

    out = tmp_path_factory.mktemp("upgraded")
    done = {}
    for c in CASES:
        old = Path(ROOT) / c["name"]
        try:
            res = upgrade_program(old / "model", out / c["name"] / "model", log=lambda m: None)
            done[c["name"]] = {"prefix": str(out / c["name"] / "model"), "rewritten": res.rewritten}
        except Exception as exc:  # noqa: BLE001 - the test of the case reports it
            done[c["name"]] = {"error": f"{type(exc).__name__}: {exc}"}
        done[c["name"]]["before"] = _translates_unchanged(old / "model.pdmodel")
    jobs = [{"name": n, "prefix": d["prefix"], "io": str(Path(ROOT) / n / "io.npz"),
             "out": str(out / n / "onednn.npz")} for n, d in done.items() if "prefix" in d]  # fmt: skip
    (out / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("runtimes.py")),
                           str(out / "jobs.json"), str(out / "onednn.json")],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    onednn = json.loads((out / "onednn.json").read_text()) if (out / "onednn.json").exists() else {}
    for name, r in onednn.items():
        if r["status"] == "started":  # the child died here
            r.update(status="error", error=f"predictor process died (exit {proc.returncode})")
        done[name]["onednn"] = r
    yield done
    report = Path(ROOT) / "results.json"
    report.write_text(json.dumps(done, indent=1, default=str))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_upgraded_model_matches_paddle_262(case, upgraded):
    r = upgraded[case["name"]]
    if "error" in r:
        # a clear refusal is the right outcome only for an operator the rules cannot carry over
        # exactly (no rule, or an input without a counterpart), named in the message
        named = [op for op in case["listed_ops"] if re.search(rf"\b{op}\b", r["error"])]
        unsure = [
            op
            for op in named
            if op not in RULES
            or (None in RULES[op]["inputs"].values() and not RULES[op]["transform"])
        ]
        assert unsure and "cannot" in r["error"], r["error"]
        r["result"] = "refused: " + r["error"].split(": ", 2)[-1].splitlines()[0][:120]
        return
    prefix = r["prefix"]
    assert Path(prefix + ".json").is_file()
    # every retired operator of the program that has a rule was rewritten, no other
    assert set(r["rewritten"]) == set(case["listed_ops"]) & set(RULES), r["rewritten"]
    inputs, want = load_io(Path(ROOT) / case["name"] / "io.npz")
    if want is None:
        # 2.6.2 cannot run this program on CPU (the manifest says why): no parity. The upgraded
        # model was written; a collective of a single-card program is checked for its meaning.
        r["result"] = f"no 2.6.2 reference ({case['no_reference'][:80]})"
        if case["name"].startswith("collective_"):
            x = inputs["x"]
            expected = [np.maximum(x, 0) * 2.0]
            assert max_diff(run_jit(prefix, inputs), expected) <= ATOL
            assert max_diff(run_predictor(prefix, inputs, use_onednn=False), expected) <= ATOL
            r["result"] += "; single-card identity checked"
        return
    got_jit = run_jit(prefix, inputs)
    got_pred = run_predictor(prefix, inputs, use_onednn=False)
    d_jit, d_pred = max_diff(got_jit, want), max_diff(got_pred, want)
    r.update(jit=d_jit, predictor=d_pred)
    assert d_jit <= ATOL, f"jit.load differs from Paddle 2.6.2 by {d_jit}"
    assert d_pred <= ATOL, f"predictor (no oneDNN) differs from Paddle 2.6.2 by {d_pred}"
    # the oneDNN predictor runs the same program through Paddle's oneDNN passes and kernels; its
    # outcome is classified here and judged against the control models below
    one = r.get("onednn", {"status": "error", "error": "not run"})
    r["onednn_class"], r["onednn_detail"] = onednn_class(one, prefix, want)


def test_onednn_failures_are_paddles_own(upgraded):
    """Every way the oneDNN predictor fails on an upgraded model also shows, in the same run, on
    a control model that has no retired operator (Paddle 3's own defects, not the upgrade's)."""
    seen = {n: r for n, r in upgraded.items() if "onednn_class" in r}
    runnable = [
        c for c in CASES if c["no_reference"] is None and "error" not in upgraded[c["name"]]
    ]
    if len(seen) < len(runnable):
        pytest.skip("run together with the per-model tests")
    by_name = {c["name"]: c for c in CASES}
    control = {r["onednn_class"] for n, r in seen.items() if not by_name[n]["listed_ops"]}
    upgraded_only = {n: r["onednn_class"] for n, r in seen.items()
                     if by_name[n]["listed_ops"] and r["onednn_class"] not in control | {"ok"}}  # fmt: skip
    assert not upgraded_only, f"oneDNN fails only on upgraded models: {upgraded_only}"


@pytest.mark.parametrize(
    "name", [c["name"] for c in CASES if c["name"].startswith("collective_c_")]
)
def test_collectives_to_new_communication_ops(name, tmp_path):
    """--collectives new-comm: the program keeps its collectives, as new-communication ops that
    Paddle 3 translates (running them needs a distributed launch, not available here)."""
    from paddle_op_migrator.upgrade import upgrade_program

    res = upgrade_program(
        Path(ROOT) / name / "model", tmp_path / "m", collectives="new-comm", log=lambda m: None
    )
    ops = [
        op["#"]
        for op in json.loads(res.model.read_text())["program"]["regions"][0]["blocks"][0]["ops"]
    ]
    rule = RULES[name.removeprefix("collective_")]
    if rule["kind"] == "new-comm":
        assert f"1.{rule['phi']}" in ops, ops
    else:  # no new-comm successor: Paddle 3 still registers the op, which is kept as it is
        assert res.rewritten == {}
