"""Runs against whatever paddle is installed: 3.3.1 in test-paddle-op-migrator, 2.6.2 in
test-paddle-op-migrator-audit262."""

import json

import pytest

from paddle_op_migrator.audit import SCHEMA, audit_diff, audit_wheel, diff_markdown
from paddle_op_migrator.cli import main
from paddle_op_migrator.lists import load_list

paddle = pytest.importorskip("paddle")
V = tuple(int(x) for x in paddle.__version__.split(".")[:2])


@pytest.fixture(scope="module")
def census():
    return audit_wheel(load_list("all"))


def test_census_of_installed_wheel(census):
    assert census["schema"] == SCHEMA and census["paddle_version"] == paddle.__version__
    ops = census["ops"]
    assert ops["fetch_v2"]["op_proto"] and ops["fetch_v2"]["struct_kernel"]  # kept upstream
    struct = sorted(op for op, r in ops.items() if r["struct_kernel"])
    if V >= (3, 3):
        # only the three ops upstream kept are still fluid struct kernels
        assert struct == ["fetch_v2", "recv_v2", "send_v2"]
        assert ops["crop"]["phi_kernel_name"] == "legacy_crop" and ops["crop"]["legacy_kernel"]
        assert census["pd_op_header"] and ops["matmul"]["pd_op"]
    elif V == (2, 6):
        # the "before" population: the list ops were still fluid struct kernels
        assert len(struct) >= 40 and "c_allreduce_sum" in struct and "row_conv" in struct
        assert not census["pd_op_header"]
        assert not ops["crop"]["legacy_kernel"]


def test_audit_diff_outcomes(census, tmp_path):
    same = audit_diff(census, census)
    assert {d["outcome"] for d in same.values()} <= {"kept", "unchanged"}
    before = json.loads(json.dumps(census))
    after = json.loads(json.dumps(census))
    rec = {
        "op_proto": True,
        "grad_op_proto": False,
        "struct_kernel": True,
        "function_kernel": False,
        "fluid_kernel": False,
        "phi_kernel_name": None,
        "legacy_kernel": False,
        "pd_op": None,
        "c_ops": False,
        "legacy_c_ops": True,
    }
    before["ops"] = {"a": dict(rec), "b": dict(rec), "c": dict(rec), "d": dict(rec)}
    after["ops"] = {
        "a": dict(rec, struct_kernel=False, function_kernel=True),
        "b": dict(rec, struct_kernel=False, function_kernel=True, legacy_kernel=True),
        "c": dict(rec, struct_kernel=False, op_proto=False),
        "d": dict(rec),
    }
    d = audit_diff(before, after)
    assert {k: v["outcome"] for k, v in d.items()} == {
        "a": "migrated",
        "b": "migrated_legacy",
        "c": "deleted",
        "d": "kept",
    }
    assert "| `b` | migrated_legacy |" in diff_markdown(d, before, after)
    b, a = tmp_path / "b.json", tmp_path / "a.json"
    b.write_text(json.dumps(before))
    a.write_text(json.dumps(after))
    assert main(["audit-diff", str(b), str(a), "--out", str(tmp_path / "d.json")]) == 0
    assert json.loads((tmp_path / "d.json").read_text())["c"]["outcome"] == "deleted"
    assert main(["audit-diff", str(b), str(tmp_path / "d.json")]) == 2  # not a census


def test_cli_audit_wheel(tmp_path):
    assert main(["audit-wheel", "--list", "task2", "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["schema"] == SCHEMA
