"""What a new user meets first: a fast ``--help`` that imports neither Paddle nor numpy,
``--version``, machine-readable output that parses, and the stdout / stderr split."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib.metadata import version

import paddle_op_migrator
from paddle_op_migrator.records import load_inventory, load_plan

PROBE = """
import sys
from paddle_op_migrator.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("paddle imported" if "paddle" in sys.modules else "paddle not imported", file=sys.stderr)
print("numpy imported" if "numpy" in sys.modules else "numpy not imported", file=sys.stderr)
sys.exit(code)
"""


def _cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, **kw
    )


def _imports_neither(proc) -> bool:
    return "paddle not imported" in proc.stderr and "numpy not imported" in proc.stderr


def test_help_is_fast_and_imports_neither_paddle_nor_numpy():
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = _cli("--help")
        walls.append(time.perf_counter() - t0)
        assert proc.returncode == 0 and _imports_neither(proc), proc.stderr
        assert "usage: paddle-op-migrator" in proc.stdout and "upgrade-program" in proc.stdout
        assert "--overwrite" not in proc.stdout
    assert min(walls) < 1.0, walls
    for sub in ("scan", "plan", "apply", "verify", "upgrade-program"):
        proc = _cli(sub, "--help")
        assert proc.returncode == 0 and _imports_neither(proc), proc.stderr
        assert "--overwrite" in proc.stdout


def test_scan_plan_apply_import_neither_paddle_nor_numpy(pristine_tree, tmp_path):
    inv, plan = tmp_path / "inv.json", tmp_path / "plan"
    lst = str(pristine_tree / "oplist.txt")
    src = ["--paddle-src", str(pristine_tree)]
    for args in (
        ["scan", *src, "--list", lst, "--out", str(inv)],
        ["plan", "--inventory", str(inv), "--out", str(plan)],
        ["apply", *src, "--plan", str(tmp_path / "plan.json"), "--out", str(tmp_path / "p.diff")],
    ):
        proc = _cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert _imports_neither(proc), (args[0], proc.stderr)
    assert (tmp_path / "p.diff").read_text().startswith("diff --git ")


def test_argument_errors_do_not_import_paddle():
    proc = _cli("scan", "--no-such-flag")
    assert proc.returncode == 2 and "paddle-op-migrator scan: error:" in proc.stderr
    assert _imports_neither(proc), proc.stderr


def test_version_is_the_distribution_version():
    proc = _cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"paddle-op-migrator {paddle_op_migrator.__version__}"
    assert paddle_op_migrator.__version__ == version("paddle-op-migrator")


def test_machine_readable_outputs_parse(pristine_tree, tmp_path):
    cli = [sys.executable, "-m", "paddle_op_migrator.cli"]
    inv, plan = tmp_path / "inv.json", tmp_path / "plan"
    lst = str(pristine_tree / "oplist.txt")
    subprocess.run(
        [*cli, "scan", "--paddle-src", str(pristine_tree), "--list", lst, "--out", str(inv)],
        check=True,
        capture_output=True,
    )
    assert load_inventory(inv)["ops"]  # the inventory reads back, every site checked
    subprocess.run(
        [*cli, "plan", "--inventory", str(inv), "--out", str(plan)], check=True, capture_output=True
    )
    decisions = load_plan(tmp_path / "plan.json")
    assert decisions and all(d["verdict"] for d in decisions)
    assert json.loads((tmp_path / "plan.json").read_text()) == decisions
    # the patch on stdout is exactly a patch (messages go to stderr): git apply takes it
    proc = subprocess.run(
        [*cli, "apply", "--paddle-src", str(pristine_tree), "--plan", str(tmp_path / "plan.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.startswith("diff --git ") and "needs a human" in proc.stderr
    patch = tmp_path / "p.diff"
    patch.write_text(proc.stdout)
    check = subprocess.run(
        ["git", "apply", "--check", str(patch)], cwd=pristine_tree, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    # verify's report JSON parses and says what it compared with
    rep = tmp_path / "verify.json"
    subprocess.run(
        [*cli, "verify", "--paddle-src", str(pristine_tree), "--no-compile", "--out", str(rep)],
        capture_output=True,
        text=True,
    )
    data = json.loads(rep.read_text())
    assert data["ok"] is True and data["problems"] == [] and data["baseline"]
