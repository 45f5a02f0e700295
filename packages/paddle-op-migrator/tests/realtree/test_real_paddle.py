"""Paddle's real sources (a checkout of PaddlePaddle/Paddle or its fork co63oc/Paddle). Not in CI:
``nox -s realtree-paddle-op-migrator`` with

* ``POM_PADDLE_SRC``: a checkout at the reference commit ``b35679ee58fe`` (the last commit at which
  every entry of both lists is registered under ``paddle/fluid/operators``);
* ``POM_PADDLE_SRC_LATER``: a checkout at a later commit of the same history (e.g. the fork's
  ``develop``, ``8f96a48d56``, 2024-10-24): upstream's outcome comes from the history between the
  two, then the wheel censuses; the rules are also run on it;
* optional ``POM_PADDLE_GIT`` (the git dir, to name each removal's commit), ``POM_UPSTREAM_TRUTH``
  (a CSV of upstream decisions with PR numbers, scored apart), ``POM_INCLUDE`` (extra include
  folders for g++, ``:``-separated), ``POM_RESULTS`` (where to write the figures as JSON).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(HERE / "benchmarks"))

REF = os.environ.get("POM_PADDLE_SRC")
LATER = os.environ.get("POM_PADDLE_SRC_LATER")
pytestmark = pytest.mark.skipif(
    not REF or not Path(REF, "paddle/fluid").is_dir(),
    reason="set POM_PADDLE_SRC to a Paddle checkout at b35679ee58fe (see tests/realtree/test_real_paddle.py)",
)


@pytest.fixture(scope="module")
def result():
    import realtree

    if not LATER:
        pytest.skip("set POM_PADDLE_SRC_LATER to a later checkout of the same history")
    include = [d for d in os.environ.get("POM_INCLUDE", "").split(":") if d]
    res = realtree.run(
        Path(REF),
        Path(LATER),
        os.environ.get("POM_PADDLE_GIT"),
        os.environ.get("POM_UPSTREAM_TRUTH"),
        include,
    )
    if os.environ.get("POM_RESULTS"):
        Path(os.environ["POM_RESULTS"]).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "patch"}, indent=1))
    return res


def test_agreement_with_upstream(result):
    score = result["score"]
    assert score["independent"]["agreement"] >= 0.90, score["independent"]["disagreements"]
    if "truth" in score:
        assert score["truth"]["agreement"] >= 0.90, score["truth"]["disagreements"]


def test_rules_hold_on_the_later_commit(result):
    later = result["later"]["score"]
    n = sum(g["n"] for g in later.values())
    agree = sum(g["agree"] for g in later.values())
    assert n and agree / n >= 0.85, later


def test_scan_and_plan_stay_well_under_30_seconds(result):
    assert result["files_scanned"] > 13000 and result["scan_plan_seconds"] < 30


def test_verify_is_zero_on_the_untouched_tree(result):
    assert result["verify_untouched_problems"] == 0


def test_the_patch_applies_verifies_and_is_idempotent(result):
    p = result["patch"]
    assert p["git_apply_check"], p["git_apply_error"]
    assert p["second_apply_files"] == 0
    # consistency (mappings, yaml, kernels, CMake, includes) and every edited fluid file: no problem
    assert [x for x in p["verify_problems"] if "g++" not in x] == [], p["verify_problems"]
    assert p["compile_edited"]["failed"] == []
    # generated kernels: the ops whose generated code does not compile are named in the README
    assert len(p["ops_passing"]) >= 0.95 * p["ops_with_a_patch"], p["ops_failing"]


def test_verify_catches_the_breakages_of_a_careless_patch(tmp_path):
    """Registrations removed without their bodies (g++ fails on the edited file), and kernels
    deleted that a signature mapping and a yaml entry still name."""
    from paddle_op_migrator.verify import verify

    copy = tmp_path / "tree"
    copy.mkdir()
    arch = subprocess.run(["git", "-C", REF, "archive", "HEAD"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(copy)], input=arch.stdout, check=True)
    save = copy / "paddle/fluid/operators/save_op.cc"
    text = save.read_text()
    # the registration head only: "PD_REGISTER_KERNEL(save_sr, ... ) " without its { ... } body
    save.write_text(re.sub(r"PD_REGISTER_KERNEL\(save_sr,[^)]*\)", "", text))
    # every registration of save_combine_tensor (CPU and GPU files), as a K2 DELETE would
    for combine in (copy / "paddle").rglob("save_combine_op.*"):
        ctext = combine.read_text()
        combine.write_text(
            re.sub(r"PD_REGISTER_KERNEL\(save_combine_tensor,[^{]*\{[^}]*\}", "", ctext)
        )
    include = [d for d in os.environ.get("POM_INCLUDE", "").split(":") if d]
    rep = verify(copy, baseline=Path(REF), include=include)
    text = "\n".join(rep["problems"])
    assert "save_combine_tensor" in text, rep["problems"]
    if rep["compile_edited"]["status"] != "skipped":
        assert "save_op.cc: g++ -fsyntax-only fails after the edit" in text, rep["compile_edited"]
