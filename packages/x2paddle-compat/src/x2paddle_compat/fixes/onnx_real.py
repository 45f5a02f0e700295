"""Fixes found on trained models shipped in PyPI wheels (N9-N13, N16-N18).

Random-weight rebuilds never showed these: they need Paddle2ONNX's value names, LSTM states
that other nodes consume, opset-18 encodings, or a Flatten over two unknown dimensions.
"""

from __future__ import annotations

import ast
import functools
import re

import numpy as np

from .onnx_fixes import _add_pass, _opset_legacy
from .registry import register

# X2Paddle's own replacements, kept so the names of models it handled stay the same
_X2PADDLE_REPLACED = " .*?\\/-:;"
_NOT_IDENTIFIER = re.compile(r"\W")


def variable_name(name: str) -> str:
    """A Python identifier for an ONNX value name (``Constant@0`` -> ``x2paddle_Constant_x40_0``).

    Characters X2Paddle already replaced become ``_`` as before; every other character that
    cannot appear in an identifier becomes ``_x<hex>_``, so distinct names stay distinct.
    """
    if name == "":
        raise ValueError("name should not be empty")
    for s in _X2PADDLE_REPLACED:
        name = name.replace(s, "_")
    name = _NOT_IDENTIFIER.sub(lambda m: f"_x{ord(m.group()):x}_", name)
    return "x2paddle_" + name


@register(
    "onnx-identifier-names",
    "N9",
    "ONNX value names with characters that are not valid in a Python identifier "
    "(Paddle2ONNX's 'Constant@0', '+', '[', ...) are mapped; X2Paddle only replaced "
    "' .*?\\/-:;' and the generated code did not parse",
)
def _identifier_names(fix) -> None:
    from x2paddle.decoder.onnx_decoder import ONNXDecoder

    fix.patch(ONNXDecoder, "make_variable_name", lambda self, name: variable_name(name))


# --------------------------------------------------------------------------- input shapes

_SHAPES: dict = {"current": None}


def parse_shape_dict(value) -> dict | None:
    """``-isd`` as a dict, whether given as a dict or as its text (``"{'x': [1, 3, 8, 8]}"``)."""
    if value is None or isinstance(value, dict):
        return value
    parsed = ast.literal_eval(str(value))
    if not isinstance(parsed, dict):
        raise ValueError(f"input shapes must be a dict of name -> shape, got {value!r}")
    return parsed


@register(
    "onnx-input-shape-dict",
    "N10",
    "input_shape_dict (-isd) accepted as a dict, the form X2Paddle's --help shows: "
    "X2Paddle called eval() on it and failed for every input; names are mapped like "
    "the graph's value names, and the shapes also feed the static shape folding",
)
def _input_shape_dict(fix) -> None:
    from x2paddle.decoder.onnx_decoder import ONNXDecoder, ONNXGraph

    original_graph = ONNXGraph.__init__
    original_decoder = ONNXDecoder.__init__

    @functools.wraps(original_graph)
    def graph_init(self, onnx_model, input_shape_dict=None):
        shapes = parse_shape_dict(input_shape_dict)
        text = None
        if shapes:
            # X2Paddle prefixes "x2paddle_" to each key itself
            text = repr(
                {
                    variable_name(k)[len("x2paddle_") :]: [int(d) for d in v]
                    for k, v in shapes.items()
                }
            )
        return original_graph(self, onnx_model, text)

    @functools.wraps(original_decoder)
    def decoder_init(self, onnx_model, enable_onnx_checker, input_shape_dict=None):
        _SHAPES["current"] = parse_shape_dict(input_shape_dict)
        try:
            return original_decoder(self, onnx_model, enable_onnx_checker, input_shape_dict)
        finally:
            _SHAPES["current"] = None

    fix.patch(ONNXGraph, "__init__", graph_init)
    fix.patch(ONNXDecoder, "__init__", decoder_init)


def user_input_shapes() -> dict | None:
    """The ``input_shape_dict`` of the conversion running now (for the ONNX passes)."""
    return _SHAPES["current"]


# --------------------------------------------------------------------------- Conv, Flatten


