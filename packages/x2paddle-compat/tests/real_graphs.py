"""Small ONNX graphs with the encodings that trained models shipped in wheels use (N9-N18).

Each graph isolates one defect that a real model hit: Paddle2ONNX value names, a streaming
LSTM whose states are consumed, opset-18 Conv without kernel_shape, a Flatten over two
unknown dims, an If on a shape test, a reflect Pad of 2-D audio, a ConstantOfShape of a
constant shape, a Slice up to a run-time length.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from onnx_graphs import _model, _vi

RNG = np.random.default_rng(1)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _w(name, shape):
    return _init(name, RNG.standard_normal(shape).astype("float32"))


def paddle2onnx_names():
    """Value names as Paddle2ONNX writes them: '@', '+', '[' ... (N9)."""
    nodes = [
        helper.make_node("Add", ["x", "Constant@0"], ["tmp@1+a"]),
        helper.make_node("Relu", ["tmp@1+a"], ["relu[0]"]),
        helper.make_node("Mul", ["relu[0]", "Constant@0"], ["y"]),
    ]
    return _model(
        nodes, [_vi("x", [1, 3, 4, 4])], [_vi("y", [1, 3, 4, 4])], [_w("Constant@0", [1, 3, 1, 1])]
    )


def dynamic_image():
    """A graph with unknown image dims, for input_shape_dict (N10)."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1] * 4)]
    return _model(
        nodes,
        [_vi("x", ["n", 3, "h", "w"])],
        [_vi("y", ["n", 2, "h", "w"])],
        [_w("w", [2, 3, 3, 3])],
    )


