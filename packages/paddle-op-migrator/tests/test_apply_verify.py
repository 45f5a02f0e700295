import shutil
import subprocess

import pytest

from paddle_op_migrator.apply import apply_plan
from paddle_op_migrator.lists import load_list
from paddle_op_migrator.planner import plan
from paddle_op_migrator.scanner import scan
from paddle_op_migrator.verify import paddle_include, verify

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _plan(tree):
    return plan(scan(tree, load_list(str(tree / "oplist.txt"))))


@needs_git
def test_end_to_end_scan_plan_apply_verify_apply_again(tree, tmp_path):
    decisions = _plan(tree)
    res = apply_plan(tree, decisions)
    patch = tmp_path / "all.patch"
    patch.write_text(res.patch)
    subprocess.run(["git", "-C", str(tree), "apply", "--check", str(patch)], check=True)
    res = apply_plan(tree, decisions, write=True)
    assert res.changed
    # DELETE: whole files, blocks in shared files, CMake, yaml, LegacyOpList, USE_OP in tests
    assert not (tree / "paddle/fluid/operators/nce_op.cc").exists()
    assert not (tree / "paddle/fluid/operators/nce_op.h").exists()  # only nce_op.cc included it
    interp = (tree / "paddle/fluid/operators/interpolate_op.cc").read_text()
    assert (
        "REGISTER_OPERATOR(trilinear_interp" not in interp
        and "REGISTER_OPERATOR(bilinear_interp" in interp
    )
    assert "trilinear_interp" not in (tree / "paddle/fluid/operators/interpolate_op.cu").read_text()
    cmake = (tree / "paddle/fluid/operators/CMakeLists.txt").read_text()
    assert "nce_op" not in cmake and "fused_attention_op" in cmake
    compat = (tree / "paddle/phi/ops/yaml/op_compat.yaml").read_text()
    assert "- op : nce" not in compat and "(bilinear_interp_v2)" in compat
    assert (
        "- op : pull_box_sparse" not in (tree / "paddle/phi/ops/yaml/op_version.yaml").read_text()
    )
    legacy = (tree / "paddle/fluid/pir/dialect/operator/utils/utils.cc").read_text()
    assert "NceOp::name()" not in legacy and "SeedOp::name()" in legacy
    t = (tree / "test/cpp/fluid/faster_tokenizer_test.cc").read_text()
    assert "USE_OP_ITSELF(faster_tokenizer)" not in t
    assert "PD_DECLARE_KERNEL(trilinear_interp" in t  # a PHI kernel (old _v2), stays
    assert (
        "REGISTER_OP_CUSTOM_DEVICE_KERNEL(\n      c_embedding"
        not in (tree / "paddle/fluid/operators/custom_device_common_op_registry.cc").read_text()
    )
    act = (tree / "paddle/fluid/operators/activation_op.cc").read_text()
    assert "REGISTER_ACTIVATION_OP(brelu" not in act and "REGISTER_ACTIVATION_OP(relu6" in act
    assert "#define REGISTER_ACTIVATION_OP" in act
    sc = (tree / "paddle/fluid/operators/save_combine_op.cc").read_text()
    assert (
        "PD_REGISTER_KERNEL(save_combine_vocab" not in sc
        and "PD_REGISTER_KERNEL(save_combine_tensor" in sc
    )
    # MIGRATE: PHI side generated, fluid kernel registration removed
    kern = (tree / "paddle/phi/kernels/cpu/soft_relu_kernel.cc").read_text()
    assert "PD_REGISTER_KERNEL(soft_relu" in kern and "TODO" not in kern
    assert "std::log" in kern  # body carried over
    # GPU: the CUDA Compute() and its __global__ helper carried over, registered, fluid one gone
    gpu = (tree / "paddle/phi/kernels/gpu/soft_relu_kernel.cu").read_text()
    assert (
        "TODO" not in gpu
        and "#if 0" not in gpu
        and "PD_REGISTER_KERNEL(soft_relu,\n                   GPU" in gpu
    )
    assert (
        "__global__ void KeSoftRelu" in gpu
        and "KeSoftRelu<T><<<blocks, threads, 0, dev_ctx.stream()>>>" in gpu
    )
    assert "T* out_data = dev_ctx.template Alloc<T>(out);" in gpu and "auto& dev_ctx" not in gpu
    assert (
        "PD_REGISTER_STRUCT_KERNEL"
        not in (tree / "paddle/fluid/operators/soft_relu_op.cu").read_text()
    )
    # a CUDA kernel that is not mechanical (framework::TensorCopy): TODO body, not registered yet ...
    lgpu = (tree / "paddle/phi/kernels/gpu/lod_reset_kernel.cu").read_text()
    assert (
        "TODO(paddle-op-migrator): the fluid CUDA Compute() is not a mechanical translation" in lgpu
    )
    assert "#if 0\nPD_REGISTER_KERNEL(lod_reset" in lgpu and "//     framework::TensorCopy(" in lgpu
    assert (
        "REGISTER_OP_CUDA_KERNEL(\n    lod_reset"
        in (tree / "paddle/fluid/operators/lod_reset_op.cu").read_text()
    )
    # ... so the fluid GPU kernel keeps serving; likewise the XPU kernel nobody ported
    assert (
        "REGISTER_OP_XPU_KERNEL(\n    lookup_table"
        in (tree / "paddle/fluid/operators/lookup_table_op.cc").read_text()
    )
    assert (
        "PD_REGISTER_STRUCT_KERNEL"
        not in (tree / "paddle/fluid/operators/soft_relu_op.cc").read_text()
    )
    static = (tree / "paddle/phi/ops/yaml/inconsistent/static_ops.yaml").read_text()
    assert "- op : soft_relu\n  args : (Tensor x, float threshold = 40.0f)" in static
    assert "func : SoftReluInferMeta" in static and "  backward : soft_relu_grad" in static
    sbw = (tree / "paddle/phi/ops/yaml/inconsistent/static_backward.yaml").read_text()
    assert (
        "- backward_op : soft_relu_grad\n  forward : soft_relu (Tensor x, float threshold = 40.0f) -> Tensor(out)"
        in sbw
    )
    assert (
        "args : (Tensor x, Tensor out_grad, float threshold)" in sbw
        and "output : Tensor(x_grad)" in sbw
    )
    gk = (tree / "paddle/phi/kernels/cpu/soft_relu_grad_kernel.cc").read_text()
    assert "PD_REGISTER_KERNEL(soft_relu_grad" in gk and "TODO" not in gk
    assert (
        "soft_relu_grad"
        not in (tree / "paddle/fluid/operators/soft_relu_op.cc")
        .read_text()
        .split("REGISTER_OPERATOR(soft_relu_grad")[-1]
    )
    assert "- op : legacy_crop (crop)" in compat
    assert "- op : legacy_crop" in (tree / "paddle/phi/ops/yaml/legacy/static_ops.yaml").read_text()
    unary = (tree / "paddle/phi/infermeta/unary.cc").read_text()
    assert "out->set_dims(x.dims());" in unary
    rep = verify(tree)
    assert rep["ok"], rep["problems"]
    assert any(
        "anchor_generator" in t for t in rep["todos"]
    )  # the non-mechanical ones are reported
    assert any(t.startswith("paddle/phi/kernels/gpu/lod_reset_kernel.cu:") for t in rep["todos"])
    inc, _ = paddle_include()
    if inc is not None and shutil.which("g++"):
        assert rep["compile"]["status"] == "passed"
        assert "paddle/phi/kernels/cpu/soft_relu_kernel.cc" in rep["compile"]["files"]
        assert "paddle/phi/kernels/cpu/soft_relu_grad_kernel.cc" in rep["compile"]["files"]
        assert "paddle/phi/kernels/gpu/soft_relu_kernel.cu" in rep["compile"]["files"]  # as C++
        assert any(
            n.startswith(
                "paddle/phi/kernels/gpu/soft_relu_kernel.cu: GPU registration not compiled"
            )
            for n in rep["compile"]["not_compiled"]
        )
    else:
        assert rep["compile"]["status"] == "skipped" and rep["compile"]["reason"]
    again = apply_plan(tree, decisions)
    assert again.patch == "" and again.changed == []


