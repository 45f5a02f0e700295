"""Bad input and hostile conditions: each case checks the exit code, the message (it names the
file and the problem, no traceback) and what is left at the output location or in the tree."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from paddle_op_migrator import transaction
from paddle_op_migrator.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict[str, str]:
    """Every file (and symlink target) of a tree with its content hash and mode."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith(".git/"):
            continue
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha1(p.read_bytes()).hexdigest() + oct(p.stat().st_mode & 0o777)
        elif p.is_dir():
            out[rel] = "dir"
    return out


def leftovers(root: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if ".partial-" in p.name
        or p.name.startswith(transaction.PREFIX)
        or p.name.endswith(".pom.tmp")
    ]


@pytest.fixture()
def plan_file(pristine_tree, tmp_path, capsys):
    inv = tmp_path / "inv.json"
    assert (
        run(
            capsys,
            "scan",
            "--paddle-src",
            pristine_tree,
            "--list",
            pristine_tree / "oplist.txt",
            "--out",
            inv,
        )[0]
        == 0
    )
    assert run(capsys, "plan", "--inventory", inv, "--out", tmp_path / "plan")[0] == 0
    return tmp_path / "plan.json"


# --- damaged or wrong-typed inputs -----------------------------------------------------------


def test_paddle_src_missing(tmp_path, capsys):
    code, _, err = run(
        capsys, "scan", "--paddle-src", tmp_path / "nope", "--out", tmp_path / "i.json"
    )
    assert code == 2 and "nope: not a directory" in err and "Traceback" not in err
    assert not (tmp_path / "i.json").exists()


def test_paddle_src_is_a_file(tmp_path, capsys):
    f = tmp_path / "f.txt"
    f.write_text("x")
    code, _, err = run(capsys, "scan", "--paddle-src", f, "--out", tmp_path / "i.json")
    assert code == 2 and "f.txt: not a directory" in err and not (tmp_path / "i.json").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"nce\n\xff\xfe bad\n", "not UTF-8"),
        (b"nce, 3bad-name\n", "'3bad-name' is not an operator name"),
        (b"# only a comment\n", "the list is empty"),
    ],
)
def test_damaged_list_file(pristine_tree, tmp_path, capsys, content, message):
    lst = tmp_path / "list.txt"
    lst.write_bytes(content)
    code, _, err = run(
        capsys, "scan", "--paddle-src", pristine_tree, "--list", lst, "--out", tmp_path / "i.json"
    )
    assert code == 2 and "list.txt" in err and message in err and "Traceback" not in err
    assert not (tmp_path / "i.json").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{not json", "not a valid inventory JSON file"),
        (b"[1, 2]", "not an inventory written by 'scan'"),
        (b"\xff\xfe{}", "not UTF-8"),
        (
            json.dumps({"schema": "paddle-op-migrator/inventory/1", "ops": []}).encode(),
            "ops: expected an object",
        ),
        (
            json.dumps(
                {"ops": {"nce": {"entries": [], "names": [], "sites": [{"kind": "X"}]}}}
            ).encode(),
            "ops.nce.sites[0]: field 'name' is missing",
        ),
        (
            json.dumps(
                {
                    "ops": {
                        "nce": {
                            "entries": [],
                            "names": [],
                            "sites": [{"kind": "X", "name": "nce", "path": "a.cc", "line": "12"}],
                        }
                    }
                }
            ).encode(),
            "line: expected a int",
        ),
    ],
)
def test_damaged_inventory(tmp_path, capsys, content, message):
    inv = tmp_path / "inv.json"
    inv.write_bytes(content)
    code, _, err = run(capsys, "plan", "--inventory", inv, "--out", tmp_path / "plan")
    assert code == 2 and "inv.json" in err and message in err, err
    assert not list(tmp_path.glob("plan.*"))