def _conv_kernel_shape(model) -> None:
    from onnx import helper

    graph = model.graph
    shapes = {i.name: list(i.dims) for i in graph.initializer}
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1:
            if any(a.name == "kernel_shape" for a in node.attribute):
                continue
            w = shapes.get(node.input[1])
            if w is not None and len(w) >= 3:
                node.attribute.append(helper.make_attribute("kernel_shape", w[2:]))


@register(
    "onnx-conv-kernel-shape",
    "N11",
    "Conv/ConvTranspose without the optional kernel_shape attribute (opset-18 exporters "
    "omit it) get it from the weight's shape; X2Paddle indexed the missing attribute",
)
def _conv_kernel(fix) -> None:
    _add_pass(fix, _conv_kernel_shape)


@register(
    "onnx-flatten-dynamic",
    "N12",
    "Flatten over unknown dimensions: X2Paddle multiplied the dims (-1 * -1 = 1) and "
    "emitted reshape(x, [1, 1]); now flatten(axis..-1) then flatten(0..axis-1)",
)
def _flatten(fix) -> None:
    legacy = _opset_legacy()
    original = legacy.OpSet.Flatten

    @functools.wraps(original)
    def Flatten(self, node):
        val_x = self.graph.get_input_node(node, idx=0, copy=True)
        shape = val_x.out_shapes[0] if val_x.out_shapes else []
        rank = len(shape)
        axis = node.get_attr("axis", 1)
        if rank == 0 or all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
            return original(self, node)  # static or unknown rank: X2Paddle's mapping works
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            return original(self, node)  # reshape [1, -1] is right
        inner = node.name + "_x2pc_inner"
        if axis == rank:  # all dims go to the first output dim, the second is 1
            self.paddle_graph.add_layer(
                "paddle.unsqueeze", inputs={"x": val_x.name}, outputs=[inner], axis=-1
            )
        else:
            self.paddle_graph.add_layer(
                "paddle.flatten",
                inputs={"x": val_x.name},
                outputs=[inner],
                start_axis=axis,
                stop_axis=-1,
            )
        self.paddle_graph.add_layer(
            "paddle.flatten",
            inputs={"x": inner},
            outputs=[node.name],
            start_axis=0,
            stop_axis=axis - 1,
        )
        return None

    fix.patch(legacy.OpSet, "Flatten", Flatten)


# --------------------------------------------------------------------------- LSTM


@register(
    "onnx-lstm-states",
    "N13",
    "ONNX LSTM/GRU whose final states Y_h/Y_c are consumed (streaming models): the consumers "
    "look the states up as '<node>_p1/_p2', which the mappers never defined; an input with "
    "an unknown batch dimension is pinned to the batch of a static initial state "
    "(Paddle's rnn rejects batch -1 against 1 when exporting)",
)
def _rnn_states(fix) -> None:
    legacy = _opset_legacy()
    for op, kernel in (("LSTM", "paddle.nn.LSTM"), ("GRU", "paddle.nn.GRU")):
        fix.patch(legacy.OpSet, op, _with_states(legacy, getattr(legacy.OpSet, op), kernel))