def test_verify_finds_dangling_references(tree):
    (tree / "paddle/fluid/operators/nce_op.cc").unlink()  # deleted by hand, users left behind
    rep = verify(tree, compile_check=False)
    assert not rep["ok"]
    text = "\n".join(rep["problems"])
    assert "CMake source nce_op.cc does not exist" in text
    assert "NceOp" in text
    if shutil.which("git"):
        (tree / "paddle/fluid/operators/nce_op.h").unlink()  # still included by a kept file
        (tree / "paddle/fluid/operators/seed_op.cc").write_text(
            '#include "paddle/fluid/operators/nce_op.h"\n'
            + (tree / "paddle/fluid/operators/seed_op.cc").read_text()
        )
        rep = verify(tree, compile_check=False)
        assert any(
            "seed_op.cc:1: includes paddle/fluid/operators/nce_op.h, which was removed" in p
            for p in rep["problems"]
        )
    sig = tree / "paddle/phi/ops/compat/save_combine_sig.cc"
    sig.write_text("<<<<<<< HEAD\n" + sig.read_text() + "=======\n>>>>>>> other\n")
    assert any("merge-conflict" in p for p in verify(tree, compile_check=False)["problems"])
    (tree / "paddle/phi/ops/yaml/ops.yaml").write_text("- op : a\n- op : a\n  args: [\n")
    assert any("does not parse" in p for p in verify(tree, compile_check=False)["problems"])