def conv_no_kernel_shape():
    """Opset 18 exporters omit the optional kernel_shape (N11)."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])]
    return _model(
        nodes,
        [_vi("x", [1, 3, 8, 8])],
        [_vi("y", [1, 4, 8, 8])],
        [_w("w", [4, 3, 3, 3]), _w("b", [4])],
        opset=18,
    )


def flatten_two_unknown():
    """Flatten(axis=2) of [n, m, 3] with n and m unknown (N12)."""
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=2),
        helper.make_node("Relu", ["f"], ["y"]),
    ]
    return _model(nodes, [_vi("x", ["n", "m", 3])], [_vi("y", ["nm", 3])])


def lstm_streaming(hidden=4, features=3):
    """A streaming LSTM step: [seq, features] -> LSTM with batch-1 initial states; the final
    states Y_h / Y_c are outputs the caller feeds back (N13)."""
    g = 4 * hidden
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axes1"], ["x3"]),
        helper.make_node(
            "LSTM", ["x3", "W", "R", "B", "", "h0", "c0"], ["Y", "Y_h", "Y_c"], hidden_size=hidden
        ),
        helper.make_node("Reshape", ["Y", "flat"], ["y"]),
        helper.make_node("Tanh", ["Y_h"], ["h"]),
        helper.make_node("Add", ["Y_c", "Y_h"], ["c"]),
    ]
    inits = [
        _init("axes1", np.array([1], np.int64)),
        _init("flat", np.array([-1, hidden], np.int64)),
        _w("W", [1, g, features]),
        _w("R", [1, g, hidden]),
        _w("B", [1, 2 * g]),
        _w("h0", [1, 1, hidden]),
        _w("c0", [1, 1, hidden]),
    ]
    return _model(
        nodes,
        [_vi("x", ["seq", features])],
        [_vi("y", ["seq", hidden]), _vi("h", [1, 1, hidden]), _vi("c", [1, 1, hidden])],
        inits,
    )


def if_on_shape(dims=(1, 3, 4)):
    """If(channels == 3): Relu else Neg; constant once the input's shape is known."""
    then_g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["t"])], "then", [], [_vi("t", None)]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [_vi("e", None)]
    )
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["c"], axis=0),
        helper.make_node("Equal", ["c", "three"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    inits = [_init("one", np.array(1, np.int64)), _init("three", np.array(3, np.int64))]
    return _model(nodes, [_vi("x", list(dims))], [_vi("y", list(dims))], inits)


def constant_of_shape():
    """ConstantOfShape of a constant shape, added to a dynamic input (N16)."""
    nodes = [
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["k"],
            value=numpy_helper.from_array(np.array([0.5], np.float32)),
        ),
        helper.make_node("Add", ["x", "k"], ["y"]),
    ]
    return _model(
        nodes,
        [_vi("x", ["n", 3])],
        [_vi("y", [2, 3])],
        [_init("shape", np.array([2, 3], np.int64))],
    )


def reflect_pad_2d():
    """Reflect Pad of [batch, samples] audio on the last axis (STFT framing, N17)."""
    nodes = [helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect")]
    return _model(
        nodes,
        [_vi("x", ["n", 64])],
        [_vi("y", ["n", 72])],
        [_init("pads", np.array([0, 4, 0, 4], np.int64))],
    )


def slice_to_runtime_length():
    """x[:, :L-1] with L read from the input's shape (position ids of BERT, N18)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["L"], axis=0),
        helper.make_node("Sub", ["L", "one"], ["L1"]),
        helper.make_node("Unsqueeze", ["L1", "zero1"], ["end"]),
        helper.make_node("Slice", ["x", "zero1", "end", "one1", "one1"], ["y"]),
    ]
    inits = [
        _init("one", np.array(1, np.int64)),
        _init("zero1", np.array([0], np.int64)),
        _init("one1", np.array([1], np.int64)),
    ]
    return _model(nodes, [_vi("x", ["n", "L", 2])], [_vi("y", ["n", "L1", 2])], inits)


def gru_streaming(hidden=4, features=3):
    """A streaming GRU step whose final state Y_h is consumed (N13)."""
    g = 3 * hidden
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axes1"], ["x3"]),
        helper.make_node(
            "GRU",
            ["x3", "W", "R", "B", "", "h0"],
            ["Y", "Y_h"],
            hidden_size=hidden,
            linear_before_reset=1,
        ),
        helper.make_node("Reshape", ["Y", "flat"], ["y"]),
        helper.make_node("Tanh", ["Y_h"], ["h"]),
    ]
    inits = [
        _init("axes1", np.array([1], np.int64)),
        _init("flat", np.array([-1, hidden], np.int64)),
        _w("W", [1, g, features]),
        _w("R", [1, g, hidden]),
        _w("B", [1, 2 * g]),
        _w("h0", [1, 1, hidden]),
    ]
    return _model(
        nodes,
        [_vi("x", ["seq", features])],
        [_vi("y", ["seq", hidden]), _vi("h", [1, 1, hidden])],
        inits,
    )


def if_on_input_value():
    """If(mode == 1): Relu else Neg, where ``mode`` is an int64 input (a sample-rate
    switch) and ``x`` has unknown dims, so onnxruntime's static folding cannot run (N14)."""
    then_g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["t"])], "then", [], [_vi("t", None)]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])], "else", [], [_vi("e", None)]
    )
    nodes = [
        helper.make_node("Constant", [], ["one"], value_int=1),
        helper.make_node("Equal", ["mode", "one"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    return _model(
        nodes,
        [_vi("x", ["n", 3, 4]), helper.make_tensor_value_info("mode", 7, [])],
        [_vi("y", ["n", 3, 4])],
    )


def constant_of_runtime_shape():
    """ConstantOfShape(Shape(x)) of a 1-D input of unknown length (BERT's mask, N16)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node(
            "ConstantOfShape",
            ["s"],
            ["k"],
            value=numpy_helper.from_array(np.array([0.5], np.float32)),
        ),
        helper.make_node("Add", ["x", "k"], ["y"]),
    ]
    return _model(nodes, [_vi("x", ["n"])], [_vi("y", ["n"])])


def clip_to_infinity():
    """torch's clamp(min=1e-10) before a log, exported as Clip(x, 1e-10, +inf) with both
    bounds as Constant nodes (openWakeWord's melspectrogram, N22)."""
    nodes = [
        helper.make_node("Constant", [], ["lo"], value=_init("lo_v", np.array(1e-10, "float32"))),
        helper.make_node("Constant", [], ["hi"], value=_init("hi_v", np.array(np.inf, "float32"))),
        helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
        helper.make_node("Log", ["c"], ["y"]),
    ]
    return _model(nodes, [_vi("x", ["n", 6])], [_vi("y", ["n", 6])])


def lstm_computed_states(hidden=4, features=3, steps=5):
    """Stacked Keras LSTMs as tf2onnx writes them: batch-major input transposed to
    time-major; the second, bidirectional LSTM's initial states are zeros of the batch read
    from the first LSTM's output (Shape -> Cast -> Slice -> Concat(hidden) -> Expand), so
    shape inference knows neither their batch nor their width (openWakeWord's
    hey_mycroft, N23)."""
    g = 4 * hidden
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        helper.make_node("Shape", ["xt"], ["s0"]),
        helper.make_node("Slice", ["s0", "one64", "two64"], ["batch0"]),
        helper.make_node("Concat", ["batch0", "width64"], ["packed0"], axis=0),
        helper.make_node("Expand", ["zero_f", "packed0"], ["zeros0"]),
        helper.make_node("Unsqueeze", ["zeros0", "axes0"], ["h00"]),
        helper.make_node(
            "LSTM",
            ["xt", "W0", "R0", "B0", "", "h00", "h00"],
            ["Y0", "Y0_h", "Y0_c"],
            hidden_size=hidden,
        ),
        helper.make_node("Squeeze", ["Y0", "axes1"], ["x1"]),
        helper.make_node("Shape", ["x1"], ["s"]),
        helper.make_node("Cast", ["s"], ["s32"], to=6),
        helper.make_node("Slice", ["s32", "one", "two"], ["batch"]),
        helper.make_node("Concat", ["batch", "width"], ["packed"], axis=0),
        helper.make_node("Cast", ["packed"], ["packed64"], to=7),
        helper.make_node("Expand", ["zero_f", "packed64"], ["zeros"]),
        helper.make_node("Unsqueeze", ["zeros", "axes0"], ["z1"]),
        helper.make_node("Concat", ["z1", "z1"], ["h0"], axis=0),
        helper.make_node(
            "LSTM",
            ["x1", "W", "R", "B", "", "h0", "h0"],
            ["Y", "Y_h", "Y_c"],
            hidden_size=hidden,
            direction="bidirectional",
        ),
        helper.make_node("Transpose", ["Y"], ["y"], perm=[2, 0, 1, 3]),
    ]
    inits = [
        _init("one64", np.array([1], np.int64)),
        _init("two64", np.array([2], np.int64)),
        _init("width64", np.array([hidden], np.int64)),
        _init("one", np.array([1], np.int32)),
        _init("two", np.array([2], np.int32)),
        _init("width", np.array([hidden], np.int32)),
        _init("axes0", np.array([0], np.int64)),
        _init("axes1", np.array([1], np.int64)),
        _init("zero_f", np.array(0.0, np.float32)),
        _w("W0", [1, g, features]),
        _w("R0", [1, g, hidden]),
        _w("B0", [1, 2 * g]),
        _w("W", [2, g, hidden]),
        _w("R", [2, g, hidden]),
        _w("B", [2, 2 * g]),
    ]
    return _model(
        nodes, [_vi("x", ["b", steps, features])], [_vi("y", ["b", steps, 2, hidden])], inits
    )


def prelu_nhwc_slope():
    """PRelu with a [1, 1, C] slope on an NHWC tensor, as tf2onnx exports TFLite models
    (MediaPipe's face and iris landmarks, N24)."""
    nodes = [helper.make_node("PRelu", ["x", "slope"], ["y"])]
    return _model(
        nodes, [_vi("x", [1, 5, 4, 3])], [_vi("y", [1, 5, 4, 3])], [_w("slope", [1, 1, 3])]
    )


def prelu_nchw_slope():
    """tf2onnx's form of a TFLite PRelu (MediaPipe's face and iris landmarks): an NHWC input
    of symbolic batch transposed to NCHW, a slope [1, C, 1, 1] along axis 1, then back to NHWC
    (X2Paddle reshaped the slope to its first dimension, 1; N24)."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("PRelu", ["nchw", "slope"], ["act"]),
        helper.make_node("Transpose", ["act"], ["y"], perm=[0, 2, 3, 1]),
    ]
    return _model(
        nodes, [_vi("x", ["n", 5, 4, 3])], [_vi("y", ["n", 5, 4, 3])], [_w("slope", [1, 3, 1, 1])]
    )


def prelu_nhwc_slope_symbolic():
    """A [1, 1, C] slope on an NHWC input whose other dimensions are symbolic (N24)."""
    nodes = [helper.make_node("PRelu", ["x", "slope"], ["y"])]
    return _model(
        nodes,
        [_vi("x", ["n", "h", "w", 3])],
        [_vi("y", ["n", "h", "w", 3])],
        [_w("slope", [1, 1, 3])],
    )


def prelu_computed_slope():
    """A slope computed at run time ([1, 1, C], from an input), broadcast over an NHWC input
    (N24: the elementwise form, which needs neither the slope's values nor the input's
    shape)."""
    nodes = [
        helper.make_node("Sigmoid", ["a"], ["slope"]),
        helper.make_node("PRelu", ["x", "slope"], ["y"]),
    ]
    return _model(
        nodes,
        [_vi("x", ["n", 5, 4, 3]), _vi("a", [1, 1, 3])],
        [_vi("y", ["n", 5, 4, 3])],
    )


def prelu_unknown_rank(slope_shape):
    """PRelu on a value whose rank is known only at run time (a Reshape to a shape that is
    an input): X2Paddle's shape inference has no shape for it (N24)."""
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("PRelu", ["r", "slope"], ["y"]),
    ]
    return _model(
        nodes,
        [_vi("x", ["n", 60]), _vi("shape", ["k"], TensorProto.INT64)],
        [_vi("y", ["a", "b", "c", "d"])],
        # one slope per channel, all different, so a slope on the wrong axis shows
        [_init("slope", np.array([0.25, 0.5, 2.0], np.float32).reshape(slope_shape))],
    )
