"""The rules weigh evidence by the *kind* of reference. Each test plants one kind of reference,
as Paddle's real sources write it, and checks that the verdict moves (or does not) with it."""

from __future__ import annotations

import textwrap

from paddle_op_migrator.cpp import statement_end
from paddle_op_migrator.lists import load_list
from paddle_op_migrator.planner import plan
from paddle_op_migrator.scanner import scan


def _plan(tree) -> dict[str, dict]:
    return {d["op"]: d for d in plan(scan(tree, load_list(str(tree / "oplist.txt"))))}


def _write(tree, rel, text):
    p = tree / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text))


def test_a_name_in_a_table_is_no_dependency_but_code_acting_on_the_op_is(tree):
    assert _plan(tree)["nce"]["verdict"] == "DELETE"
    # version map, allow-list and a pass's op-type list: tables (op_version_proto.cc, unused_var_check.cc)
    _write(
        tree,
        "paddle/fluid/framework/op_version_proto.cc",
        """
        std::unordered_map<std::string, uint32_t> kCurrentVersion = {
            {"nce", 1},
            {"seed", 2},
        };
        op_compatible_map_["nce"] = {"1.6.0", OpCompatibleType::definite_not};
    """,
    )
    _write(
        tree,
        "paddle/fluid/framework/ir/some_placement_pass.cc",
        """
        const std::unordered_set<std::string> ops = {"nce", "conv2d"};
    """,
    )
    _write(
        tree,
        "python/paddle/static/quantization/config.py",
        """
        QUANT_OPS = ["conv2d", "nce", "mul"]
        IO_NAMES = {"nce": [["X"], ["Out"]]}
    """,
    )
    d = _plan(tree)["nce"]
    assert (d["verdict"], d["rule"]) == ("DELETE", "R9-unused"), d
    # an inference pass that acts on the op type depends on it
    _write(
        tree,
        "paddle/fluid/framework/ir/nce_fuse_pass.cc",
        """
        if (op->Type() == "nce") { Fuse(op); }
    """,
    )
    d = _plan(tree)["nce"]
    assert (d["verdict"], d["rule"]) == ("MIGRATE", "R6-inference-dependency"), d
    assert d["evidence"] == ["paddle/fluid/framework/ir/nce_fuse_pass.cc:2"]


def test_a_onednn_kernel_is_an_inference_dependency(tree):
    _write(
        tree,
        "paddle/fluid/operators/onednn/nce_onednn_op.cc",
        """
        REGISTER_OP_KERNEL(nce, MKLDNN, ::paddle::platform::CPUPlace, ops::NceOneDNNKernel<float>);
    """,
    )
    d = _plan(tree)["nce"]
    assert (d["verdict"], d["rule"]) == ("MIGRATE", "R6-inference-dependency")
    assert d["evidence"] == ["paddle/fluid/operators/onednn/nce_onednn_op.cc:2"]


def test_a_pir_definition_of_the_op_needs_a_kernel(tree):
    ops = tree / "paddle/phi/ops/yaml/inconsistent/static_ops.yaml"
    ops.write_text(
        ops.read_text() + "\n- op : nce\n  args : (Tensor input)\n  output : Tensor(cost)\n"
    )
    d = _plan(tree)["nce"]
    assert (d["verdict"], d["rule"]) == ("MIGRATE", "R7b-pir-op")


def test_an_op_emitted_by_another_ops_grad_maker_is_used(tree):
    (tree / "paddle/fluid/operators/nce_op.cc").write_text(
        (tree / "paddle/fluid/operators/nce_op.cc").read_text()
        + '\nvoid Apply(GradOpPtr<T> grad_op) const override {\n  grad_op->SetType("faster_tokenizer");\n}\n'
    )
    d = _plan(tree)["faster_tokenizer"]
    assert (d["verdict"], d["rule"]) == ("MIGRATE", "R8c-grad-maker")