def test_compile_check_catches_a_broken_generated_file(tree):
    inc, _ = paddle_include()
    if inc is None or not shutil.which("g++"):
        pytest.skip("needs g++ and an installed paddle wheel")
    decisions = [d for d in _plan(tree) if d["op"] == "soft_relu"]
    apply_plan(tree, decisions, write=True)
    k = tree / "paddle/phi/kernels/cpu/soft_relu_kernel.cc"
    k.write_text(k.read_text().replace("std::log(", "std::not_a_function("))
    rep = verify(tree)
    assert rep["compile"]["status"] == "failed"
    assert any("soft_relu_kernel.cc" in p for p in rep["problems"])


def test_apply_by_op_and_by_verdict(tree):
    decisions = _plan(tree)
    only = apply_plan(tree, decisions, ops=["nce"])
    assert only.changed and all("soft_relu" not in c for c in only.changed)
    dels = apply_plan(tree, decisions, verdicts=["DELETE"])
    assert "paddle/fluid/operators/nce_op.cc" in dels.deleted and not dels.created
    rtd = apply_plan(tree, decisions, verdicts=["REPLACE_THEN_DELETE"], write=True)
    # static-graph callers switched to the new-comm op (slots by position, reduce_type from _sum,
    # attributes the new op does not declare dropped); other callers listed for a human
    assert rtd.changed == ["python/paddle/distributed/fleet/meta_optimizers/sharding_optimizer.py"]
    sh = (tree / rtd.changed[0]).read_text()
    assert (
        "_insert_op(idx, type='all_reduce', inputs={'x': var}, outputs={'out': var},\n"
        "                     attrs={'ring_id': ring_id, 'reduce_type': 0})"
    ) in sh
    assert "append_op(type='all_gather', inputs={'x': var}, outputs={'out': var}" in sh
    assert any(
        "interpreter_util.cc" in h and "switch this caller of 'c_allreduce_sum'" in h
        for h in rtd.human
    )
    assert apply_plan(tree, decisions, verdicts=["REPLACE_THEN_DELETE"]).patch == ""  # idempotent


def test_custom_grad_maker_and_default_maker_give_the_real_grad_inputs(tree):
    decisions = [d for d in _plan(tree) if d["op"] in ("soft_exp", "soft_relu")]
    assert [d["verdict"] for d in decisions] == ["MIGRATE", "MIGRATE"]
    apply_plan(tree, decisions, write=True)
    # soft_exp has a dygraph caller (_legacy_C_ops): ops.yaml/backward.yaml, which generate _C_ops;
    # soft_relu is static-graph only (append_op): inconsistent/static_*.yaml
    assert "- op : soft_exp\n" in (tree / "paddle/phi/ops/yaml/ops.yaml").read_text()
    bw = (tree / "paddle/phi/ops/yaml/backward.yaml").read_text()
    sbw = (tree / "paddle/phi/ops/yaml/inconsistent/static_backward.yaml").read_text()
    # custom SoftExpGradOpMaker: SetInput("Out"), SetInput(GradVarName("Out")), SetOutput(GradVarName("X")),
    # SetAttr("alpha") only; x is not a grad input, so the grad meta comes from out (same dims as x)
    entry = bw.split("- backward_op : soft_exp_grad\n")[1].split("\n\n")[0]
    assert "forward : soft_exp (Tensor x, float alpha = 1.0f, int mode = 0) -> Tensor(out)" in entry
    assert "args : (Tensor out, Tensor out_grad, float alpha)" in entry
    assert "output : Tensor(x_grad)" in entry and "param : [out]" in entry and "TODO" not in entry
    # default maker (DefaultGradOpMaker): forward inputs + output grads, all attributes
    entry = sbw.split("- backward_op : soft_relu_grad\n")[1].split("\n\n")[0]
    assert "args : (Tensor x, Tensor out_grad, float threshold)" in entry and "param : [x]" in entry
    gk = (tree / "paddle/phi/kernels/cpu/soft_exp_grad_kernel.cc").read_text()
    assert (
        "const DenseTensor& out_in,\n    const DenseTensor& out_grad_in,\n    float alpha_in," in gk
    )
    assert "TODO" not in gk and "auto* out = (&out_in);" in gk
    assert (
        "PD_REGISTER_STRUCT_KERNEL(\n    soft_exp_grad"
        not in (tree / "paddle/fluid/operators/soft_exp_op.cc").read_text()
    )