def _with_states(legacy, original, kernel):
    @functools.wraps(original)
    def mapper(self, node):
        names = list(node.layer.input)
        x = self.graph.get_input_node(node, idx=0, copy=True)
        x_shape = list(x.out_shapes[0]) if x.out_shapes and x.out_shapes[0] else []
        init_shape = []
        if len(names) > 5 and names[5]:
            init = self.graph.get_node(names[5], copy=True)
            init_shape = list(init.out_shapes[0]) if init.out_shapes else []
        w = legacy._const_weight_or_none(self.graph.get_input_node(node, idx=1, copy=True))
        before = set(self.paddle_graph.layers)
        pinned = None
        # pinned even where X2Paddle's shape inference knows the batch: the emitted program
        # may still have lost it upstream (a reshape to a computed shape)
        if (
            len(init_shape) == 3
            and init_shape[1]
            and init_shape[1] > 0
            and w is not None
            and (len(x_shape) != 3 or x_shape[1] in (None, -1, init_shape[1]))
        ):
            pinned = node.name + "_x2pc_batch"
            self.paddle_graph.add_layer(
                "paddle.reshape",
                inputs={"x": x.name},
                outputs=[pinned],
                shape=[-1, int(init_shape[1]), int(w.shape[2])],
            )
        result = original(self, node)
        if _STATE_SHAPES and w is not None and kernel == "paddle.nn.LSTM":
            states = [self.graph.get_node(n, copy=True).name for n in names[5:7] if n]
            _complete_state_shapes(self.paddle_graph, before, states, w)
        if pinned:
            for layer_id in set(self.paddle_graph.layers) - before:
                layer = self.paddle_graph.layers[layer_id]
                if layer.kernel == kernel and layer.inputs.get("input") == x.name:
                    layer.inputs["input"] = pinned
        # consumers of output i look it up as "<layer_name>_p<i>"
        for i, out in enumerate(node.layer.output):
            if out:
                self.paddle_graph.add_layer(
                    "prim.equal", inputs={"input": out}, outputs=[f"{node.layer_name}_p{i}"]
                )
        return result

    return mapper


_STATE_SHAPES: list = []  # non-empty while onnx-rnn-state-shape is applied


def _complete_state_shapes(graph, before, state_names, w) -> None:
    """X2Paddle reshapes an LSTM's initial states to their inferred ONNX shape; where the
    states are computed (tf2onnx fills zeros of the input's batch), that shape is
    [directions, ?, ?], and a reshape to [2, -1, -1] cannot be exported. The directions
    and the hidden size are known from the weights: [directions, -1, hidden]."""
    directions, hidden = int(w.shape[0]), int(w.shape[1]) // 4
    for layer_id in set(graph.layers) - before:
        layer = graph.layers[layer_id]
        shape = layer.attrs.get("shape")
        if (
            layer.kernel == "paddle.reshape"
            and layer.inputs.get("x") in state_names
            and isinstance(shape, list)
            and len(shape) == 3
            and sum(1 for d in shape if isinstance(d, int) and d < 0) > 1
        ):
            layer.attrs["shape"] = [directions, -1, hidden]


@register(
    "onnx-rnn-state-shape",
    "N23",
    "ONNX LSTM whose initial states are computed at run time (tf2onnx's Keras LSTM: zeros "
    "of the input's batch): X2Paddle reshaped them to [2, -1, -1], which Paddle refuses "
    "to export ('only one dimension can be -1'); directions and hidden size come from the "
    "weights (works with onnx-lstm-states, which wraps the LSTM mapper)",
)
def _rnn_state_shape(fix) -> None:
    _STATE_SHAPES.append(True)
    fix.on_undo(_STATE_SHAPES.clear)


# --------------------------------------------------------------------------- ConstantOfShape, Pad


@register(
    "onnx-constant-of-shape",
    "N16",
    "ConstantOfShape: Paddle 3.3's dygraph paddle.full reads a one-element shape tensor "
    "(or a Parameter) as [-1], so the generated Python model failed; a constant shape is "
    "emitted as a literal list, a one-element run-time shape as a list of that tensor",
)
def _constant_of_shape(fix) -> None:
    legacy = _opset_legacy()
    original = legacy.OpSet.ConstantOfShape

    @functools.wraps(original)
    def ConstantOfShape(self, node):
        val_shape = self.graph.get_input_node(node, idx=0, copy=True)
        shape = legacy._const_weight_or_none(val_shape)
        value = node.get_attr("value")
        if value is None or (shape is not None and np.asarray(shape).size == 0):
            return original(self, node)  # empty shape: onnx-empty-constant
        value = np.asarray(value).reshape(-1)
        if shape is None:
            out_shape = list(val_shape.out_shapes[0]) if val_shape.out_shapes else []
            if out_shape != [1]:
                return original(self, node)
            # a one-element shape tensor: passed as a list of that tensor, which both
            # dygraph and static Paddle read as the length
            self.paddle_graph.add_layer(
                "paddle.full",
                inputs={"shape": [val_shape.name]},
                outputs=[node.name],
                fill_value=value[0].item() if value.size else 0,
                dtype=repr(str(value.dtype)),
            )
            return None
        self.paddle_graph.add_layer(
            "paddle.full",
            inputs={},
            outputs=[node.name],
            shape=[int(d) for d in np.asarray(shape).reshape(-1)],
            fill_value=value[0].item() if value.size else 0,
            dtype=repr(str(value.dtype)),
        )
        return None

    fix.patch(legacy.OpSet, "ConstantOfShape", ConstantOfShape)


