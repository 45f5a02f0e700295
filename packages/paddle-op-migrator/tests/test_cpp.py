from paddle_op_migrator.cpp import expand_local_macros

SRC = r"""#include "paddle/fluid/operators/activation_op.h"
#define DECLARE_MAKER(OP_NAME, COMMENT)                \
  class OP_NAME##OpMaker : public OpProtoAndCheckerMaker { \
    void Make() override {                             \
      AddInput("X", "Input of " #OP_NAME " op, OP_NAME stays");  \
      AddComment(COMMENT);                             \
    }                                                  \
  }
#define REG(KT, NAME, ...) REGISTER_OPERATOR(KT, ops::Op, ops::NAME##OpMaker, __VA_ARGS__)
#define OBJECT_LIKE 42
DECLARE_MAKER(TanhShrink, "x - tanh(x)");
REG(tanh_shrink, TanhShrink, ops::GradMaker<paddle::framework::OpDesc, true>, ops::Inplace);
FOREIGN_MACRO(tanh_shrink, TanhShrink);
"""


def test_expand_local_macros_pastes_stringizes_and_keeps_foreign_macros():
    out, used = expand_local_macros(SRC)
    assert used == ["DECLARE_MAKER", "REG"]
    assert "class TanhShrinkOpMaker : public OpProtoAndCheckerMaker" in out
    # #OP_NAME stringized; a parameter name inside a string literal of the body is not replaced
    assert 'AddInput("X", "Input of " "TanhShrink" " op, OP_NAME stays");' in out
    assert 'AddComment("x - tanh(x)");' in out
    # __VA_ARGS__ with commas inside template arguments, and ## pasting
    assert (
        "REGISTER_OPERATOR(tanh_shrink, ops::Op, ops::TanhShrinkOpMaker, "
        "ops::GradMaker<paddle::framework::OpDesc, true>, ops::Inplace);"
    ) in out
    assert "FOREIGN_MACRO(tanh_shrink, TanhShrink);" in out  # defined elsewhere: left alone
    assert "#define OBJECT_LIKE 42" in out and "#define DECLARE_MAKER" not in out


def test_expand_local_macros_without_macros_is_identity():
    text = "REGISTER_OPERATOR(a, ops::AOp, ops::AOpMaker);\n"
    assert expand_local_macros(text) == (text, [])


def test_parse_op_reads_fillers_in_any_order_base_makers_and_inplace():
    from paddle_op_migrator.codegen import parse_op, yaml_entry

    text = r"""
class XOp : public framework::OperatorWithKernel {};
class XOpMaker : public framework::OpProtoAndCheckerMaker {
 public:
  void Make() override {
    AddInput("TopK_Idx", "idx");
    AddOutput("Out", "out");
    AddAttr<int>("ring_id", "ring").SetDefault(0);
  }
};
template <typename T>
class XGradMaker : public framework::SingleGradOpMaker<T> {
 protected:
  void Apply(GradOpPtr<T> retv) const override { retv->SetType("all_reduce"); }
};
DECLARE_INPLACE_OP_INFERER(XInplaceInferer, {"TopK_Idx", "Out"});
REGISTER_OPERATOR(x, ops::XOp, ops::XGradMaker<paddle::framework::OpDesc>,
                  ops::XGradMaker<paddle::imperative::OpBase>, ops::XOpMaker, ops::XInplaceInferer);
class YOpMaker : public CBaseOpMaker {
 protected:
  void ExtraMake() override { AddInput("Cond", "c").AsDispensable(); }
};
REGISTER_OPERATOR(y, ops::YOp, ops::YOpMaker);
"""
    spec = parse_op(text, "x")
    assert [a.name for a in spec.inputs] == ["TopK_Idx"] and spec.grad_maker == "XGradMaker"
    entry = yaml_entry(spec, "x", "XInferMeta")
    assert (
        "args : (Tensor top_k_idx, int ring_id = 0)" in entry
        and "inplace : (top_k_idx -> out)" in entry
    )
    assert parse_op(text, "y").missing_base == "CBaseOpMaker"  # its inputs are unknown: not guessed


def test_comm_caller_rewrite_adds_reduce_type_and_refuses_what_does_not_map():
    from paddle_op_migrator.pyrewrite import rewrite_comm_callers, yaml_signature

    sig = yaml_signature(
        "- op : all_reduce\n  args : (Tensor x, int ring_id = 0, int reduce_type = 0)\n"
        "  output : Tensor(out)\n"
    )
    assert sig == (["x"], ["out"], ["ring_id", "reduce_type"])
    text = (
        "b.append_op(type='c_allreduce_max', inputs={'X': v}, outputs={'Out': v},)\n"
        "b.append_op(type='c_allreduce_max', inputs={'X': v, 'Cond': c}, outputs={'Out': v})\n"
    )
    new, left = rewrite_comm_callers(text, "c_allreduce_max", "all_reduce", sig)
    # no attrs= in the call: one is added with reduce_type MAX (phi::ReduceType::kRedMax == 1)
    assert new.splitlines()[0] == (
        "b.append_op(type='all_reduce', inputs={'x': v}, outputs={'out': v}, "
        "attrs={'reduce_type': 1})"
    )
    assert "type='c_allreduce_max', inputs={'X': v, 'Cond': c}" in new.splitlines()[1]
    assert left and left[0][0] == 2 and "inputs do not map" in left[0][1]
    import ast

    ast.parse(new)


