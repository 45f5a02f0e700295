"""Fixes of X2Paddle's ONNX decoder and op mappers (R7, R9, R15-R19)."""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np

from .registry import register

# Passes run on the ModelProto before X2Paddle decodes it (only where the input uses an
# encoding X2Paddle's decoder cannot read; the op semantics are mapped by the emitters).
_ONNX_PASSES: list = []
# passes that must see the model after all of the above (after onnxruntime's shape folding,
# which needs standard operators only)
_LATE_ONNX_PASSES: list = []


def _add_pass(fix, fn) -> None:
    _ONNX_PASSES.append(fn)
    fix.on_undo(lambda: _ONNX_PASSES.remove(fn))


def _opset_legacy():
    from x2paddle.op_mapper.onnx2paddle import opset_legacy

    return opset_legacy


@register("onnx-pass-hook", "R15", "run ONNX legalization passes before X2Paddle's decoder")
def _pass_hook(fix) -> None:
    from x2paddle.decoder.onnx_decoder import ONNXDecoder

    original = ONNXDecoder.optimize_model_skip_op

    @functools.wraps(original)
    def optimize_model_skip_op(self, onnx_model):
        for p in list(_ONNX_PASSES) + list(_LATE_ONNX_PASSES):
            p(onnx_model)
        return original(self, onnx_model)

    fix.patch(ONNXDecoder, "optimize_model_skip_op", optimize_model_skip_op)


def _maxpool_unit_dilations(model) -> None:
    for node in model.graph.node:
        if node.op_type != "MaxPool":
            continue
        for i, attr in enumerate(node.attribute):
            if attr.name == "dilations" and all(d == 1 for d in attr.ints):
                del node.attribute[i]
                break


@register(
    "maxpool-dilations",
    "R15",
    "accept MaxPool dilations=[1,..] written by torch >= 2 (the default, no dilation)",
)
def _maxpool(fix) -> None:
    _add_pass(fix, _maxpool_unit_dilations)


def _unshare_initializers(model) -> None:
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    # torch's exporter writes a duplicate tensor as ``dup = Identity(original)``; X2Paddle
    # drops Identity nodes, so both consumers end up popping the same weight
    for node in list(graph.node):
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = graph.initializer.add()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            inits[copy.name] = copy
            graph.node.remove(node)
    uses = Counter()
    for node in graph.node:
        for name in node.input:
            if name in inits:
                uses[name] += 1
    seen = Counter()
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in inits and uses[name] > 1:
                seen[name] += 1
                if seen[name] == 1:
                    continue
                copy = graph.initializer.add()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}__x2pc_{seen[name]}"
                node.input[k] = copy.name


@register(
    "shared-initializers",
    "R16",
    "give each consumer its own copy of an initializer the exporter de-duplicated",
)
def _shared(fix) -> None:
    _add_pass(fix, _unshare_initializers)


_REDUCE_AXES_AS_INPUT = {
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSumExp",
    "ReduceSumSquare",
    "ReduceLogSum",
}


