"""TorchScript operators that scripted (not traced) modules use (N21).

``torch.jit.script`` keeps what tracing resolves away: ``aten::conv1d`` and
``aten::lstm_cell`` (nn.Conv1d / nn.LSTMCell's own forward), ``prim::TupleIndex`` (a tuple
indexed inside that forward), ``prim::device`` / ``prim::dtype`` (``x.device``,
``x.dtype`` passed on to ``zeros`` and ``to``), ``aten::atan2``, ``aten::Bool`` and the
whole-tensor ``aten::sum(x, dtype)``; and ``prim::Loop``'s carried values, which X2Paddle
never wrote back (silently wrong).
X2Paddle 1.6 refused all of them (Silero VAD's ``.jit``).
"""

from __future__ import annotations

import functools
import warnings

from .registry import register
from .torch_fixes import _DTYPES as _DTYPE_NAMES
from .torch_fixes import _code, _emit_line, _make_mapper


def prim_x2pc_lstm_cell(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    """torch's LSTMCell step: gates i, f, g, o in that order along the last axis."""
    x, hx = _code(layer, "input"), _code(layer, "hx")
    w_ih, w_hh = _code(layer, "w_ih"), _code(layer, "w_hh")
    b_ih, b_hh = _code(layer, "b_ih"), _code(layer, "b_hh")
    h, c = layer.outputs[0], layer.outputs[1]
    g = f"{h}_gates"
    lines = [
        f"{g} = paddle.matmul({x}, {w_ih}, transpose_y=True) + "
        f"paddle.matmul({hx}[0], {w_hh}, transpose_y=True)"
    ]
    for b in (b_ih, b_hh):
        if b != "None":
            lines.append(f"{g} = {g} + {b}")
    lines += [
        f"{g}_i, {g}_f, {g}_g, {g}_o = paddle.chunk({g}, 4, axis=-1)",
        f"{c} = paddle.nn.functional.sigmoid({g}_f) * {hx}[1] + "
        f"paddle.nn.functional.sigmoid({g}_i) * paddle.tanh({g}_g)",
        f"{h} = paddle.nn.functional.sigmoid({g}_o) * paddle.tanh({c})",
    ]
    _emit_line(layer, indent, forward_func, "\n".join(lines))


def prim_x2pc_tuple_index(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    _emit_line(
        layer,
        indent,
        forward_func,
        f"{layer.outputs[0]} = {_code(layer, 'tup')}[{_code(layer, 'index')}]",
    )


def prim_x2pc_attr_of(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    """``x.dtype`` / ``x.place``: Paddle's own objects, read by the creation ops below."""
    _emit_line(
        layer,
        indent,
        forward_func,
        f"{layer.outputs[0]} = {_code(layer, 'x')}.{layer.attrs['attr']}",
    )


def prim_x2pc_bool(
    layer,
    indent=1,
    init_func=(),
    forward_func=(),
    layer_id=None,
    different_attrs=None,
    is_return_line=False,
):
    expr = f"bool({_code(layer, 'x')})"
    if is_return_line:  # inlined as the condition of an if
        return expr
    _emit_line(layer, indent, forward_func, f"{layer.outputs[0]} = {expr}")


def prim_x2pc_full_dtype_of(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    _emit_line(
        layer,
        indent,
        forward_func,
        f"{layer.outputs[0]} = paddle.full(shape={_code(layer, 'size')}, "
        f"fill_value={layer.attrs['fill_value']}, dtype={_code(layer, 'dtype')})",
    )


def prim_x2pc_to(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    """``x.to(device)`` is the identity on one device; ``x.to(y.dtype)`` a cast."""
    x, dtype = _code(layer, "x"), _code(layer, "dtype")
    expr = x if dtype == "None" else f"paddle.cast({x}, {dtype})"
    _emit_line(layer, indent, forward_func, f"{layer.outputs[0]} = {expr}")


def _variable(mapper, name: str) -> bool:
    return name not in mapper.attrs


def _creation_with_variable_dtype(original, fill_value: int):
    """aten::zeros/ones(size, dtype, layout, device, pin_memory) whose dtype is a run-time
    value (``x.dtype``): X2Paddle looked the dtype up in its table of literal codes."""

    @functools.wraps(original)
    def mapper_fn(mapper, graph, node):
        inputs_name, inputs_node = mapper._get_inputs_name(node)
        if len(inputs_name) < 2 or not _variable(mapper, inputs_name[1]):
            return original(mapper, graph, node)
        fn = _make_mapper("prim.x2pc_full_dtype_of", [("size", 0), ("dtype", 1)])
        return fn(mapper, _FillValue(graph, fill_value), node)

    return mapper_fn


class _FillValue:
    """A graph proxy adding ``fill_value`` to the layer the generic mapper adds."""

    def __init__(self, graph, value):
        self._graph, self._value = graph, value

    def add_layer(self, kernel, **kwargs):
        return self._graph.add_layer(kernel, fill_value=self._value, **kwargs)

    def __getattr__(self, name):
        return getattr(self._graph, name)


def _to_with_variables(original):
    """aten::to(x, device, dtype, ...) / aten::to(x, dtype, ...) with a run-time device or
    dtype (``x.device``, ``y.dtype``)."""

    @functools.wraps(original)
    def mapper_fn(mapper, graph, node):
        inputs_name, _ = mapper._get_inputs_name(node)
        types = [str(i.type()) for i in node.inputs()]
        if len(types) < 2 or types[1] == "Tensor":
            return original(mapper, graph, node)  # x.to(other)
        dtype_idx = 2 if types[1].startswith("Device") else 1
        dtype = inputs_name[dtype_idx] if dtype_idx < len(inputs_name) else None
        if dtype is not None and not _variable(mapper, dtype) and mapper.attrs[dtype] is not None:
            return original(mapper, graph, node)  # a literal dtype: X2Paddle's cast
        args = [("x", 0)] + ([("dtype", dtype_idx)] if dtype and _variable(mapper, dtype) else [])
        return _make_mapper("prim.x2pc_to", args)(mapper, graph, node)

    return mapper_fn


def _sum_whole(original):
    """aten::sum(x, dtype): the whole-tensor overload (``x.sum()`` when scripted);
    X2Paddle read the four-argument form only."""

    @functools.wraps(original)
    def mapper_fn(mapper, graph, node):
        inputs_name, _ = mapper._get_inputs_name(node)
        if len(inputs_name) != 2:
            return original(mapper, graph, node)
        dtype = mapper.attrs.get(inputs_name[1])
        fixed = {} if dtype is None else {"dtype": repr(_DTYPE_NAMES.get(int(dtype), "float32"))}
        return _make_mapper("paddle.sum", [("x", 0)], **fixed)(mapper, graph, node)

    return mapper_fn


def _loop_carried(original_map, original_code):
    """prim::Loop: X2Paddle's loop body read its carried values under the names they had
    before the loop and wrote each new value to the loop's output, never back, so every
    iteration started again from the initial value: silently wrong for any loop that
    carries a value (``y = y * 0.5 + i`` three times gave one step's answer)."""

    @functools.wraps(original_map)
    def prim_Loop(mapper, graph, node):
        outputs = mapper._get_outputs_name(node)
        before = set(graph.layers)
        result = original_map(mapper, graph, node)
        block = list(node.blocks())[0]
        carried = [mapper.outputs_info[v.unique()] for v in list(block.inputs())[1:]]
        for layer_id in set(graph.layers) - before:
            layer = graph.layers[layer_id]
            if layer.kernel == "prim.loop":
                layer.attrs["x2pc_carried"] = list(zip(carried, outputs))
        return result

    def prim_loop(layer, indent=1, init_func=(), forward_func=(), layer_id=None, **kwargs):
        pairs = layer.attrs.pop("x2pc_carried", [])
        for name, out in pairs:  # zero iterations: the outputs are the initial values
            _emit_line(layer, indent, forward_func, f"{out} = {name}")
        original_code(layer, indent, init_func, forward_func, layer_id, **kwargs)
        for name, out in pairs:
            _emit_line(layer, indent + 1, forward_func, f"{name} = {out}")
        if pairs:
            layer.attrs["x2pc_carried"] = pairs

    return prim_Loop, prim_loop


@register(
    "aten-script-ops",
    "N21",
    "TorchScript (scripted) operators: aten::conv1d, aten::lstm_cell, aten::atan2, "
    "aten::Bool, prim::TupleIndex, prim::device, prim::dtype, and zeros/ones/to taking a "
    "run-time dtype or device, the whole-tensor aten::sum(x, dtype); X2Paddle refused "
    "them (Silero VAD's .jit); prim::Loop writes its carried values back each iteration "
    "(X2Paddle restarted every iteration from the initial value: silently wrong)",
)
def _script_ops(fix) -> None:
    from x2paddle.op_mapper.pytorch2paddle import aten, prim, prim2code

    for name, fn in [
        ("prim_x2pc_lstm_cell", prim_x2pc_lstm_cell),
        ("prim_x2pc_tuple_index", prim_x2pc_tuple_index),
        ("prim_x2pc_attr_of", prim_x2pc_attr_of),
        ("prim_x2pc_bool", prim_x2pc_bool),
        ("prim_x2pc_full_dtype_of", prim_x2pc_full_dtype_of),
        ("prim_x2pc_to", prim_x2pc_to),
    ]:
        fix.patch(prim2code, name, fn)
    fix.patch(
        aten,
        "aten_conv1d",
        _make_mapper(
            "paddle.nn.functional.conv1d",
            [
                ("x", 0),
                ("weight", 1),
                ("bias", 2),
                ("stride", 3),
                ("padding", 4),
                ("dilation", 5),
                ("groups", 6),
            ],
        ),
    )
    fix.patch(aten, "aten_atan2", _make_mapper("paddle.atan2", [("x", 0), ("y", 1)]))
    fix.patch(aten, "aten_Bool", _make_mapper("prim.x2pc_bool", [("x", 0)]))
    fix.patch(
        aten,
        "aten_lstm_cell",
        _make_mapper(
            "prim.x2pc_lstm_cell",
            [("input", 0), ("hx", 1), ("w_ih", 2), ("w_hh", 3), ("b_ih", 4), ("b_hh", 5)],
        ),
    )
    fix.patch(
        prim, "prim_TupleIndex", _make_mapper("prim.x2pc_tuple_index", [("tup", 0), ("index", 1)])
    )
    fix.patch(prim, "prim_device", _make_mapper("prim.x2pc_attr_of", [("x", 0)], attr="place"))
    fix.patch(prim, "prim_dtype", _make_mapper("prim.x2pc_attr_of", [("x", 0)], attr="dtype"))
    fix.patch(aten, "aten_zeros", _creation_with_variable_dtype(aten.aten_zeros, 0))
    fix.patch(aten, "aten_ones", _creation_with_variable_dtype(aten.aten_ones, 1))
    fix.patch(aten, "aten_to", _to_with_variables(aten.aten_to))
    fix.patch(aten, "aten_sum", _sum_whole(aten.aten_sum))
    loop_map, loop_code = _loop_carried(prim.prim_Loop, prim2code.prim_loop)
    fix.patch(prim, "prim_Loop", loop_map)
    fix.patch(prim2code, "prim_loop", loop_code)


_SCALARS = {"int": int, "float": float, "bool": bool}


def freeze_scalar_inputs(graph, examples) -> list[str]:
    """Replace every ``int``/``float``/``bool`` input of a scripted graph by a constant of its
    example value; returns the frozen inputs' descriptions.

    X2Paddle maps only ``Tensor`` (and ``Dict[str, Tensor]``) graph inputs and skips the
    others, so their first use looked up a value it never named (``KeyError: <its id>``, on
    Silero VAD's ``forward(self, x, sr: int)``). A traced model bakes such a value in the
    same way; the converted model takes the tensor inputs only (as ``--input-value`` does
    for ONNX).
    """
    import torch

    frozen = []
    inputs = list(graph.inputs())[1:]  # the first is the module itself
    examples = list(examples or [])
    first = next(iter(graph.nodes()), None)
    for k, value in enumerate(inputs):
        kind = str(value.type())
        if kind not in _SCALARS or not value.uses():
            continue
        if k >= len(examples) or not isinstance(examples[k], (int, float, bool)):
            continue  # no example value: X2Paddle's own error stays
        example = _SCALARS[kind](examples[k])
        node = graph.create("prim::Constant")
        if kind == "float":
            node.f_("value", example)
            node.output().setType(torch._C.FloatType.get())
        else:
            node.i_("value", int(example))
            node.output().setType(
                torch._C.IntType.get() if kind == "int" else torch._C.BoolType.get()
            )
        if first is not None:
            node.insertBefore(first)
        else:
            graph.appendNode(node)
        value.replaceAllUsesWith(node.output())
        # TorchScript names a value "<argument>.<n>"; the argument name is what users know
        frozen.append(f"{value.debugName().split('.')[0]}={example}")
    return frozen


def module_state_writes(graph) -> list[str]:
    """Module attributes a scripted forward assigns (``prim::SetAttr``), nested blocks
    included; BatchNorm's ``num_batches_tracked`` (training mode only) is not state."""
    names = []

    def walk(block):
        for node in block.nodes():
            if node.kind() == "prim::SetAttr" and node.s("name") != "num_batches_tracked":
                names.append(node.s("name"))
            for sub in node.blocks():
                walk(sub)

    walk(graph)
    return sorted(set(names))


@register(
    "script-scalar-inputs",
    "N26",
    "scripted TorchScript: int/float/bool forward arguments (Silero VAD's sr: int) are "
    "frozen to their example's value; X2Paddle skipped every non-tensor graph input and "
    "failed at its first use with KeyError: <value id>. A forward that assigns module "
    "attributes (prim::SetAttr: state kept across calls) is refused naming them; X2Paddle "
    "failed on it with KeyError: 0 (the module itself)",
)
def _scalar_inputs(fix) -> None:
    from x2paddle.decoder.pytorch_decoder import ScriptDecoder

    from ..errors import ConversionWarning, UnsupportedOpsError

    original = ScriptDecoder.__init__

    @functools.wraps(original)
    def __init__(self, module, input_examples=None):
        original(self, module, input_examples)
        frozen = freeze_scalar_inputs(self.graph, input_examples)
        if frozen:
            warnings.warn(
                ConversionWarning(
                    "scripted forward arguments frozen to their example values: "
                    + ", ".join(frozen)
                    + "; the converted model has no input for them (convert once per value "
                    "you need)"
                ),
                stacklevel=2,
            )
        state = module_state_writes(self.graph)
        if state:
            raise UnsupportedOpsError(
                "PyTorch",
                [
                    "prim::SetAttr (forward assigns module state kept across calls: "
                    + ", ".join(f"self.{n}" for n in state)
                    + "; a Paddle inference model is stateless: pass the state as an input "
                    "and return it)"
                ],
            )

    fix.patch(ScriptDecoder, "__init__", __init__)
