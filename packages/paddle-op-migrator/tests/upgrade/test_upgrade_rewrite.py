"""The rewrite on its own (no Paddle): what each transform builds, and that nothing is lost."""

from __future__ import annotations

from oldprog import add_var, program

from paddle_op_migrator.upgrade import schema
from paddle_op_migrator.upgrade.program import attrs_of, make_op
from paddle_op_migrator.upgrade.rewrite import Rewriter


def _types(prog):
    return [op.type for op in prog.blocks[0].ops]


def _interp_program(dims, **attrs):
    prog = program()
    block = prog.blocks[0]
    add_var(block, "img", dims=dims)
    add_var(block, "up", dims=[-1] * len(dims))
    kinds = {"scale": "FLOAT", "out_h": "INT", "out_w": "INT", "align_corners": "BOOLEAN",
             "align_mode": "INT", "interp_method": "STRING", "data_layout": "STRING"}  # fmt: skip
    op = make_op(
        "bilinear_interp",
        {"X": ["img"]},
        {"Out": ["up"]},
        [(k, kinds[k], v) for k, v in attrs.items()],
    )
    block.ops.insert(2, op)
    return prog


def test_matmul_alpha_is_folded_into_scale():
    prog = program()
    rep = Rewriter().rewrite(prog)
    assert rep.rewritten == {"matmul": 1} and not rep.problems
    assert _types(prog) == ["feed", "matmul_v2", "scale", "fetch"]
    assert attrs_of(prog.blocks[0].ops[2])["scale"] == 0.5
    assert prog.blocks[0].ops[2].outputs[0].arguments == ["y"]  # the old output name is kept


def test_matmul_alpha_one_is_a_plain_rename():
    prog = program()
    for a in prog.blocks[0].ops[1].attrs:
        if a.name == "alpha":
            a.f = 1.0
        if a.name == "transpose_X":
            a.b = True
    Rewriter().rewrite(prog)
    assert _types(prog) == ["feed", "matmul_v2", "fetch"]
    assert attrs_of(prog.blocks[0].ops[1])["trans_x"] is True


def test_interp_scale_with_static_sizes_becomes_v1_sizes():
    prog = _interp_program([2, 3, 5, 7], scale=1.7, interp_method="bilinear", align_corners=False)
    Rewriter().rewrite(prog)
    op = next(o for o in prog.blocks[0].ops if o.type == "bilinear_interp_v2")
    a = attrs_of(op)
    # v1: int(in * scale) in float32, and the ratio from the sizes (so no scale for v2)
    assert (a["out_h"], a["out_w"], a["scale"]) == (8, 11, [])


def test_interp_scale_with_dynamic_sizes_computes_out_size():
    prog = _interp_program(
        [-1, 3, -1, -1], scale=2.3, interp_method="bilinear", align_corners=False
    )
    rep = Rewriter().rewrite(prog)
    assert _types(prog)[3:9] == ["shape", "slice", "cast", "scale", "cast", "bilinear_interp_v2"]
    interp = prog.blocks[0].ops[8]
    assert [s.parameter for s in interp.inputs if s.arguments] == ["X", "OutSize"]
    assert len(rep.created) == 6 + 2  # the chain, the interp, and the matmul rewrite (2 ops)


def test_non_default_attribute_without_counterpart_is_a_problem():
    prog = program()
    prog.blocks[0].ops[1].attrs.add(name="head_number", type=0, i=2)
    rep = Rewriter().rewrite(prog)
    assert rep.problems == [
        "block 0 op 1 (matmul): attribute head_number=2 has no counterpart in matmul_v2 "
        "(only the default 1 can be carried over)"
    ]


def test_fields_we_do_not_declare_survive_the_rewrite():
    prog = program()
    raw = prog.SerializeToString()
    # VarDesc field 7 (var attributes) is not in our schema: append one to the first var
    var = prog.blocks[0].vars[0].SerializeToString() + b"\x3a\x03abc"
    reparsed = schema.ProgramDesc.FromString(raw)
    reparsed.blocks[0].vars[0].ParseFromString(var)
    Rewriter().rewrite(reparsed)
    assert b"\x3a\x03abc" in reparsed.blocks[0].vars[0].SerializeToString()


def test_collective_on_several_cards_is_refused_and_single_card_becomes_assign():
    prog = program(
        extra_ops=[("c_identity", [("ring_id", "INT", 0)]), ("c_allgather", [("nranks", "INT", 2)])]
    )
    rep = Rewriter().rewrite(prog)
    assert rep.problems == ["block 0 op 3 (c_allgather): nranks=2: not a single-card program"]
    assert "assign" in _types(prog)
    prog = program(extra_ops=[("c_allreduce_sum", [("ring_id", "INT", 3)])])
    Rewriter(collectives="new-comm").rewrite(prog)
    op = prog.blocks[0].ops[3]
    assert op.type == "all_reduce" and attrs_of(op) == {"ring_id": 3, "reduce_type": 0}
    assert [(s.parameter, list(s.arguments)) for s in op.inputs] == [("x", ["y"])]


def test_generate_proposals_v1_only_where_the_image_scale_drops_out():
    def prog_with(min_size):
        prog = program()
        block = prog.blocks[0]
        for n in ("scores", "deltas", "anchors", "var", "rois", "probs"):
            add_var(block, n, dims=[-1, 4])
        add_var(block, "im_info", dims=[1, 3])
        ins = {"Scores": ["scores"], "BboxDeltas": ["deltas"], "ImInfo": ["im_info"], "Anchors": ["anchors"],
               "Variances": ["var"]}  # fmt: skip
        block.ops.insert(2, make_op("generate_proposals", ins, {"RpnRois": ["rois"], "RpnRoiProbs": ["probs"]},
                                    [("min_size", "FLOAT", min_size)]))  # fmt: skip
        return prog

    prog = prog_with(0.5)
    assert not Rewriter().rewrite(prog).problems
    op = next(o for o in prog.blocks[0].ops if o.type == "generate_proposals_v2")
    assert [s.parameter for s in op.inputs if s.arguments][-1] == "ImShape"
    rep = Rewriter().rewrite(prog_with(16.0))
    assert "min_size=16 > 1 is divided by ImInfo's run-time image scale" in rep.problems[0]


def test_attribute_unknown_to_the_rule_is_refused_unless_empty():
    prog = program()
    prog.blocks[0].ops[1].attrs.add(name="fused_transpose_Out", type=3, ints=[0, 2, 1, 3])
    prog.blocks[0].ops[1].attrs.add(name="fused_reshape_Out", type=3)
    rep = Rewriter().rewrite(prog)
    assert rep.problems == [
        "block 0 op 1 (matmul): attribute fused_transpose_Out=[0, 2, 1, 3] is not known to the rule"
    ]