def _reduce_axes_to_attribute(model) -> None:
    """Opset >= 18 passes Reduce* axes as a second input; X2Paddle reads the attribute."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
    for node in graph.node:
        if node.op_type in _REDUCE_AXES_AS_INPUT and len(node.input) == 2:
            axes_name = node.input[1]
            if axes_name == "":
                del node.input[1]
                continue
            if axes_name not in consts:
                continue  # dynamic axes: left to X2Paddle, which reports it
            axes = [int(a) for a in np.asarray(consts[axes_name]).reshape(-1)]
            del node.input[1]
            noop = [a for a in node.attribute if a.name == "noop_with_empty_axes"]
            if noop and noop[0].i == 1 and not axes:
                node.op_type = "Identity"
                del node.attribute[:]
                continue
            for a in noop:
                node.attribute.remove(a)
            if axes:
                node.attribute.append(helper.make_attribute("axes", axes))
    # the node now follows the opset-13 signature
    del onnx


@register(
    "reduce-axes-input", "R18", "opsets 18-20: Reduce* ops with axes as an input (dynamo exporter)"
)
def _reduce_axes(fix) -> None:
    _add_pass(fix, _reduce_axes_to_attribute)


def _is_int(dtype) -> bool:
    try:
        return np.issubdtype(np.dtype(dtype), np.integer)
    except TypeError:
        return False


@register(
    "onnx-int-div",
    "R7",
    "integer ONNX Div emits a truncating integer division (paddle.divide is true div)",
)
def _int_div(fix) -> None:
    legacy = _opset_legacy()
    original = legacy.OpSet.elementwise_map

    @functools.wraps(original)
    def elementwise_map(self, node):
        if node.layer_type == "Div":
            val_x = self.graph.get_input_node(node, idx=0, copy=True)
            val_y = self.graph.get_input_node(node, idx=1, copy=True)
            if _is_int(val_x.dtype) and _is_int(val_y.dtype):
                # ONNX integer Div truncates toward zero; exact for |x| < 2**53
                tmp = node.name + "_x2pc"
                self.paddle_graph.add_layer(
                    "paddle.cast", inputs={"x": val_x.name}, outputs=[tmp + "_x"], dtype="'float64'"
                )
                self.paddle_graph.add_layer(
                    "paddle.cast", inputs={"x": val_y.name}, outputs=[tmp + "_y"], dtype="'float64'"
                )
                self.paddle_graph.add_layer(
                    "paddle.divide", inputs={"x": tmp + "_x", "y": tmp + "_y"}, outputs=[tmp + "_q"]
                )
                self.paddle_graph.add_layer(
                    "paddle.trunc", inputs={"input": tmp + "_q"}, outputs=[tmp + "_t"]
                )
                self.paddle_graph.add_layer(
                    "paddle.cast",
                    inputs={"x": tmp + "_t"},
                    outputs=[node.name],
                    dtype=repr(str(np.dtype(val_x.dtype))),
                )
                return None
        return original(self, node)

    fix.patch(legacy.OpSet, "elementwise_map", elementwise_map)


@register(
    "onnx-empty-constant",
    "R9",
    "empty ONNX constants (scalar ConstantOfShape shapes) become 0-size / 0-d tensors",
)
def _empty_constant(fix) -> None:
    legacy = _opset_legacy()
    original_constant = legacy.OpSet.Constant
    original_cos = legacy.OpSet.ConstantOfShape

    @functools.wraps(original_constant)
    def Constant(self, node):
        value = node.get_attr("value")
        if value is not None and np.asarray(value).size == 0:
            self.paddle_graph.add_layer(
                "paddle.zeros",
                inputs={},
                outputs=[node.name],
                shape=[0],
                dtype=repr(str(np.asarray(value).dtype)),
            )
            return None
        return original_constant(self, node)

    @functools.wraps(original_cos)
    def ConstantOfShape(self, node):
        val_shape = self.graph.get_input_node(node, idx=0, copy=True)
        shape = legacy._const_weight_or_none(val_shape)
        if shape is not None and np.asarray(shape).size == 0:
            value = np.asarray(node.get_attr("value", np.zeros(1, np.float32))).reshape(-1)
            fill = value[0].item() if value.size else 0.0
            self.paddle_graph.add_layer(
                "paddle.full",
                inputs={},
                outputs=[node.name],
                shape=[],
                fill_value=fill,
                dtype=repr(str(value.dtype)),
            )
            return None
        return original_cos(self, node)

    fix.patch(legacy.OpSet, "Constant", Constant)
    fix.patch(legacy.OpSet, "ConstantOfShape", ConstantOfShape)


_RESIZE_MODES = {
    ("nearest", 3): "nearest",
    ("nearest", 4): "nearest",
    ("nearest", 5): "nearest",
    ("linear", 3): "linear",
    ("linear", 4): "bilinear",
    ("linear", 5): "trilinear",
    ("cubic", 4): "bicubic",
}


@register(
    "resize-scales-only",
    "R17",
    "Resize with scales and no sizes input keeps its mode and coordinate transform",
)
def _resize(fix) -> None:
    legacy = _opset_legacy()
    original = legacy.OpSet.Resize

    @functools.wraps(original)
    def Resize(self, node):
        names = list(node.layer.input)
        if len(names) < 3:
            return original(self, node)
        val_x = self.graph.get_input_node(node, idx=0, copy=True)
        rank = len(val_x.out_shapes[0])
        scales = sizes = None
        if len(names) > 2 and names[2]:
            scales = legacy._const_weight_or_none(self.graph.get_node(names[2], copy=True))
        if len(names) > 3 and names[3]:
            sizes = legacy._const_weight_or_none(self.graph.get_node(names[3], copy=True))
        has_scales = scales is not None and np.asarray(scales).size > 0
        has_sizes = sizes is not None and np.asarray(sizes).size > 0
        mode = node.get_attr("mode", "nearest")
        if isinstance(mode, bytes):
            mode = mode.decode()
        key = (mode, rank)
        if not (has_scales or has_sizes) or key not in _RESIZE_MODES:
            return original(self, node)
        ctm = node.get_attr("coordinate_transformation_mode", "half_pixel")
        if isinstance(ctm, bytes):
            ctm = ctm.decode()
        attrs = {"mode": repr(_RESIZE_MODES[key]), "align_corners": ctm == "align_corners"}
        if mode != "nearest" and ctm != "align_corners":
            # half_pixel / pytorch_half_pixel -> align_mode 0, asymmetric -> 1
            attrs["align_mode"] = 1 if ctm == "asymmetric" else 0
        if has_sizes:
            attrs["size"] = [int(s) for s in np.asarray(sizes).reshape(-1)[2:]]
        else:
            attrs["scale_factor"] = [float(s) for s in np.asarray(scales).reshape(-1)[2:]]
        data_format = {3: "'NCW'", 4: "'NCHW'", 5: "'NCDHW'"}[rank]
        self.paddle_graph.add_layer(
            "paddle.nn.functional.interpolate",
            inputs={"x": val_x.name},
            outputs=[node.name],
            data_format=data_format,
            **attrs,
        )
        return None

    fix.patch(legacy.OpSet, "Resize", Resize)


def _new_ops(fix) -> None:
    legacy = _opset_legacy()

    def HardSwish(self, node):
        val_x = self.graph.get_input_node(node, idx=0, copy=True)
        self.paddle_graph.add_layer(
            "paddle.nn.functional.hardswish", inputs={"x": val_x.name}, outputs=[node.name]
        )

    def LayerNormalization(self, node):
        val_x = self.graph.get_input_node(node, idx=0, copy=True)
        rank = len(val_x.out_shapes[0])
        axis = node.get_attr("axis", -1)
        axis = axis + rank if axis < 0 else axis
        shape = [int(d) for d in val_x.out_shapes[0][axis:]]
        inputs = {"x": val_x.name}
        names = list(node.layer.input)
        inputs["weight"] = self.graph.get_input_node(node, idx=1, copy=True).name
        if len(names) > 2 and names[2]:
            inputs["bias"] = self.graph.get_input_node(node, idx=2, copy=True).name
        self.paddle_graph.add_layer(
            "paddle.nn.functional.layer_norm",
            inputs=inputs,
            outputs=[node.name],
            normalized_shape=shape,
            epsilon=node.get_attr("epsilon", 1e-5),
        )

    def Mish(self, node):
        val_x = self.graph.get_input_node(node, idx=0, copy=True)
        self.paddle_graph.add_layer(
            "paddle.nn.functional.mish", inputs={"x": val_x.name}, outputs=[node.name]
        )

    def Gelu(self, node):  # opset 20
        val_x = self.graph.get_input_node(node, idx=0, copy=True)
        approximate = node.get_attr("approximate", "none")
        if isinstance(approximate, bytes):
            approximate = approximate.decode()
        self.paddle_graph.add_layer(
            "paddle.nn.functional.gelu",
            inputs={"x": val_x.name},
            outputs=[node.name],
            approximate=approximate == "tanh",
        )

    for name, fn in {
        "HardSwish": HardSwish,
        "LayerNormalization": LayerNormalization,
        "Mish": Mish,
        "Gelu": Gelu,
    }.items():
        if not hasattr(legacy.OpSet, name):
            fix.patch(legacy.OpSet, name, legacy.print_mapping_info(fn))


register(
    "onnx-new-ops",
    "R18",
    "ONNX ops of opsets 14-20 X2Paddle lacks: HardSwish, LayerNormalization, Mish, Gelu",
)(_new_ops)


from . import onnx_gru  # noqa: E402,F401

_NOT_INLINED = {"GroupNormalization"}


def _apply_user_shapes(model) -> None:
    """Write the shapes given as ``input_shape_dict`` into the graph's inputs."""
    from .onnx_real import user_input_shapes

    shapes = user_input_shapes() or {}
    for value in model.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            given = [int(d) for d in shapes[value.name]]
            if len(dims) != len(given):
                continue  # X2Paddle reports the rank mismatch
            for dim, size in zip(dims, given):
                if size > 0:
                    dim.Clear()
                    dim.dim_value = size