@pytest.mark.parametrize(
    "content, message",
    [
        ({"op": "nce"}, "expected a list of decisions, found dict"),
        ([{"op": "nce"}], "decision 0: field 'names' is missing"),
        (
            [
                {
                    "op": "nce",
                    "names": ["nce"],
                    "entries": [],
                    "verdict": "BURN",
                    "rule": "r",
                    "reason": "",
                    "evidence": [],
                    "registrations": [],
                }
            ],
            "verdict 'BURN' is not one of",
        ),
        (
            [
                {
                    "op": "nce",
                    "names": "nce",
                    "entries": [],
                    "verdict": "DELETE",
                    "rule": "r",
                    "reason": "",
                    "evidence": [],
                    "registrations": [],
                }
            ],
            "names: expected a list of strings",
        ),
    ],
)
def test_damaged_plan(pristine_tree, tmp_path, capsys, content, message):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(content))
    before = snapshot(pristine_tree)
    code, out, err = run(capsys, "apply", "--paddle-src", pristine_tree, "--plan", plan, "--write")
    assert code == 2 and "plan.json" in err and message in err, err
    assert snapshot(pristine_tree) == before and out == ""


def test_census_of_the_wrong_kind(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"schema": "other"}))
    b.write_text("[]")
    code, _, err = run(capsys, "audit-diff", a, b, "--out", tmp_path / "d.json")
    assert code == 2 and "not a census" in err and not (tmp_path / "d.json").exists()


def test_baseline_that_is_not_a_folder(pristine_tree, tmp_path, capsys):
    code, _, err = run(
        capsys,
        "verify",
        "--paddle-src",
        pristine_tree,
        "--baseline",
        tmp_path / "none",
        "--no-compile",
    )
    assert code == 2 and "--baseline is not a folder" in err


# --- outputs: existing, unwritable, full -----------------------------------------------------


def test_existing_output_is_refused_then_replaced_with_overwrite(pristine_tree, tmp_path, capsys):
    out = tmp_path / "inv.json"
    out.write_text("keep me")
    args = ["scan", "--paddle-src", pristine_tree, "--list", "task1", "--out", out]
    code, _, err = run(capsys, *args)
    assert code == 2 and "inv.json: exists (pass --overwrite to replace it)" in err
    assert out.read_text() == "keep me"
    assert run(capsys, *args, "--overwrite")[0] == 0
    assert json.loads(out.read_text())["schema"].startswith("paddle-op-migrator/inventory")


def test_plan_refuses_before_writing_any_of_its_three_files(plan_file, tmp_path, capsys):
    (tmp_path / "p2.csv").write_text("mine")
    code, _, err = run(
        capsys, "plan", "--inventory", tmp_path / "inv.json", "--out", tmp_path / "p2"
    )
    assert code == 2 and "p2.csv: exists" in err
    assert not (tmp_path / "p2.json").exists() and not (tmp_path / "p2.md").exists()
    assert (tmp_path / "p2.csv").read_text() == "mine"