@register(
    "onnx-pad-low-rank",
    "N17",
    "reflect/edge Pad of a 1-D or 2-D tensor (the STFT framing of speech models): Paddle "
    "pads only 3-D to 5-D tensors in those modes, so the tensor is lifted to 3-D, padded "
    "on its last axis and lowered again",
)
def _pad_low_rank(fix) -> None:
    legacy = _opset_legacy()
    original = legacy.OpSet.Pad

    @functools.wraps(original)
    def Pad(self, node, op_independent=True):
        mode = node.get_attr("mode", "constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        val_x = self.graph.get_input_node(node, idx=0, copy=True)
        rank = len(val_x.out_shapes[0]) if val_x.out_shapes and val_x.out_shapes[0] else 0
        pads = node.get_attr("pads")
        if pads is None and len(node.layer.input) > 1:
            pads = legacy._const_weight_or_none(self.graph.get_input_node(node, idx=1, copy=True))
        if (
            mode == "constant"
            or rank not in (1, 2)
            or pads is None
            or not op_independent
            or len(pads) != 2 * rank
            or any(pads[i] or pads[rank + i] for i in range(rank - 1))
        ):
            return original(self, node, op_independent)
        lifted = node.name + "_x2pc_3d"
        self.paddle_graph.add_layer(
            "paddle.unsqueeze",
            inputs={"x": val_x.name},
            outputs=[lifted],
            axis=[1] if rank == 2 else [0, 1],
        )
        padded = node.name + "_x2pc_padded"
        self.paddle_graph.add_layer(
            "paddle.nn.functional.pad",
            inputs={"x": lifted},
            outputs=[padded],
            pad=[int(pads[rank - 1]), int(pads[2 * rank - 1])],
            mode=repr("replicate" if mode == "edge" else mode),
            data_format="'NCL'",
        )
        self.paddle_graph.add_layer(
            "paddle.squeeze",
            inputs={"x": padded},
            outputs=[node.name],
            axis=[0, 1] if rank == 1 else [1],
        )
        return None

    fix.patch(legacy.OpSet, "Pad", Pad)


@register(
    "onnx-slice-tensor-bounds",
    "N18",
    "Slice with run-time starts/ends (BERT's position ids at a dynamic sequence length) "
    "and unit steps is emitted as paddle.slice: X2Paddle's paddle.strided_slice with "
    "tensor bounds fails in Paddle 3's dygraph ('returned a result with an exception "
    "set'), so the generated Python model could not run",
)
def _slice_tensor_bounds(fix) -> None:
    legacy = _opset_legacy()
    original = legacy.OpSet.Slice

    @functools.wraps(original)
    def Slice(self, node):
        before = set(self.paddle_graph.layers)
        result = original(self, node)
        for layer_id in set(self.paddle_graph.layers) - before:
            layer = self.paddle_graph.layers[layer_id]
            strides = layer.attrs.get("strides")
            if (
                layer.kernel == "paddle.strided_slice"
                # tensor bounds are variable names in the attributes
                and (
                    isinstance(layer.attrs.get("starts"), str)
                    or isinstance(layer.attrs.get("ends"), str)
                )
                and strides is not None
                and not isinstance(strides, str)
                and np.all(np.asarray(strides) == 1)
            ):
                layer.kernel = "paddle.slice"
                layer.inputs["input"] = layer.inputs.pop("x")
                del layer.attrs["strides"]
        return result

    fix.patch(legacy.OpSet, "Slice", Slice)


# --------------------------------------------------------------------------- If

# a node is evaluated when converting only if its constant inputs are this small (shape and
# flag arithmetic, not weights)
_FOLD_MAX_ELEMENTS = 1 << 16


def fold_constant_branches(model) -> None:
    """Evaluate small constant sub-expressions and replace each ``If`` whose condition then
    is a constant by the nodes of its taken branch.

    Conditions become constants when the values they test are known: a shape given with
    ``-isd``, an input frozen with ``input_values`` (a sample rate). onnx's reference
    evaluator computes them in this process (no onnxruntime, which crashed on such a graph);
    an ``If`` on a run-time value stays (reported as unsupported).
    """
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    from .onnx_fixes import _apply_user_shapes

    _apply_user_shapes(model)
    graph = model.graph
    opset = [o for o in model.opset_import]
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    static = {}  # graph inputs whose every dim is known
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in consts and all(d.HasField("dim_value") for d in dims):
            static[value.name] = [d.dim_value for d in dims]
    changed = True
    while changed:
        changed = False
        for k, node in enumerate(list(graph.node)):
            if node.op_type == "Constant" and node.output[0] not in consts:
                value = _constant_value(node)
                if value is not None:
                    consts[node.output[0]] = value
                    if not any(a.name == "value" for a in node.attribute):
                        # value_int(s)/value_float(s) -> value: what the later passes read
                        del node.attribute[:]
                        node.attribute.append(
                            helper.make_attribute("value", numpy_helper.from_array(value))
                        )
                    changed = True
                continue
            if (
                node.op_type == "Shape"
                and node.input[0] in static
                and len(node.attribute) == 0
                and node.output[0] not in consts
            ):
                consts[node.output[0]] = np.array(static[node.input[0]], np.int64)
                changed = True
                continue
            if node.op_type == "If":
                if node.input[0] not in consts:
                    continue
                taken = bool(np.asarray(consts[node.input[0]]).reshape(-1)[0])
                branch = next(
                    a.g
                    for a in node.attribute
                    if a.name == ("then_branch" if taken else "else_branch")
                )
                new = list(branch.node)
                graph.initializer.extend(branch.initializer)
                for out, result in zip(node.output, branch.output):
                    new.append(helper.make_node("Identity", [result.name], [out]))
                nodes = list(graph.node)
                del graph.node[:]
                graph.node.extend(nodes[:k] + new + nodes[k + 1 :])
                changed = True
                break
            inputs = [i for i in node.input if i]
            if (
                not inputs
                or any(a.type in (5, 10) for a in node.attribute)  # sub-graphs
                or node.domain not in ("", "ai.onnx")
                or any(i not in consts for i in inputs)
                or any(np.asarray(consts[i]).size > _FOLD_MAX_ELEMENTS for i in inputs)
                or all(o in consts for o in node.output)
            ):
                continue
            try:
                sub = helper.make_model(
                    helper.make_graph(
                        [node],
                        "fold",
                        [helper.make_empty_tensor_value_info(i) for i in inputs],
                        [helper.make_empty_tensor_value_info(o) for o in node.output if o],
                    ),
                    opset_imports=opset,
                )
                results = ReferenceEvaluator(sub).run(None, {i: consts[i] for i in inputs})
            except Exception:
                continue
            for name, value in zip([o for o in node.output if o], results):
                consts[name] = np.asarray(value)
            changed = True
        if changed:
            continue
    # the If's inputs that folding made constant become initializers for X2Paddle
    used = {i for n in graph.node for i in n.input}
    have = {i.name for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    for name in sorted(used - have):
        if name in consts and name not in producers:
            graph.initializer.append(numpy_helper.from_array(np.asarray(consts[name]), name))


def _constant_value(node):
    from onnx import helper, numpy_helper

    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_int", "value_ints", "value_float", "value_floats"):
            value = helper.get_attribute_value(attr)
            dtype = np.int64 if "int" in attr.name else np.float32
            return np.asarray(value, dtype=dtype)
    return None


@register(
    "onnx-if-known-condition",
    "N14",
    "ONNX If whose condition is known when converting (a sample rate frozen with "
    "input_values, a shape given with -isd) is replaced by its taken branch, evaluated with "
    "onnx's reference evaluator; X2Paddle had no If, and onnxruntime's folding crashed "
    "(segfault) on such a graph",
)
def _if_known(fix) -> None:
    from .onnx_fixes import _ONNX_PASSES

    # first: the inlined branches then go through the other passes (opset-18 Reduce axes)
    _ONNX_PASSES.insert(0, fold_constant_branches)
    fix.on_undo(lambda: _ONNX_PASSES.remove(fold_constant_branches))


# --------------------------------------------------------------------------- PRelu


def prelu_channel_axis(slope_shape, x_rank: int | None) -> int | None:
    """The axis of the input a PRelu slope varies along, when it varies along exactly one.

    The slope broadcasts against the input as ONNX does (aligned on the last axes), so a
    slope ``[1, C, 1, 1]`` or ``[C, 1, 1]`` on a rank-4 input varies along axis 1, and
    ``[1, 1, C]`` along axis 3. None when the input's rank is unknown, when the slope has
    more axes than the input, or when it varies along no axis or several.
    """
    if x_rank is None or len(slope_shape) > x_rank:
        return None
    aligned = [1] * (x_rank - len(slope_shape)) + list(slope_shape)
    varying = [i for i, d in enumerate(aligned) if d != 1]
    return varying[0] if len(varying) == 1 else None


@register(
    "onnx-prelu-broadcast-slope",
    "N24",
    "ONNX PRelu whose slope is not X2Paddle's [C] / [C, 1, ...] form: X2Paddle reshaped the "
    "slope to its first dimension ('cannot reshape array of size 16 into shape (1,)' for "
    "tf2onnx's [1, C, 1, 1] and [1, 1, C]). A slope along axis 1 of an input of known rank "
    "becomes PReLU's per-channel weight; any other slope (another axis, several axes, an "
    "input of unknown rank, a computed slope) becomes relu(x) - slope * relu(-x), where the "
    "slope broadcasts as in ONNX and the input's shape is not needed",
)
def _prelu_slope(fix) -> None:
    legacy = _opset_legacy()
    original = legacy.OpSet.PRelu

    @functools.wraps(original)
    def PRelu(self, node):
        x = self.graph.get_input_node(node, idx=0, copy=True)
        slope_node = self.graph.get_input_node(node, idx=1, copy=True)
        slope = legacy._const_weight_or_none(slope_node)
        if slope is not None and np.asarray(slope).size <= 1:
            return original(self, node)  # one slope for all values: X2Paddle's PReLU
        x_shape = x.out_shapes[0] if x.out_shapes else None
        x_rank = len(x_shape) if x_shape else None
        if slope is not None:
            slope = np.asarray(slope)
            if prelu_channel_axis(slope.shape, x_rank) == 1:
                op_name = legacy.name_generator("prelu", self.nn_name2id)
                self.weights[op_name + "._weight"] = slope.reshape(-1)
                if set(slope_node.outputs) <= {node.layer_name}:  # read by no other node
                    self.weights.pop(slope_node.name, None)
                self.paddle_graph.add_layer(
                    "paddle.nn.PReLU",
                    inputs={"x": x.name},
                    outputs=[op_name, node.name],
                    num_parameters=int(slope.size),
                )
                return None
        # relu(x) - slope * relu(-x): x where x > 0, slope * x elsewhere, +-inf kept
        out = node.name
        graph = self.paddle_graph
        graph.add_layer("paddle.nn.functional.relu", inputs={"x": x.name}, outputs=[out + "__pos"])
        graph.add_layer("paddle.neg", inputs={"x": x.name}, outputs=[out + "__negx"])
        graph.add_layer(
            "paddle.nn.functional.relu", inputs={"x": out + "__negx"}, outputs=[out + "__neg"]
        )
        graph.add_layer(
            "paddle.multiply",
            inputs={"x": slope_node.name, "y": out + "__neg"},
            outputs=[out + "__mul"],
        )
        graph.add_layer(
            "paddle.subtract", inputs={"x": out + "__pos", "y": out + "__mul"}, outputs=[out]
        )
        return None

    fix.patch(legacy.OpSet, "PRelu", PRelu)
