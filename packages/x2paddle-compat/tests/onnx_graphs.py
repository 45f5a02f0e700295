"""Small hand-built ONNX graphs, each showing one encoding X2Paddle 1.6 could not read."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)


def _f(name, shape):
    return numpy_helper.from_array(RNG.standard_normal(shape).astype("float32"), name)


def _model(nodes, inputs, outputs, inits=(), opset=13, check=True):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    return model


def _vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def maxpool_dilations():
    """torch >= 2 legacy exporter: MaxPool with dilations=[1, 1] (R15)."""
    nodes = [
        helper.make_node(
            "MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], dilations=[1, 1]
        )
    ]
    return _model(nodes, [_vi("x", [1, 2, 8, 8])], [_vi("y", [1, 2, 4, 4])])


def resize_scales_only(mode="linear"):
    """Resize(X, roi='', scales) without the sizes input (R17)."""
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], "float32"), "scales")
    nodes = [
        helper.make_node(
            "Resize",
            ["x", "", "scales"],
            ["y"],
            mode=mode,
            coordinate_transformation_mode="half_pixel",
        )
    ]
    return _model(nodes, [_vi("x", [1, 2, 4, 4])], [_vi("y", [1, 2, 8, 8])], [scales])


def reduce_axes_input():
    """Opset 18: ReduceMean takes axes as an input (R18)."""
    axes = numpy_helper.from_array(np.array([2, 3], "int64"), "axes")
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=1)]
    return _model(nodes, [_vi("x", [1, 3, 4, 4])], [_vi("y", [1, 3, 1, 1])], [axes], opset=18)


def layer_norm_opset17():
    nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-5)]
    return _model(
        nodes,
        [_vi("x", [2, 3, 8])],
        [_vi("y", [2, 3, 8])],
        [_f("g", (8,)), _f("b", (8,))],
        opset=17,
    )


def int_div():
    """Integer Div (shape arithmetic): ONNX truncates, paddle.divide is true division (R7)."""
    two = numpy_helper.from_array(np.array([2], "int64"), "two")
    nodes = [helper.make_node("Div", ["x", "two"], ["y"])]
    return _model(
        nodes, [_vi("x", [6], TensorProto.INT64)], [_vi("y", [6], TensorProto.INT64)], [two]
    )


def empty_shape_constant():
    """Constant with an empty int64 tensor feeding ConstantOfShape -> a scalar (R9)."""
    nodes = [
        helper.make_node(
            "Constant", [], ["shape"], value=numpy_helper.from_array(np.zeros([0], "int64"), "v")
        ),
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["s"],
            value=numpy_helper.from_array(np.array([1.5], "float32"), "f"),
        ),
        helper.make_node("Add", ["x", "s"], ["y"]),
    ]
    # dynamic batch: nothing can be constant-folded before X2Paddle sees the graph
    return _model(nodes, [_vi("x", ["n", 3])], [_vi("y", ["n", 3])])


def unsupported_ops():
    """Two operators X2Paddle has no mapping for, to be reported together."""
    nodes = [helper.make_node("Det", ["x"], ["d"]), helper.make_node("Hardmax", ["x"], ["h"])]
    return _model(nodes, [_vi("x", [3, 3])], [_vi("d", []), _vi("h", [3, 3])])


GRAPHS = {
    "maxpool_dilations": maxpool_dilations,
    "resize_scales_only": resize_scales_only,
    "reduce_axes_input": reduce_axes_input,
    "layer_norm_opset17": layer_norm_opset17,
    "int_div": int_div,
    "empty_shape_constant": empty_shape_constant,
}


def reduce_runtime_axes():
    """Opset 18 Reduce ops whose axes are computed at run time (from Shape of a tensor with a
    dynamic batch, so nothing can be folded before X2Paddle): axes = [C-1, C] = [2, 3]."""
    idx = numpy_helper.from_array(np.array([1, 1], "int64"), "idx")
    off = numpy_helper.from_array(np.array([1, 0], "int64"), "off")
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["c"], axis=0),
        helper.make_node("Sub", ["c", "off"], ["axes"]),
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=1),
        helper.make_node("ReduceSum", ["x", "axes"], ["sum"], keepdims=0),
        helper.make_node("ReduceMax", ["x", "axes"], ["max"], keepdims=1),
        helper.make_node("ReduceL2", ["x", "axes"], ["l2"], keepdims=0),
        helper.make_node("ReduceLogSumExp", ["x", "axes"], ["lse"], keepdims=0),
    ]
    outs = [
        _vi("mean", ["n", 3, 1, 1]),
        _vi("sum", ["n", 3]),
        _vi("max", ["n", 3, 1, 1]),
        _vi("l2", ["n", 3]),
        _vi("lse", ["n", 3]),
    ]
    return _model(nodes, [_vi("x", ["n", 3, 4, 4])], outs, [idx, off], opset=18)


def group_norm(opset=18):
    """GroupNormalization: opset 18 scale/bias per group, opset 21 per channel."""
    n = 2 if opset == 18 else 6
    nodes = [
        helper.make_node(
            "GroupNormalization", ["x", "scale", "bias"], ["y"], num_groups=2, epsilon=1e-5
        )
    ]
    # onnx >= 1.19's checker rejects the opset-18 form as deprecated (its scale/bias
    # semantics were replaced in 21), but exporters wrote such files and onnxruntime runs them
    return _model(
        nodes,
        [_vi("x", [1, 6, 4, 4])],
        [_vi("y", [1, 6, 4, 4])],
        [_f("scale", (n,)), _f("bias", (n,))],
        opset=opset,
        check=opset != 18,
    )


GRAPHS.update(
    {
        "reduce_runtime_axes": reduce_runtime_axes,
        "group_norm_opset18": lambda: group_norm(18),
        "group_norm_opset21": lambda: group_norm(21),
    }
)