def test_ps_client_library_and_ps_only_callers_make_a_ps_op(tree):
    path = tree / "paddle/fluid/operators/nce_op.cc"
    original = path.read_text()
    path.write_text('#include "paddle/fluid/framework/fleet/fleet_wrapper.h"\n' + original)
    d = _plan(tree)["nce"]
    assert (d["verdict"], d["rule"]) == ("DELETE", "R1-parameter-server")
    # no include, but the only callers live in the PS stack
    path.write_text(original)
    _write(
        tree,
        "python/paddle/incubate/distributed/fleet/parameter_server/pslib/nce_user.py",
        """
        def f(block):
            block.append_op(type="nce", inputs={})
    """,
    )
    d = _plan(tree)["nce"]
    assert (d["verdict"], d["rule"]) == ("DELETE", "R1-parameter-server")
    _write(
        tree,
        "python/paddle/static/nn/nce_api.py",
        """
        def nce(block):
            block.append_op(type="nce", inputs={})
    """,
    )
    assert _plan(tree)["nce"]["rule"] == "R7-python-api"  # a public API too: migrate


def test_framework_core_needs_a_kernel_that_handles_tensor_arrays(tree):
    assert _plan(tree)["fetch_v2"]["verdict"] == "KEEP"
    path = tree / "paddle/fluid/operators/controlflow/fetch_v2_op.cc"
    path.write_text(path.read_text().replace("LoDTensorArray", "DenseTensor"))
    d = _plan(tree)["fetch_v2"]
    assert d["verdict"] != "KEEP" and d["rule"] != "R5-framework-core"


def test_kernel_names_in_signature_mappings_and_yaml_keep_a_kernel(tree):
    def kernels():
        return {k["kernel"]: k["verdict"] for k in _plan(tree)["save_combine"]["kernels"]}

    assert kernels()["save_combine_vocab"] == "DELETE"
    _write(
        tree,
        "paddle/fluid/operators/ops_signature/save_combine_sig.cc",
        """
        KernelSignature SaveCombineOpArgumentMapping(const ArgumentMappingContext& ctx) {
          return KernelSignature("save_combine_vocab", {"X"}, {}, {});
        }
    """,
    )
    assert kernels()["save_combine_vocab"] == "MOVE"
    (tree / "paddle/fluid/operators/ops_signature/save_combine_sig.cc").unlink()
    ops = tree / "paddle/phi/ops/yaml/inconsistent/static_ops.yaml"
    ops.write_text(
        ops.read_text() + "\n- op : save_vocab\n  args : (Tensor x)\n  output : Tensor(out)\n"
        "  kernel :\n    func : save_combine_vocab\n"
    )
    assert kernels()["save_combine_vocab"] == "MOVE"


def test_new_comm_ops_of_the_legacy_static_yaml_are_replacements(tree):
    d = _plan(tree)
    assert d["c_concat"]["verdict"] == "MIGRATE"
    legacy = tree / "paddle/phi/ops/yaml/legacy/static_ops.yaml"
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_text(
        (legacy.read_text() if legacy.exists() else "")
        + "\n- op : concat_comm\n  args : (Tensor x, int ring_id = 0)\n  output : Tensor(out)\n"
    )
    path = tree / "paddle/fluid/operators/collective/c_concat_op.cc"
    path.rename(path.with_name("c_concat_comm_op.cc"))
    text = path.with_name("c_concat_comm_op.cc").read_text().replace("c_concat", "c_concat_comm")
    path.with_name("c_concat_comm_op.cc").write_text(text)
    (tree / "oplist.txt").write_text((tree / "oplist.txt").read_text() + "\nc_concat_comm\n")
    d = _plan(tree)["c_concat_comm"]
    assert d["rule"] == "R2-new-comm-replacement" and d["replacement"] == "concat_comm"


def test_a_registration_body_goes_with_its_registration():
    text = "PD_REGISTER_KERNEL(save_sr,\n    CPU, ALL_LAYOUT, ops::K, float) {\n  kernel->InputAt(0);\n}\nint x;\n"
    end = statement_end(text, 0)
    assert text[end:].lstrip() == "int x;\n"