def _fail_writes(monkeypatch, err_no):
    real_open = os.open

    def fake_open(path, flags, *a, **k):
        if flags & os.O_CREAT:
            raise OSError(err_no, os.strerror(err_no), str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", fake_open)


@pytest.mark.parametrize(
    "err_no, message",
    [
        (errno.ENOSPC, "no space left on device"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "Permission denied"),
    ],
)
def test_unwritable_output(pristine_tree, tmp_path, capsys, monkeypatch, err_no, message):
    out = tmp_path / "inv.json"
    _fail_writes(monkeypatch, err_no)
    code, _, err = run(
        capsys, "scan", "--paddle-src", pristine_tree, "--list", "task1", "--out", out
    )
    assert code == 2 and message in err and "inv.json" in err and "Traceback" not in err
    assert not out.exists() and not leftovers(tmp_path)


def test_full_disk_while_writing_the_data(pristine_tree, tmp_path, capsys, monkeypatch):
    """ENOSPC surfacing when the data is flushed to disk, after the file was created."""
    out = tmp_path / "inv.json"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run(
        capsys, "scan", "--paddle-src", pristine_tree, "--list", "task1", "--out", out
    )
    assert code == 2 and "no space left on device" in err
    assert not out.exists() and not leftovers(tmp_path)


def test_outputs_get_umask_permissions(pristine_tree, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert (
            run(
                capsys,
                "scan",
                "--paddle-src",
                pristine_tree,
                "--list",
                "task1",
                "--out",
                tmp_path / "a.json",
            )[0]
            == 0
        )
        os.umask(0o077)
        assert (
            run(
                capsys,
                "scan",
                "--paddle-src",
                pristine_tree,
                "--list",
                "task1",
                "--out",
                tmp_path / "b.json",
            )[0]
            == 0
        )
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600


def test_ctrl_c_exits_130(pristine_tree, tmp_path, capsys, monkeypatch):
    import paddle_op_migrator.scanner as scanner

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(scanner, "scan", interrupted)
    code, _, err = run(capsys, "scan", "--paddle-src", pristine_tree, "--out", tmp_path / "i.json")
    assert code == 130 and "interrupted" in err and not (tmp_path / "i.json").exists()


# --- apply --write: all files or none ------------------------------------------------------


def test_a_rename_failing_part_way_rolls_every_file_back(tree, plan_file, capsys, monkeypatch):
    before = snapshot(tree)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 12:  # well into the commit: several files already switched
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    code, _, err = run(capsys, "apply", "--paddle-src", tree, "--plan", plan_file, "--write")
    monkeypatch.undo()
    assert calls["n"] >= 12
    assert (
        code == 2 and "cannot replace: Permission denied; every file was put back as it was" in err
    )
    assert "error: " + str(tree) in err  # names the file
    assert snapshot(tree) == before and not leftovers(tree)


def test_full_disk_while_staging_leaves_the_tree_untouched(tree, plan_file, capsys, monkeypatch):
    before = snapshot(tree)
    real_open = os.open
    n = {"k": 0}

    def full(path, flags, *a, **k):
        if str(path).endswith(".new"):
            n["k"] += 1
            if n["k"] == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", full)
    code, _, err = run(capsys, "apply", "--paddle-src", tree, "--plan", plan_file, "--write")
    monkeypatch.undo()
    assert code == 2 and "no space left on device; nothing in the tree was changed" in err
    assert snapshot(tree) == before and not leftovers(tree)


def test_a_fifo_where_apply_must_edit_is_refused_before_any_write(tree, plan_file, capsys):
    decisions = json.loads(plan_file.read_text())
    assert any(
        d["verdict"] in ("MIGRATE", "MIGRATE_LEGACY") for d in decisions
    )  # they add op_compat entries
    target = tree / "paddle/phi/ops/yaml/op_compat.yaml"
    target.unlink()
    os.mkfifo(target)
    before = snapshot(tree)
    code, _, err = run(capsys, "apply", "--paddle-src", tree, "--plan", plan_file, "--write")
    assert code == 2 and "op_compat.yaml: is not a regular file (FIFO" in err
    assert snapshot(tree) == before and not leftovers(tree)


def test_scan_skips_a_fifo_with_a_warning_instead_of_blocking(pristine_tree, tmp_path):
    tree = tmp_path / "t"
    subprocess.run(["cp", "-a", str(pristine_tree), str(tree)], check=True)
    os.mkfifo(tree / "paddle/fluid/operators/blocked_op.cc")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "paddle_op_migrator.cli",
            "scan",
            "--paddle-src",
            str(tree),
            "--list",
            "task1",
            "--out",
            str(tmp_path / "i.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "blocked_op.cc: not a regular file (FIFO, device or socket), skipped" in proc.stderr


def test_kill_9_mid_write_is_rolled_back_by_the_next_run(tree, plan_file, tmp_path):
    """A real SIGKILL between two renames of the commit; the next apply puts the tree back."""
    before = snapshot(tree)
    script = tmp_path / "killer.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, signal, sys
        real = os.replace
        n = [0]
        def replace(src, dst):
            if str(src).endswith('.orig') or str(dst).endswith('.orig'):
                n[0] += 1
                if n[0] == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(src, dst)
        os.replace = replace
        from paddle_op_migrator.cli import main
        sys.exit(main(["apply", "--paddle-src", {str(tree)!r}, "--plan", {str(plan_file)!r}, "--write"]))
    """)
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL
    staging = [p for p in tree.iterdir() if p.name.startswith(transaction.PREFIX)]
    assert len(staging) == 1 and snapshot(tree) != before  # half edited, as a killed run leaves it
    # scan warns; the next apply rolls the interrupted run back first, says so, then applies
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "paddle_op_migrator.cli",
            "scan",
            "--paddle-src",
            str(tree),
            "--list",
            "task1",
            "--out",
            str(tmp_path / "i.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert "an interrupted 'apply --write' left the tree half edited" in proc.stderr
    notes = transaction.recover(tree)
    assert notes and "rolled back" in notes[0]
    assert snapshot(tree) == before and not leftovers(tree)
