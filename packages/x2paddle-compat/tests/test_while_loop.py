"""ONNX ``Loop`` as a while loop (N25): a computed condition, a run-time trip count, scan
outputs and outer values read by the body, each checked against onnxruntime on inputs that
make the loop run zero, one and several times; the saved inference model holds a while op."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_graphs import _model, _vi

from x2paddle_compat import UnsupportedOpsError, convert_onnx, sources, without_fix
from x2paddle_compat.verify import verify

RNG = np.random.default_rng(11)


def halving_while():
    """while sum(|x|) > limit: x = x * 0.5 + w * 0.001; steps += 1 (no trip count; the
    condition is computed before the loop and by the body; the body reads the outer
    initializer ``w`` and the outer computed value ``limit``)."""
    w = numpy_helper.from_array(RNG.standard_normal((2, 3)).astype("float32"), "w")
    body = helper.make_graph(
        [
            helper.make_node("Mul", ["x_in", "half"], ["xh"]),
            helper.make_node("Mul", ["w", "small"], ["ws"]),
            helper.make_node("Add", ["xh", "ws"], ["x_out"]),
            helper.make_node("Add", ["steps_in", "one"], ["steps_out"]),
            helper.make_node("Abs", ["x_out"], ["a"]),
            helper.make_node("ReduceSum", ["a"], ["s"], keepdims=0),
            helper.make_node("Greater", ["s", "limit"], ["cond_out"]),
        ],
        "body",
        [
            _vi("i", [], TensorProto.INT64),
            _vi("cond_in", [], TensorProto.BOOL),
            _vi("x_in", [2, 3]),
            _vi("steps_in", [], TensorProto.INT64),
        ],
        [
            _vi("cond_out", [], TensorProto.BOOL),
            _vi("x_out", [2, 3]),
            _vi("steps_out", [], TensorProto.INT64),
        ],
        [
            numpy_helper.from_array(np.array(0.5, np.float32), "half"),
            numpy_helper.from_array(np.array(0.001, np.float32), "small"),
            numpy_helper.from_array(np.array(1, np.int64), "one"),
        ],
    )
    nodes = [
        helper.make_node("Mul", ["scale", "base"], ["limit"]),
        helper.make_node("Abs", ["x"], ["ax"]),
        helper.make_node("ReduceSum", ["ax"], ["sx"], keepdims=0),
        helper.make_node("Greater", ["sx", "limit"], ["go"]),
        helper.make_node("Loop", ["", "go", "x", "zero"], ["y", "steps"], body=body),
    ]
    inits = [
        w,
        numpy_helper.from_array(np.array(1.0, np.float32), "base"),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
    ]
    return _model(
        nodes,
        [_vi("x", [2, 3]), _vi("scale", [])],
        [_vi("y", [2, 3]), _vi("steps", [], TensorProto.INT64)],
        inits,
    )


def counted_scan(with_cond: bool):
    """for i in range(n) [while h.max() < stop]: h = tanh(h @ w + x * i), every h a scan
    output; ``n`` is an input (a run-time trip count)."""
    w = numpy_helper.from_array(RNG.standard_normal((3, 3)).astype("float32") * 0.5, "w")
    body_nodes = [
        helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "fi"], ["xi"]),
        helper.make_node("MatMul", ["h_in", "w"], ["hw"]),
        helper.make_node("Add", ["hw", "xi"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["h_out"]),
        helper.make_node("Identity", ["h_out"], ["scan"]),
    ]
    if with_cond:
        body_nodes += [
            helper.make_node("ReduceMax", ["h_out"], ["m"], keepdims=0),
            helper.make_node("Less", ["m", "stop"], ["cond_out"]),
        ]
    else:
        body_nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    body = helper.make_graph(
        body_nodes,
        "body",
        [
            _vi("i", [], TensorProto.INT64),
            _vi("cond_in", [], TensorProto.BOOL),
            _vi("h_in", [1, 3]),
        ],
        [_vi("cond_out", [], TensorProto.BOOL), _vi("h_out", [1, 3]), _vi("scan", [1, 3])],
    )
    nodes = [helper.make_node("Loop", ["n", "true", "h0"], ["h", "hs"], body=body)]
    inits = [
        w,
        numpy_helper.from_array(np.array(True), "true"),
        numpy_helper.from_array(np.full((1, 3), 0.1, np.float32), "h0"),
    ]
    inputs = [_vi("x", [1, 3]), _vi("n", [], TensorProto.INT64)]
    if with_cond:
        inputs.append(_vi("stop", []))
    return _model(nodes, inputs, [_vi("h", [1, 3]), _vi("hs", ["steps", 1, 3])], inits)


def nested_while():
    """An outer loop (run-time trip count) whose body holds an inner while with a computed
    condition that reads the outer loop's carried value and the outer graph's input."""
    inner = helper.make_graph(
        [
            helper.make_node("Add", ["v_in", "acc"], ["v_out"]),
            helper.make_node("ReduceSum", ["v_out"], ["vs_"], keepdims=0),
            helper.make_node("Less", ["vs_", "cap"], ["c_out"]),
        ],
        "inner",
        [_vi("j", [], TensorProto.INT64), _vi("c_in", [], TensorProto.BOOL), _vi("v_in", [1])],
        [_vi("c_out", [], TensorProto.BOOL), _vi("v_out", [1])],
    )
    outer = helper.make_graph(
        [
            helper.make_node("Add", ["acc_in", "x"], ["acc"]),
            helper.make_node("ReduceSum", ["acc"], ["acc_s"], keepdims=0),
            helper.make_node("Less", ["acc_s", "cap"], ["go"]),
            helper.make_node("Loop", ["", "go", "acc"], ["v"], body=inner),
            helper.make_node("Identity", ["oc_in"], ["oc_out"]),
        ],
        "outer",
        [_vi("k", [], TensorProto.INT64), _vi("oc_in", [], TensorProto.BOOL), _vi("acc_in", [1])],
        [_vi("oc_out", [], TensorProto.BOOL), _vi("acc", [1]), _vi("v", [1])],
    )
    nodes = [helper.make_node("Loop", ["n", "", "start"], ["acc_final", "vs"], body=outer)]
    inits = [numpy_helper.from_array(np.zeros(1, np.float32), "start")]
    return _model(
        nodes,
        [_vi("x", [1]), _vi("n", [], TensorProto.INT64), _vi("cap", [])],
        [_vi("acc_final", [1]), _vi("vs", ["steps", 1])],
        inits,
    )


def _convert(model, tmp_path, name):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    with without_fix("onnx-while-loop"):
        with pytest.raises(UnsupportedOpsError, match="Loop"):
            convert_onnx(path, tmp_path / f"{name}_without")
    out = convert_onnx(path, tmp_path / f"{name}_paddle")
    program = (out / "inference_model" / "model.json").read_text(encoding="utf-8")
    assert re.search(r"\"[0-9]+\.while\"", program), "the inference model holds no while op"
    return path, out


def _check(path, out, feed):
    refs = sources.run_onnx(path, feed)
    report = verify(out, feed, refs, atol=1e-5, rtol=1e-5)
    assert report.ok, report.table()
    return refs


def test_while_with_computed_condition(tmp_path):
    path, out = _convert(halving_while(), tmp_path, "halving")
    x = RNG.standard_normal((2, 3)).astype("float32") * 4
    steps = set()
    # scale 1e3: sum(|x|) below the limit from the start: zero iterations, x passed through
    # the loop ends: its fixed point, sum(|w|) / 500, is below the smallest limit
    for scale in (1e3, 2.0, 0.05):
        refs = _check(path, out, {"x": x, "scale": np.array(scale, np.float32)})
        steps.add(int(refs[1]))
    assert 0 in steps and len(steps) == 3, steps  # zero, a few and many iterations


@pytest.mark.parametrize("with_cond", [False, True], ids=["trip_count", "trip_count_and_cond"])
def test_run_time_trip_count_with_scan_outputs(tmp_path, with_cond):
    path, out = _convert(counted_scan(with_cond), tmp_path, "scan")
    x = RNG.standard_normal((1, 3)).astype("float32")
    lengths = set()
    for n in (1, 4, 9):
        feed = {"x": x, "n": np.array(n, np.int64)}
        if with_cond:
            feed["stop"] = np.array(0.6, np.float32)
        refs = _check(path, out, feed)
        lengths.add(refs[1].shape[0])
    assert len(lengths) == 3 or with_cond, lengths
    if with_cond:
        assert min(lengths) < 9  # the condition ended a loop before its trip count


def test_nested_while_reading_outer_values(tmp_path):
    path, out = _convert(nested_while(), tmp_path, "nested")
    for n, x, cap in ((3, 0.7, 2.5), (5, 0.4, 1.0), (2, 1.5, 0.5)):
        feed = {
            "x": np.array([x], np.float32),
            "n": np.array(n, np.int64),
            "cap": np.array(cap, np.float32),
        }
        _check(path, out, feed)


def test_while_program_structure(tmp_path):
    """The generated dygraph code holds a Python while over the body's layer class, whose
    parameters are the model's under the loop's sub-layer name."""
    _, out = _convert(halving_while(), tmp_path, "code")
    code = (out / "x2paddle_code.py").read_text(encoding="utf-8")
    assert "while " in code and "class X2pcLoopBody" in code
    import paddle

    params = paddle.load(str(out / "model.pdparams"))
    assert any(k.startswith("x2pc_loop") and "." in k for k in params), sorted(params)