def _fold_warning(message: str) -> None:
    """Say that shape folding was skipped, as every fix says what it changed."""
    import warnings

    from ..errors import ConversionWarning

    warnings.warn(ConversionWarning(message), stacklevel=3)


# the child process that runs onnxruntime's optimizer (a module attribute so a test can
# replace it by one that crashes)
FOLD_WORKER = {"path": None}


def _fold_static_shapes(model) -> None:
    """Constant-fold shape arithmetic of a model whose inputs all have static shapes.

    X2Paddle's own shape inference loses the rank of tensors computed by Shape/Gather/
    Concat chains (torch's exporter writes them for ``view``/``unflatten``/RNN initial
    states), so ``paddle.jit.to_static`` later sees rank -1 and fails. onnxruntime's basic
    (standard-ops-only) level folds those chains into initializers. Shapes given as
    ``input_shape_dict`` count as static. onnxruntime runs in a child process: it crashed
    (segfault) on a real model, which must not take the converter down with it.
    """
    try:
        import onnx
    except ImportError:
        return
    if any(n.op_type in _NOT_INLINED for n in model.graph.node):
        # onnxruntime would inline these function ops into primitive ops; X2Paddle maps
        # them directly (onnx-group-norm), so the model is left unfolded
        return
    _apply_user_shapes(model)
    inits = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
            return  # dynamic input shapes: nothing can be folded safely
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.onnx"), os.path.join(tmp, "out.onnx")
        onnx.save(model, src)
        worker = FOLD_WORKER["path"] or os.path.join(
            os.path.dirname(os.path.dirname(__file__)), "_fold_worker.py"
        )
        try:
            proc = subprocess.run(
                [sys.executable, worker, src, dst], capture_output=True, text=True, timeout=600
            )
        except subprocess.TimeoutExpired:
            _fold_warning("onnxruntime's shape folding did not finish in 600 s")
            return
        if proc.returncode != 0 or not os.path.exists(dst):
            how = (
                f"crashed (signal {-proc.returncode})"
                if proc.returncode < 0
                else f"failed (exit {proc.returncode})"
            )
            tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
            _fold_warning(
                f"onnxruntime {how} while folding shapes; converted "
                f"without folding{': ' + tail if tail else ''}"
            )
            return
        folded = onnx.load(dst)
    opset = {o.domain: o.version for o in model.opset_import}
    model.CopyFrom(folded)
    for o in model.opset_import:  # ORT may bump the declared opset: keep the original
        if o.domain in opset:
            o.version = opset[o.domain]


