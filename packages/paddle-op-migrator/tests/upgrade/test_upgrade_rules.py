"""The upgrade rules are generated from the evidence of a Paddle tree and move with it."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PKG / "scripts"))
sys.path.insert(0, str(PKG / "tests"))

import gen_upgrade_rules as gen  # noqa: E402
import minitree  # noqa: E402

from paddle_op_migrator.upgrade.rewrite import load_rules  # noqa: E402


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini") / "Paddle"
    minitree.build_tree(root)
    return root


def _rules(root):
    return gen.build(gen.Tree(str(root), None, None), "test")


def test_rules_follow_op_compat(mini, tmp_path):
    rules = _rules(mini)["rules"]
    assert rules["matmul"]["new_type"] == "matmul_v2" and rules["matmul"]["kind"] == "rename"
    assert rules["bilinear_interp"]["new_type"] == "bilinear_interp_v2"
    assert rules["matmul"]["defaults"]["alpha"] == 1.0  # read from the OpMaker's SetDefault
    # take the evidence away: matmul no longer collides with a PHI name, so no rule
    tree = tmp_path / "Paddle"
    shutil.copytree(mini, tree)
    compat = tree / "paddle/phi/ops/yaml/op_compat.yaml"
    text = compat.read_text()
    cut = re.sub(r"- op : matmul \(matmul_v2\)\n(?:  .*\n)*", "", text)
    assert cut != text
    compat.write_text(cut)
    data = _rules(tree)
    assert "matmul" not in data["rules"] and "matmul" in data["not_rewritten"]


def test_new_comm_successor_from_ring_id_yaml(mini):
    rules = _rules(mini)["rules"]
    assert (
        rules["c_broadcast"]["kind"] == "new-comm"
        and rules["c_broadcast"]["new_type"] == "broadcast"
    )
    assert rules["c_broadcast"]["inputs"] == {"X": "x"}


def test_shipped_rules_match_a_real_tree():
    """Regenerating from a real Paddle tree gives exactly the shipped rules.json."""
    src = os.environ.get("PADDLE_OP_MIGRATOR_PADDLE_SRC") or os.environ.get("POM_PADDLE_SRC")
    git_dir = os.environ.get("PADDLE_OP_MIGRATOR_PADDLE_GIT")
    commit = os.environ.get("PADDLE_OP_MIGRATOR_PADDLE_COMMIT")
    if not src and not (git_dir and commit):
        pytest.skip("set PADDLE_OP_MIGRATOR_PADDLE_SRC or POM_PADDLE_SRC (checkout) or PADDLE_OP_MIGRATOR_PADDLE_GIT "
                    "and PADDLE_OP_MIGRATOR_PADDLE_COMMIT (git dir at the evidence commit)")  # fmt: skip
    shipped = load_rules()
    made = gen.build(gen.Tree(src, git_dir, commit), shipped["evidence_tree"])
    assert json.loads(json.dumps(made, sort_keys=True)) == shipped
