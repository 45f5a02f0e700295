"""Fixes of X2Paddle's PyTorch (TorchScript) op mapper and code emitter (R4, R7, R19, R21)."""

from __future__ import annotations

import functools
import warnings

from .registry import register


def _modules():
    from x2paddle.op_mapper.pytorch2paddle import aten, prim2code

    return aten, prim2code


def _code(layer, key, default="None"):
    """The Python expression of a layer argument: a variable name or a literal."""
    if key in layer.inputs:
        return layer.inputs[key]
    if key in layer.attrs:
        value = layer.attrs[key]
        return repr(value) if isinstance(value, str) and not value.startswith("'") else str(value)
    return default


def _emit_line(layer, indent, forward_func, line):
    from x2paddle.op_mapper.pytorch2paddle.prim2code import gen_codes

    forward_func.extend(gen_codes(line.split("\n"), indent=indent))


def _make_mapper(kernel: str, args: list[tuple[str, int]], **fixed):
    """An aten mapper: argument ``i`` of the TorchScript node becomes ``key`` of the layer
    (a literal attribute when TorchScript knows its value, else an input variable)."""

    def mapper_fn(mapper, graph, node):
        scope_name = mapper.normalize_scope_name(node)
        outputs = mapper._get_outputs_name(node)
        inputs_name, inputs_node = mapper._get_inputs_name(node)
        layer_inputs, layer_attrs = {}, dict(fixed)
        current_outputs = list(outputs)
        for key, idx in args:
            if idx >= len(inputs_name):
                continue
            name = inputs_name[idx]
            if name in mapper.attrs:
                layer_attrs[key] = mapper.attrs[name]
            else:
                mapper._check_input(graph, inputs_node[idx], name, current_outputs, scope_name)
                layer_inputs[key] = name
        graph.add_layer(
            kernel, inputs=layer_inputs, outputs=outputs, scope_name=scope_name, **layer_attrs
        )
        return list(layer_inputs.values()), current_outputs

    return mapper_fn


_DTYPES = {
    0: "uint8",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "int64",
    5: "float16",
    6: "float32",
    7: "float64",
    11: "bool",
    15: "bfloat16",
}


def _dtype_expr(layer, like: str) -> str:
    code = layer.attrs.get("dtype") if "dtype" not in layer.inputs else None
    if code is None or code == "None":
        return f"{like}.dtype"
    return repr(_DTYPES.get(int(code), "float32"))


