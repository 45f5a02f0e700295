"""ONNX control flow on run-time values (N20): an If whose branch depends on the input data,
checked against onnxruntime for both outcomes, and a Loop with a constant trip count."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_graphs import _model, _vi

from x2paddle_compat import UnsupportedOpsError, convert_onnx, sources, without_fix
from x2paddle_compat.verify import verify

RNG = np.random.default_rng(3)


def if_on_data(else_shape=(2, 4)):
    """y = relu(x) @ w * 2 if sum(x) > 0 else (x - 1) @ w; the branches use outer values."""
    w = numpy_helper.from_array(RNG.standard_normal((4, 4)).astype("float32"), "w")
    then_g = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("MatMul", ["r", "w"], ["m"]),
            helper.make_node("Mul", ["m", "two"], ["t"]),
        ],
        "then",
        [],
        [_vi("t", [2, 4])],
    )
    else_nodes = [
        helper.make_node("Sub", ["x", "one"], ["r"]),  # same inner name as the other branch
        helper.make_node("MatMul", ["r", "w"], ["e"]),
    ]
    if tuple(else_shape) != (2, 4):
        else_nodes.append(helper.make_node("Reshape", ["e", "flat"], ["e2"]))
    else_g = helper.make_graph(
        else_nodes, "else", [], [_vi("e2" if len(else_nodes) == 3 else "e", list(else_shape))]
    )
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    inits = [
        w,
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array([-1], np.int64), "flat"),
    ]
    return _model(nodes, [_vi("x", [2, 4])], [_vi("y", [2, 4])], inits)


def loop_scan(steps=5):
    """h = tanh(h @ w + x * i) for i in range(steps); every h is also a scan output."""
    w = numpy_helper.from_array(RNG.standard_normal((3, 3)).astype("float32") * 0.5, "w")
    body = helper.make_graph(
        [
            helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["x", "fi"], ["xi"]),
            helper.make_node("MatMul", ["h_in", "w"], ["hw"]),
            helper.make_node("Add", ["hw", "xi"], ["pre"]),
            helper.make_node("Tanh", ["pre"], ["h_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["h_out"], ["scan"]),
        ],
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
        numpy_helper.from_array(np.array(steps, np.int64), "n"),
        numpy_helper.from_array(np.array(True), "true"),
        numpy_helper.from_array(np.zeros((1, 3), np.float32), "h0"),
    ]
    return _model(nodes, [_vi("x", [1, 3])], [_vi("h", [1, 3]), _vi("hs", [steps, 1, 3])], inits)


def _convert(model, tmp_path, name):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    # without N20 (and N25, which would otherwise take the Loop as a while loop)
    with without_fix("onnx-control-flow", "onnx-while-loop"):
        with pytest.raises(UnsupportedOpsError, match="If|Loop"):
            convert_onnx(path, tmp_path / f"{name}_without")
    return path, convert_onnx(path, tmp_path / f"{name}_paddle")


def test_if_on_input_data_both_outcomes(tmp_path):
    path, out = _convert(if_on_data(), tmp_path, "if")
    x = RNG.standard_normal((2, 4)).astype("float32")
    w = numpy_helper.to_array(next(i for i in onnx.load(path).graph.initializer if i.name == "w"))
    for sign, expected in ((1, np.maximum(abs(x), 0) @ w * 2), (-1, (-abs(x) - 1) @ w)):
        feed = {"x": sign * abs(x)}
        refs = sources.run_onnx(path, feed)
        # the branch taken is the one the data asks for (onnxruntime, by its formula)
        np.testing.assert_allclose(refs[0], expected, rtol=1e-5, atol=1e-5)
        report = verify(out, feed, refs, atol=1e-5, rtol=1e-5)
        assert report.ok, report.table()


def test_if_with_branches_of_different_shapes_stays_unsupported(tmp_path):
    path = tmp_path / "if_shapes.onnx"
    onnx.save(if_on_data(else_shape=(8,)), path)
    with pytest.raises(UnsupportedOpsError, match="If"):
        convert_onnx(path, tmp_path / "out")


def test_loop_with_constant_trip_count(tmp_path):
    path, out = _convert(loop_scan(), tmp_path, "loop")
    feed = {"x": RNG.standard_normal((1, 3)).astype("float32")}
    refs = sources.run_onnx(path, feed)
    assert refs[1].shape == (5, 1, 3)
    report = verify(out, feed, refs, atol=1e-5, rtol=1e-5)
    assert report.ok, report.table()
