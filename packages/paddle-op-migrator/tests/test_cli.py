import json

from paddle_op_migrator.cli import main


def test_not_a_paddle_tree_fails_clearly_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "inv.json"
    assert main(["scan", "--paddle-src", str(tmp_path), "--list", "task1", "--out", str(out)]) == 2
    assert "not a Paddle source tree" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


def test_fluid_dir_gone_is_a_warning_not_an_error(tmp_path, capsys):
    (tmp_path / "paddle/phi").mkdir(parents=True)
    out = tmp_path / "inv.json"
    assert main(["scan", "--paddle-src", str(tmp_path), "--list", "task2", "--out", str(out)]) == 0
    assert "is gone" in capsys.readouterr().err
    inv = json.loads(out.read_text())
    assert all(e["status"] == "absent" for e in inv["entries"])


def test_unknown_names_are_absent_and_full_cli_flow(pristine_tree, tmp_path, capsys):
    lst = tmp_path / "l.txt"
    lst.write_text("nce\nno_such_op_anywhere\n")
    inv = tmp_path / "inv.json"
    assert (
        main(["scan", "--paddle-src", str(pristine_tree), "--list", str(lst), "--out", str(inv)])
        == 0
    )
    assert main(["plan", "--inventory", str(inv), "--out", str(tmp_path / "plan")]) == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert {d["op"]: d["verdict"] for d in plan} == {"nce": "DELETE", "no_such_op_anywhere": "DONE"}
    assert (tmp_path / "plan.md").exists() and (tmp_path / "plan.csv").exists()
    assert (
        main(
            [
                "apply",
                "--paddle-src",
                str(pristine_tree),
                "--plan",
                str(tmp_path / "plan.json"),
                "--out",
                str(tmp_path / "p.diff"),
            ]
        )
        == 0
    )
    assert "deleted file mode" in (tmp_path / "p.diff").read_text()


def test_bad_inventory_and_unknown_op(pristine_tree, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["plan", "--inventory", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "bad.json" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
    assert (
        main(
            [
                "apply",
                "--paddle-src",
                str(pristine_tree),
                "--list",
                str(pristine_tree / "oplist.txt"),
                "--op",
                "nope",
            ]
        )
        == 2
    )
    assert "not in the plan" in capsys.readouterr().err


def test_unreadable_file_is_a_warning(tree, tmp_path, capsys):
    (tree / "paddle/fluid/operators/dangling_op.cc").symlink_to(tree / "does/not/exist.cc")
    out = tmp_path / "inv.json"
    assert main(["scan", "--paddle-src", str(tree), "--list", "task1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "dangling_op.cc: unreadable, skipped" in err
    assert "not UTF-8" in err and "binary file" in err


def test_audit_wheel_without_paddle_names_both_wheels(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "paddle", None)  # import paddle -> ImportError
    out = tmp_path / "c.json"
    assert main(["audit-wheel", "--list", "task1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "paddlepaddle" in err and "paddlepaddle-gpu" in err and not out.exists()


def test_help_explains_the_workflow(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "no Paddle installation needed" in capsys.readouterr().out