@register(
    "onnx-fold-static-shapes",
    "R19",
    "fold Shape/Gather/Concat chains of static-shape models (X2Paddle loses ranks)",
)
def _fold(fix) -> None:
    _add_pass(fix, _fold_static_shapes)


@register(
    "onnx-gather-nd-indices",
    "R21",
    "ONNX Gather with computed multi-dimensional indices (transformers-5 masks): "
    "gather the flattened indices, reshape to data[:axis] + indices + data[axis+1:]",
)
def _gather(fix) -> None:
    legacy = _opset_legacy()
    original = legacy.OpSet.Gather

    @functools.wraps(original)
    def Gather(self, node):
        val_x = self.graph.get_input_node(node, idx=0, copy=True)
        indices = self.graph.get_input_node(node, idx=1, copy=True)
        const = legacy._const_weight_or_none(indices)
        if const is not None and np.ndim(const) <= 1:
            return original(self, node)  # scalar / 1-D constant indices: X2Paddle's mapping
        rank = len(val_x.out_shapes[0]) if val_x.out_shapes and val_x.out_shapes[0] else None
        axis = node.get_attr("axis", 0)
        if axis < 0:
            if rank is None:
                return original(self, node)
            axis += rank
        x, idx, out = val_x.name, indices.name, node.name
        self.paddle_graph.add_layer(
            "paddle.reshape", inputs={"x": idx}, outputs=[out + "_x2pc_flat"], shape=[-1]
        )
        self.paddle_graph.add_layer(
            "paddle.gather",
            inputs={"x": x, "index": out + "_x2pc_flat"},
            outputs=[out + "_x2pc_g"],
            axis=axis,
        )
        self.paddle_graph.add_layer(
            "paddle.reshape",
            inputs={"x": out + "_x2pc_g"},
            outputs=[out],
            shape=f"list({x}.shape[:{axis}]) + list({idx}.shape) + list({x}.shape[{axis + 1}:])",
        )
        return None

    fix.patch(legacy.OpSet, "Gather", Gather)