def test_dygraph_comm_caller_rewrite():
    from paddle_op_migrator.pyrewrite import (
        rewrite_legacy_comm_calls,
        yaml_defaults,
        yaml_signature,
    )

    block = (
        "- op : all_reduce\n  args : (Tensor x, int ring_id = 0, int reduce_type = 0)\n"
        "  output : Tensor(out)\n  inplace : (x -> out)\n"
    )
    text = (
        "from paddle import _legacy_C_ops\n\n\n"
        "def f(t, r):\n"
        "    a = _legacy_C_ops.c_allreduce_max_(t, 'use_calc_stream', True, 'ring_id', r)\n"
        "    b = _legacy_C_ops.c_allreduce_max(t, 'use_calc_stream', True)\n"
        "    c = _legacy_C_ops.c_allreduce_max(t, o, 'ring_id', r)\n"
        "    return a, b, c\n"
    )
    new, left = rewrite_legacy_comm_calls(
        text,
        "c_allreduce_max",
        "all_reduce",
        yaml_signature(block),
        yaml_defaults(block),
        inplace=True,
    )
    assert "from paddle import _C_ops, _legacy_C_ops" in new
    assert "a = _C_ops.all_reduce_(t, r, 1)" in new  # inplace kept, MAX = 1
    assert "b = _C_ops.all_reduce(t, 0, 1)" in new  # ring_id from the yaml default
    assert "c = _legacy_C_ops.c_allreduce_max(t, o, 'ring_id', r)" in new and left[0][0] == 7
    # without an inplace declaration the inplace call is left alone
    new2, left2 = rewrite_legacy_comm_calls(
        text,
        "c_allreduce_max",
        "all_reduce",
        yaml_signature(block),
        yaml_defaults(block),
        inplace=False,
    )
    assert "_legacy_C_ops.c_allreduce_max_(t" in new2 and any("inplace" in w for _, w in left2)


def test_commented_out_maker_lines_are_not_read():
    from paddle_op_migrator.codegen import parse_op
    from paddle_op_migrator.cpp import strip_comments

    assert (
        strip_comments('a; // b("x");\n/* c;\n d */ e("//not a comment");')
        == 'a; \n\n e("//not a comment");'
    )
    text = """
class POpMaker : public framework::OpProtoAndCheckerMaker {
  void Make() override {
    AddInput("GateIdx", "(Tensor) ids.");
    AddOutput("NewGateIdx", "(Tensor) pruned ids.");
    // AddOutput(
    //     "ExpertCountOut",
    //     "(Tensor) a copy.");
    /* AddAttr<int>("gone", "x").SetDefault(0); */
  }
};
REGISTER_OP_WITHOUT_GRADIENT(p, ops::POp, ops::POpMaker);
"""
    spec = parse_op(text, "p")
    assert [a.name for a in spec.outputs] == ["NewGateIdx"] and spec.attrs == []


def test_vendor_only_attributes_are_not_in_the_signature():
    from paddle_op_migrator.codegen import parse_op

    text = """
class CBOpMaker : public framework::OpProtoAndCheckerMaker {
  void Make() {
    AddInput("X", "x");
    AddAttr<int>("root", "r").SetDefault(0);
#if defined(PADDLE_WITH_HCCL) || defined(PADDLE_WITH_ECCL)
    AddAttr<std::string>("tag", "t").SetDefault("tag");
#else
    AddAttr<bool>("default_build", "d").SetDefault(false);
#endif
#ifdef PADDLE_WITH_CUDA
    AddAttr<bool>("cuda_attr", "c").SetDefault(false);
#endif
  }
};
REGISTER_OP_WITHOUT_GRADIENT(cb, ops::CBOp, ops::CBOpMaker);
"""
    assert [a.name for a in parse_op(text, "cb").attrs] == ["root", "default_build", "cuda_attr"]


def test_inplace_legacy_calls_follow_the_inplace_declaration():
    from paddle_op_migrator.pyrewrite import rewrite_legacy_calls

    text = "from paddle import _legacy_C_ops\n\n\ndef f(p, v, i):\n    return _legacy_C_ops.rr_(p, v, i)\n"
    new, left = rewrite_legacy_calls(text, "rr", ["P", "V", "I"], [], inplace=True)
    assert "return _C_ops.rr_(p, v, i)" in new and not left
    new, left = rewrite_legacy_calls(text, "rr", ["P", "V", "I"], [], inplace=False)
    assert new == text and "inplace" in left[0][1]
