import json

from minitree import EXPECTED

from paddle_op_migrator.lists import load_list
from paddle_op_migrator.planner import plan, to_csv, to_markdown
from paddle_op_migrator.scanner import scan


def _inv(tree):
    return scan(tree, load_list(str(tree / "oplist.txt")))


def test_every_fixture_op_gets_the_verdict_its_evidence_implies(pristine_tree):
    decisions = {d["op"]: d for d in plan(_inv(pristine_tree))}
    assert set(decisions) == set(EXPECTED)
    wrong = {
        op: (d["verdict"], d["rule"])
        for op, d in decisions.items()
        if (d["verdict"], d["rule"].split("-")[0]) != EXPECTED[op]
    }
    assert not wrong
    for d in decisions.values():  # evidence is path:line into the tree
        assert d["evidence"]
        for ev in d["evidence"]:
            if ":" in ev and not ev.startswith(("replacement", "(")):
                path, line = ev.rsplit(":", 1)
                assert (pristine_tree / path).exists() and int(line) >= 1


def test_name_collisions_are_told_apart(pristine_tree):
    inv = _inv(pristine_tree)
    tri = [s for s in inv["ops"]["trilinear_interp"]["sites"]]
    # _C_ops.trilinear_interp and the PHI kernel are the former _v2 op, not the fluid v1 op
    assert not any(s["kind"] == "c_ops" for s in tri)
    assert not any(s["area"] == "phi_kernel" for s in tri)
    crop = inv["ops"]["crop"]["sites"]
    assert not any(s["path"].endswith("crop_kernel.cc") for s in crop)
    assert inv["phi_aliases"]["crop"] == "crop_tensor"


def test_sites_multiline_ifdef_registry_and_kernel_names(pristine_tree):
    inv = _inv(pristine_tree)
    sites = inv["ops"]["c_allreduce_sum"]["sites"]
    cu = [s for s in sites if s["path"].endswith("c_allreduce_sum_op.cu.cc")]
    assert cu and cu[0]["conditions"] == ["NCCL_VERSION_CODE >= 21000 && CUDA_VERSION >= 11000"]
    assert cu[0]["end_line"] > cu[0]["line"]  # multi-line macro
    assert any(
        s["path"].endswith("custom_device_common_op_registry.cc")
        and s["kind"] == "REGISTER_OP_CUSTOM_DEVICE_KERNEL"
        for s in sites
    )
    entries = {e["name"]: e for e in inv["entries"]}
    assert entries["save_combine_tensor"]["op"] == "save_combine"
    assert entries["nce_grad"]["op"] == "nce"
    assert entries["ncclAllReduce"]["status"] == "absent"
    assert (
        entries["brelu_grad"]["status"] == "found_via_op"
    )  # made by REGISTER_ACTIVATION_OP(brelu)
    assert any("not UTF-8" in w for w in inv["warnings"])
    assert any("binary" in w for w in inv["warnings"])


def test_kernel_name_entries_get_kernel_verdicts(pristine_tree):
    d = {x["op"]: x for x in plan(_inv(pristine_tree))}
    ks = {k["kernel"]: (k["verdict"], k["rule"]) for k in d["save_combine"]["kernels"]}
    # save_combine_tensor is named by save_combine_sig.cc; nothing names save_combine_vocab
    assert ks == {
        "save_combine_tensor": ("MOVE", "K1-kernel-referenced"),
        "save_combine_vocab": ("DELETE", "K2-kernel-unused"),
    }


def test_outputs(pristine_tree):
    decisions = plan(_inv(pristine_tree))
    md = to_markdown(decisions)
    assert "| oplist.txt:1, oplist.txt:2, oplist.txt:3 | `soft_relu` |" in md
    assert "custom-device registry" in md
    assert to_csv(decisions).splitlines()[0].startswith("op,entries,verdict,rule")
    json.dumps(decisions)