def test_custom_grad_maker_without_a_meta_source_is_a_reported_todo(tree):
    src = tree / "paddle/fluid/operators/soft_exp_op.cc"
    # the forward no longer says Out has X's dims: nothing tells the meta of x_grad
    src.write_text(src.read_text().replace('ctx->SetOutputDim("Out", ctx->GetInputDim("X"));', ""))
    apply_plan(tree, [d for d in _plan(tree) if d["op"] == "soft_exp"], write=True)
    rep = verify(tree, compile_check=False)
    assert any("/backward.yaml:" in t and "x_grad" in t for t in rep["todos"]), rep["todos"]


def test_opmaker_behind_a_file_local_macro_is_expanded(tree):
    decisions = [d for d in _plan(tree) if d["op"] == "tanh_shrink"]
    assert decisions[0]["verdict"] == "MIGRATE"
    res = apply_plan(tree, decisions, write=True)
    static = (tree / "paddle/phi/ops/yaml/inconsistent/static_ops.yaml").read_text()
    assert (
        "- op : tanh_shrink\n  args : (Tensor x, bool use_cudnn = false)\n  output : Tensor(out)"
        in static
    )
    assert (
        "  backward : tanh_shrink_grad" in static
    )  # REGISTER_OPERATOR(KERNEL_TYPE##_grad, ...) expanded
    kern = (tree / "paddle/phi/kernels/cpu/tanh_shrink_kernel.cc").read_text()
    assert "x_data[i] - std::tanh(x_data[i])" in kern and "TODO" not in kern
    act = (tree / "paddle/fluid/operators/activation_op.cc").read_text()
    assert (
        "REGISTER_ACTIVATION_OP(tanh_shrink" in act
        and "PD_REGISTER_STRUCT_KERNEL(\n    tanh_shrink" not in act
    )
    assert not any("tanh_shrink is registered through" in h for h in res.human)


def test_macro_in_an_included_header_is_expanded_and_an_unknown_one_keeps_the_message(tree):
    act = tree / "paddle/fluid/operators/activation_op.cc"
    text = act.read_text()
    start = text.index("#define DECLARE_ACTIVATION_OP_MAKER")
    end = text.index("namespace paddle {", start)
    # the maker macro in activation_op.h, which activation_op.cc includes: still expanded
    (tree / "paddle/fluid/operators/activation_op.h").write_text(text[start:end])
    act.write_text(text[:start] + text[end:])
    res = apply_plan(tree, [d for d in _plan(tree) if d["op"] == "tanh_shrink"])
    assert "paddle/phi/kernels/cpu/tanh_shrink_kernel.cc" in res.created
    # a header it does not include: the macro is unknown, the op is left out with the message
    act.write_text(act.read_text().replace('#include "paddle/fluid/operators/activation_op.h"', ""))
    res = apply_plan(tree, [d for d in _plan(tree) if d["op"] == "tanh_shrink"])
    assert any(
        "tanh_shrink is registered through REGISTER_ACTIVATION_OP(...), which could not be expanded"
        in h
        for h in res.human
    ), res.human
    assert not res.created


def test_legacy_dygraph_callers_are_rewritten_to_the_generated_api(tree):
    decisions = [d for d in _plan(tree) if d["op"] in ("soft_exp", "c_concat")]
    res = apply_plan(tree, decisions, write=True)
    common = (tree / "python/paddle/static/nn/common.py").read_text()
    # _legacy_C_ops.soft_exp(x, 'alpha', alpha): inputs, then every attribute in yaml order
    # (alpha, mode), the missing one from its OpMaker default
    assert (
        "return _C_ops.soft_exp(x, alpha, 0)" in common and "_legacy_C_ops.soft_exp" not in common
    )
    mp = (tree / "python/paddle/distributed/fleet/layers/mpu/mp_ops.py").read_text()
    assert "_C_ops.c_concat(tensor, group.id, 0, group.nranks)" in mp  # ring_id, rank, nranks
    assert "from paddle import _C_ops, _legacy_C_ops" in mp
    # an unsure call is left alone and reported
    mp_path = tree / "python/paddle/distributed/fleet/layers/mpu/mp_ops.py"
    mp_path.write_text(
        mp + "\n\ndef _odd(t):\n    return _legacy_C_ops.c_concat(t, 'bad_attr', 1)\n"
    )
    res = apply_plan(tree, [d for d in _plan(tree) if d["op"] == "c_concat"], write=True)
    assert any("call not rewritten" in h and "bad_attr" in h for h in res.human), res.human
    assert "_legacy_C_ops.c_concat(t, 'bad_attr', 1)" in mp_path.read_text()