def prim_x2pc_new_full(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    x, size = _code(layer, "x"), _code(layer, "size")
    fill = _code(layer, "fill_value", "0")
    _emit_line(
        layer,
        indent,
        forward_func,
        f"{layer.outputs[0]} = paddle.full(shape={size}, fill_value={fill}, "
        f"dtype={_dtype_expr(layer, x)})",
    )


def prim_x2pc_fill(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    # in-place: later TorchScript uses refer to the input's name, so rebind it too
    x, value = _code(layer, "x"), _code(layer, "value")
    _emit_line(
        layer,
        indent,
        forward_func,
        f"{x} = paddle.full_like({x}, {value})\n{layer.outputs[0]} = {x}",
    )


def prim_x2pc_unflatten(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    x, dim, sizes = _code(layer, "x"), _code(layer, "dim"), _code(layer, "sizes")
    d = f"(({dim}) % len({x}.shape))"
    _emit_line(
        layer,
        indent,
        forward_func,
        f"{layer.outputs[0]} = paddle.reshape({x}, list({x}.shape[:{d}]) + "
        f"list({sizes}) + list({x}.shape[{d} + 1:]))",
    )


def prim_x2pc_sdpa(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    """torch.nn.functional.scaled_dot_product_attention in [B, H, S, D] layout.

    Explicit matmuls keep torch's layout (Paddle's fused kernel wants [B, S, H, D] and
    half precision); grouped KV heads are repeated, ``scale`` and ``is_causal`` honoured.
    """
    q, k, v = _code(layer, "query"), _code(layer, "key"), _code(layer, "value")
    mask, causal = _code(layer, "attn_mask"), _code(layer, "is_causal", "False")
    scale = _code(layer, "scale")
    out = layer.outputs[0]
    lines = [
        f"{out}_k = {k}",
        f"{out}_v = {v}",
        f"if {q}.shape[-3] != {k}.shape[-3]:",
        f"    {out}_k = paddle.repeat_interleave({k}, {q}.shape[-3] // {k}.shape[-3], axis=-3)",
        f"    {out}_v = paddle.repeat_interleave({v}, {q}.shape[-3] // {v}.shape[-3], axis=-3)",
        f"{out}_scale = {scale} if {scale} is not None else 1.0 / ({q}.shape[-1] ** 0.5)",
        f"{out}_s = paddle.matmul({q}, {out}_k, transpose_y=True) * {out}_scale",
    ]
    if causal not in ("False", "0"):
        lines.append(
            f"{out}_s = paddle.where(paddle.tril(paddle.ones([{q}.shape[-2], {k}.shape[-2]], "
            f"dtype='bool')), {out}_s, paddle.full_like({out}_s, float('-inf')))"
        )
    if mask != "None":
        lines += [
            f"if {mask}.dtype == paddle.bool:",
            f"    {out}_s = paddle.where({mask}, {out}_s, paddle.full_like({out}_s, "
            f"float('-inf')))",
            "else:",
            f"    {out}_s = {out}_s + {mask}",
        ]
    lines.append(f"{out} = paddle.matmul(paddle.nn.functional.softmax({out}_s, axis=-1), {out}_v)")
    _emit_line(layer, indent, forward_func, "\n".join(lines))


def prim_int_numpy2(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    """``int(t)`` of a one-element, 1-D tensor fails with numpy >= 2 in Paddle's
    ``Tensor.__int__``; reshape to 0-D first (static graphs are unaffected)."""
    x = _code(layer, "input")
    _emit_line(
        layer,
        indent,
        forward_func,
        f"{layer.outputs[0]} = int({x}.reshape([]) if isinstance({x}, paddle.Tensor) "
        f"and {x}.size == 1 else {x})",
    )


@register("int-numpy2", "R4", "emitted int(tensor) works with numpy 2 (one-element tensors)")
def _int(fix) -> None:
    _, prim2code = _modules()
    fix.patch(prim2code, "prim_int", prim_int_numpy2)


@register(
    "gather-int-promotion",
    "R7",
    "aten::gather emits paddle.take_along_axis, not a custom layer mixing int and float",
)
def _gather(fix) -> None:
    aten, _ = _modules()
    fix.patch(
        aten,
        "aten_gather",
        _make_mapper(
            "paddle.take_along_axis", [("arr", 0), ("axis", 1), ("indices", 2)], broadcast=False
        ),
    )


@register(
    "aten-new-ops",
    "R19",
    "aten ops of today's torchvision/timm/transformers: new_zeros/ones/full, fill_, "
    "unflatten, unbind",
)
def _new_ops(fix) -> None:
    aten, prim2code = _modules()
    for name, fn in [
        ("prim_x2pc_new_full", prim_x2pc_new_full),
        ("prim_x2pc_fill", prim_x2pc_fill),
        ("prim_x2pc_unflatten", prim_x2pc_unflatten),
    ]:
        fix.patch(prim2code, name, fn)
    new = {
        "aten_new_zeros": _make_mapper(
            "prim.x2pc_new_full", [("x", 0), ("size", 1), ("dtype", 2)], fill_value=0
        ),
        "aten_new_ones": _make_mapper(
            "prim.x2pc_new_full", [("x", 0), ("size", 1), ("dtype", 2)], fill_value=1
        ),
        "aten_new_full": _make_mapper(
            "prim.x2pc_new_full", [("x", 0), ("size", 1), ("fill_value", 2), ("dtype", 3)]
        ),
        "aten_fill": _make_mapper("prim.x2pc_fill", [("x", 0), ("value", 1)]),
        "aten_unflatten": _make_mapper("prim.x2pc_unflatten", [("x", 0), ("dim", 1), ("sizes", 2)]),
        "aten_unbind": _make_mapper("paddle.unbind", [("input", 0), ("axis", 1)]),
    }
    for name, fn in new.items():
        if not hasattr(aten, name):
            fix.patch(aten, name, fn)


@register(
    "sdpa-layout-gqa",
    "R21",
    "aten::scaled_dot_product_attention keeps torch's [B,H,S,D] layout, GQA, scale, is_causal",
)
def _sdpa(fix) -> None:
    aten, prim2code = _modules()
    fix.patch(prim2code, "prim_x2pc_sdpa", prim_x2pc_sdpa)
    fix.patch(
        aten,
        "aten_scaled_dot_product_attention",
        _make_mapper(
            "prim.x2pc_sdpa",
            [
                ("query", 0),
                ("key", 1),
                ("value", 2),
                ("attn_mask", 3),
                ("dropout_p", 4),
                ("is_causal", 5),
                ("scale", 6),
                ("enable_gqa", 7),
            ],
        ),
    )


class _TorchWithLenientTrace:
    """``torch`` as X2Paddle's decoder sees it: ``torch.jit.trace`` retries without the
    trace check when that check alone fails (nn.MultiheadAttention fast paths, R19). The
    conversion is verified numerically afterwards, so nothing wrong goes unnoticed."""

    def __init__(self, torch):
        self._torch = torch
        self.jit = _JitWithLenientTrace(torch.jit)

    def __getattr__(self, name):
        return getattr(self._torch, name)


class _JitWithLenientTrace:
    def __init__(self, jit):
        self._jit = jit

    def __getattr__(self, name):
        return getattr(self._jit, name)

    def trace(self, *args, **kwargs):
        try:
            return self._jit.trace(*args, **kwargs)
        except self._jit.TracingCheckError as exc:
            from ..errors import ConversionWarning

            warnings.warn(
                ConversionWarning(
                    f"torch.jit.trace check failed ({str(exc).splitlines()[0]}); "
                    "retrying with check_trace=False"
                ),
                stacklevel=2,
            )
            kwargs["check_trace"] = False
            return self._jit.trace(*args, **kwargs)


@register("trace-check", "R19", "torch.jit.trace check failures retry with check_trace=False")
def _trace(fix) -> None:
    from x2paddle.decoder import pytorch_decoder

    torch = pytorch_decoder.torch
    if isinstance(torch, _TorchWithLenientTrace):
        return
    fix.patch(pytorch_decoder, "torch", _TorchWithLenientTrace(torch))


_TENSOR_TYPES = "(paddle.Tensor, paddle.pir.Value)"


def prim_x2pc_index(
    layer, indent=1, init_func=(), forward_func=(), layer_id=None, different_attrs=None
):
    """aten::index(x, indices: Tensor?[]): numpy-style advanced indexing, None = full slice."""
    x, idx = _code(layer, "x"), _code(layer, "indices")
    _emit_line(
        layer,
        indent,
        forward_func,
        f"{layer.outputs[0]} = {x}[tuple([slice(None) if i is None else i "
        f"for i in {idx}])] if isinstance({idx}, (list, tuple)) else {x}[{idx}]",
    )


def _logical(op: str, fn: str):
    def emit(
        layer,
        indent=1,
        init_func=(),
        forward_func=(),
        layer_id=None,
        different_attrs=None,
        is_return_line=False,
    ):
        x, y = _code(layer, "x"), _code(layer, "y")
        expr = (
            f"paddle.{fn}({x}, {y}) if isinstance({x}, {_TENSOR_TYPES}) and "
            f"isinstance({y}, {_TENSOR_TYPES}) else ({x} {op} {y})"
        )
        if is_return_line:
            return expr
        _emit_line(layer, indent, forward_func, f"{layer.outputs[0]} = {expr}")

    return emit


@register(
    "masking-ops",
    "R21",
    "transformers-5 masking: aten::index with a list of index tensors, and/or of boolean tensors",
)
def _masking(fix) -> None:
    aten, prim2code = _modules()
    fix.patch(prim2code, "prim_x2pc_index", prim_x2pc_index)
    fix.patch(prim2code, "prim_and", _logical("and", "logical_and"))
    fix.patch(prim2code, "prim_or", _logical("or", "logical_or"))
    fix.patch(aten, "aten_index", _make_mapper("prim.x2pc_index", [("x", 0), ("indices", 1)]))


@register(
    "digit-attr-names",
    "N2",
    "parameters of a bare nn.Sequential ('0.weight') get valid Python names in the "
    "emitted code (X2Paddle wrote `self.3_weight`, a SyntaxError)",
)
def _digit_names(fix) -> None:
    from x2paddle.op_mapper.pytorch2paddle.pytorch_op_mapper import PyTorchOpMapper

    original = PyTorchOpMapper._get_outputs_name

    @functools.wraps(original)
    def _get_outputs_name(self, node, attr_name=None):
        if attr_name is not None and attr_name[:1].isdigit():
            attr_name = "p" + attr_name
        return original(self, node, attr_name)

    fix.patch(PyTorchOpMapper, "_get_outputs_name", _get_outputs_name)


@register(
    "aten-pad-order",
    "N6",
    "aten::pad (F.pad) in constant mode with 4 or 6 pad values: X2Paddle kept torch's "
    "last-dimension-first order in the full-length Paddle pad list, which Paddle 3 "
    "reads first-dimension-first (F.pad(x, (1, 0, 0, 0)) padded H instead of W)",
)
def _aten_pad_order(fix) -> None:
    aten, _ = _modules()
    original = aten.aten_pad

    @functools.wraps(original)
    def aten_pad(mapper, graph, node):
        before = set(graph.layers)
        result = original(mapper, graph, node)
        for layer_id in set(graph.layers) - before:
            layer = graph.layers[layer_id]
            pad = layer.attrs.get("pad")
            mode = str(layer.attrs.get("mode", ""))
            if (
                layer.kernel == "paddle.nn.functional.pad"
                and "constant" in mode
                and isinstance(pad, list)
                and len(pad) % 2 == 0
            ):
                pairs = [pad[i : i + 2] for i in range(0, len(pad), 2)]
                torch_pairs = len(_torch_pad(mapper, node))
                head, tail = pairs[: len(pairs) - torch_pairs], pairs[len(pairs) - torch_pairs :]
                layer.attrs["pad"] = [v for p in head + tail[::-1] for v in p]
        return result

    fix.patch(aten, "aten_pad", aten_pad)


def _torch_pad(mapper, node) -> list:
    """The pad pairs torch gave (from the node's constant list input)."""
    inputs_name, _ = mapper._get_inputs_name(node)
    values = mapper.attrs.get(inputs_name[1]) or []
    return [values[i : i + 2] for i in range(0, len(values), 2)]


@register(
    "aten-cat-legacy-empty",
    "N7",
    "aten::cat skips legacy empty 1-D tensors (torch.cat([torch.tensor([]), k], dim=-2), "
    "how transformers' Flaubert/XLM start their key/value cache); X2Paddle passed them to "
    "paddle.concat, which rejects them ('axis ... in range of [-1, 1), but got -2')",
)
def _aten_cat_legacy_empty(fix) -> None:
    aten, _ = _modules()
    original = aten.aten_cat

    @functools.wraps(original)
    def aten_cat(mapper, graph, node):
        inputs_name, _ = mapper._get_inputs_name(node)
        layer = graph.layers.get(mapper.output2id.get(inputs_name[0], ""), None)
        if layer is not None and layer.kernel == "prim.list":
            names = [layer.inputs[k] for k in sorted(layer.inputs, key=lambda k: int(k[5:]))]

            def legacy_empty(name):
                value = mapper.paddle_params.get(name, mapper.pytorch_params.get(name))
                return value is not None and tuple(getattr(value, "shape", ())) == (0,)

            kept = [n for n in names if not legacy_empty(n)]
            if kept and len(kept) < len(names):
                layer.inputs = {f"input{i}": n for i, n in enumerate(kept)}
        return original(mapper, graph, node)

    fix.patch(aten, "aten_cat", aten_cat)


@register(
    "aten-embedding-padding-idx",
    "N15",
    "nn.Embedding(padding_idx=...) is emitted without padding_idx: torch's forward "
    "returns the trained row of that token (padding_idx only stops its gradient), "
    "Paddle's Embedding returns zeros for it (a real BERT differed by 5.4 at padded "
    "positions; random models have a zero padding row and could not show it)",
)
def _aten_embedding_padding_idx(fix) -> None:
    aten, _ = _modules()
    original = aten.aten_embedding

    @functools.wraps(original)
    def aten_embedding(mapper, graph, node):
        before = set(graph.layers)
        result = original(mapper, graph, node)
        for layer_id in set(graph.layers) - before:
            layer = graph.layers[layer_id]
            if layer.kernel == "paddle.nn.Embedding":
                layer.attrs["padding_idx"] = None
        return result

    fix.patch(aten, "aten_embedding", aten_embedding)