def test_rules_fire_on_a_tree_they_have_not_seen(tree):
    """Move evidence: the verdicts move with it (no per-op table)."""
    # give nce a TRT converter: it can no longer be deleted
    (tree / "paddle/fluid/inference/tensorrt/convert/nce_op.cc").write_text(
        "REGISTER_TRT_OP_CONVERTER(nce, NceOpConverter);\n"
    )
    # remove soft_relu's only Python caller: it becomes dead code
    p = tree / "python/paddle/static/nn/common.py"
    p.write_text(p.read_text().replace("soft_relu", "relu"))
    d = {x["op"]: x for x in plan(_inv(tree))}
    assert (d["nce"]["verdict"], d["nce"]["rule"]) == ("MIGRATE", "R6-inference-dependency")
    assert (d["soft_relu"]["verdict"], d["soft_relu"]["rule"]) == ("DELETE", "R9-unused")


def test_builtin_lists_on_fixture_report_absent_not_error(pristine_tree):
    inv = scan(pristine_tree, load_list("all"))
    assert len(inv["entries"]) == 220
    assert sum(e["status"] == "absent" for e in inv["entries"]) > 50
    assert {d["verdict"] for d in plan(inv)} <= {
        "DONE",
        "DELETE",
        "MIGRATE",
        "MIGRATE_LEGACY",
        "REPLACE_THEN_DELETE",
        "KEEP",
    }


def test_rules_found_on_real_paddle_sources(tree):
    """Shapes met in real Paddle files (benchmarks/real_sample.py): an op-version checkpoint,
    an inplace Python API, a BoxPS op without a PS path or #if, a maker not in third place."""
    # nce gets an op-version checkpoint: released programs carry it, it is migrated not deleted
    y = tree / "paddle/phi/ops/yaml/op_version.yaml"
    y.write_text(y.read_text() + "\n- op : nce\n  version :\n    - checkpoint : add attr\n")
    # faster_tokenizer gets a caller through the inplace API name (_legacy_C_ops.x_ calls x)
    (tree / "python/paddle/static/nn/tok.py").write_text(
        "from paddle import _legacy_C_ops\n\n\ndef tok(v, t):\n    return _legacy_C_ops.faster_tokenizer_(v, t)\n"
    )
    # a BoxPS-family op registered from a plain file without #if PADDLE_WITH_BOX_PS
    (tree / "paddle/fluid/operators/push_box_extended_sparse_op.cc").write_text(
        "REGISTER_OPERATOR(push_box_extended_sparse, ops::PushOp, ops::PushOpMaker);\n"
    )
    # an op whose kernel (in its own header) is compiled only for a PSLib build
    (tree / "paddle/fluid/operators/push_dense_op.cc").write_text(
        '#include "paddle/fluid/operators/push_dense_op.h"\n'
        "REGISTER_OPERATOR(push_dense, ops::PushDenseOp, ops::PushDenseOpMaker);\n"
        "PD_REGISTER_STRUCT_KERNEL(push_dense, CPU, ALL_LAYOUT, ops::PushDenseCPUKernel, float) {}\n"
    )
    (tree / "paddle/fluid/operators/push_dense_op.h").write_text(
        "template <typename T>\nvoid PushDenseFunctor() {\n#ifdef PADDLE_WITH_PSLIB\n  Push();\n#endif\n}\n"
    )
    (tree / "extra.txt").write_text("nce\nfaster_tokenizer\npush_box_extended_sparse\npush_dense\n")
    d = {x["op"]: x for x in plan(scan(tree, load_list(str(tree / "extra.txt"))))}
    assert (d["nce"]["verdict"], d["nce"]["rule"]) == ("MIGRATE", "R8b-op-version")
    assert (d["faster_tokenizer"]["verdict"], d["faster_tokenizer"]["rule"]) == (
        "MIGRATE",
        "R7-python-api",
    )
    assert (d["push_box_extended_sparse"]["verdict"], d["push_box_extended_sparse"]["rule"]) == (
        "DELETE",
        "R1-parameter-server",
    )
    assert (d["push_dense"]["verdict"], d["push_dense"]["rule"]) == (
        "DELETE",
        "R1-parameter-server",
    )
