"""Quantized ONNX graphs lowered to float arithmetic that reproduces the integer result (N19).

X2Paddle has no quantized operator. onnxruntime's quantizer writes two forms: the dynamic
form (``DynamicQuantizeLinear`` feeding ``ConvInteger`` / ``MatMulInteger``, and the
contrib ``DynamicQuantizeLSTM``: ddddocr's old model) and the QDQ / QOperator forms
(``QuantizeLinear`` / ``DequantizeLinear``, ``QLinearConv``, ``QLinearMatMul``). Each is
rewritten here into standard float operators:

* quantizing keeps its rounding: ``q = clip(round(x / scale) + zero_point, qmin, qmax)``,
  stored as float. Integer products of 8-bit values summed in float32 are exact up to 2^24,
  so ``ConvInteger(q_x - zp_x, q_w - zp_w)`` computed as a float Conv gives the integer
  result (to float32 rounding of large sums);
* constant quantized weights are dequantized when converting (``(w - zp) * scale``, per
  tensor or per axis);
* ``DynamicQuantizeLSTM`` becomes an ``LSTM`` with dequantized weights. onnxruntime also
  quantizes the activations inside each step, which is not reproduced: that model matches
  the source runtime only to the quantization noise of its activations, and verification
  says by how much.

Rounding is half to even, as in ONNX (``floor(v + 0.5)``, less one on an odd tie).
"""

from __future__ import annotations

import numpy as np

from .onnx_fixes import _ONNX_PASSES
from .registry import register

QUANTIZED_OPS = {
    "DynamicQuantizeLinear",
    "ConvInteger",
    "MatMulInteger",
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "DynamicQuantizeLSTM",
    "QLinearAdd",
    "QLinearMul",
}

_RANGE = {"uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767)}


class _Rewriter:
    def __init__(self, model):
        from onnx import numpy_helper

        self.model = model
        self.graph = model.graph
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13
        )
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.nodes: list = []
        self.count = 0

    # -- helpers emitting nodes and constants
    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}__x2pc_q{self.count}"

    def const(self, hint: str, value) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        value = np.asarray(value)
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        self.consts[name] = value
        return name

    def node(self, op: str, inputs, hint: str, outputs=None, **attrs) -> str:
        from onnx import helper

        outputs = outputs or [self.name(hint)]
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), **attrs))
        return outputs[0]

    def as_float(self, name: str, hint: str) -> str:
        if name in self.consts:
            return self.const(hint, self.consts[name].astype(np.float32))
        return self.node("Cast", [name], hint, to=1)

    def reduce(self, op: str, x: str, hint: str) -> str:
        flat = self.node("Reshape", [x, self.const(hint, np.array([-1], np.int64))], hint)
        if self.opset >= 18:
            axes = self.const(hint, np.array([0], np.int64))
            return self.node(op, [flat, axes], hint, keepdims=1)
        return self.node(op, [flat], hint, axes=[0], keepdims=1)

    def round(self, x: str, hint: str) -> str:
        """Round half to even, as ONNX and onnxruntime do: ties are common, an image
        quantized with zero point 128 puts every pixel on one."""
        half = self.const(hint, np.array([0.5], np.float32))
        up = self.node("Floor", [self.node("Add", [x, half], hint)], hint)
        tie = self.node("Equal", [self.node("Sub", [up, x], hint), half], hint)
        # up - 2 * floor(up / 2) is 1 for an odd value
        two = self.const(hint, np.array([2.0], np.float32))
        pairs = self.node("Floor", [self.node("Div", [up, two], hint)], hint)
        odd = self.node("Sub", [up, self.node("Mul", [pairs, two], hint)], hint)
        tie_f = self.node("Cast", [tie], hint, to=1)
        return self.node("Sub", [up, self.node("Mul", [tie_f, odd], hint)], hint)

    def clip(self, x: str, lo: float, hi: float, hint: str, out=None) -> str:
        lo_name = self.const(hint, np.array([lo], np.float32))
        hi_name = self.const(hint, np.array([hi], np.float32))
        low = self.node("Max", [x, lo_name], hint)
        return self.node("Min", [low, hi_name], hint, outputs=out)

    # -- quantize / dequantize in float
    def quantize(self, x: str, scale: str, zp: str | None, qtype: str, hint: str, out=None):
        lo, hi = _RANGE[qtype]
        v = self.round(self.node("Div", [x, scale], hint), hint)
        if zp:
            v = self.node("Add", [v, zp], hint)
        return self.clip(v, lo, hi, hint, out)

    def dequantize_const(self, q, scale, zp, axis: int, hint: str) -> str:
        q = np.asarray(q, np.float32)
        scale = np.asarray(scale, np.float32)
        zp = np.zeros_like(scale) if zp is None else np.asarray(zp, np.float32)
        if scale.size > 1:  # per axis
            shape = [1] * q.ndim
            shape[axis % q.ndim] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        return self.const(hint, ((q - zp) * scale).astype(np.float32))

    def zero_point(self, name: str | None, hint: str) -> str | None:
        if not name:
            return None
        return self.as_float(name, hint)

    def qtype(self, zp: str | None) -> str:
        if zp and zp in self.consts:
            return str(self.consts[zp].dtype)
        return "uint8"

    # -- rewrites, one per operator
    def DynamicQuantizeLinear(self, n):
        x = n.input[0]
        y, y_scale, y_zp = (list(n.output) + ["", "", ""])[:3]
        h = n.output[0]
        zero = self.const(h, np.array([0.0], np.float32))
        lo = self.node("Min", [self.reduce("ReduceMin", x, h), zero], h)
        hi = self.node("Max", [self.reduce("ReduceMax", x, h), zero], h)
        scale = self.node(
            "Div",
            [self.node("Sub", [hi, lo], h), self.const(h, np.array([255.0], np.float32))],
            h,
            outputs=[y_scale or self.name(h)],
        )
        neg = self.node("Neg", [self.node("Div", [lo, scale], h)], h)
        zp = self.clip(self.round(neg, h), 0, 255, h, out=[y_zp or self.name(h)])
        self.quantize(x, scale, zp, "uint8", h, out=[y])

    def _integer_product(self, n, op: str, attrs: dict):
        a, b = n.input[0], n.input[1]
        a_zp = n.input[2] if len(n.input) > 2 and n.input[2] else None
        b_zp = n.input[3] if len(n.input) > 3 and n.input[3] else None
        h = n.output[0]
        a_f = self.as_float(a, h)
        if a_zp:
            a_f = self.node("Sub", [a_f, self.as_float(a_zp, h)], h)
        if b in self.consts and (b_zp is None or b_zp in self.consts):
            w = self.consts[b].astype(np.float32)
            if b_zp is not None:
                zp = self.consts[b_zp].astype(np.float32)
                if zp.size > 1:  # per output channel: Conv axis 0, MatMul the last
                    zp = zp.reshape([-1] + [1] * (w.ndim - 1)) if op == "Conv" else zp
                w = w - zp
            b_f = self.const(h, w)
        else:
            b_f = self.as_float(b, h)
            if b_zp:
                b_f = self.node("Sub", [b_f, self.as_float(b_zp, h)], h)
        self.node(op, [a_f, b_f], h, outputs=[n.output[0]], **attrs)

    def ConvInteger(self, n):
        self._integer_product(n, "Conv", _attrs(n))

    def MatMulInteger(self, n):
        self._integer_product(n, "MatMul", {})

    def QuantizeLinear(self, n):
        x, scale = n.input[0], n.input[1]
        zp = n.input[2] if len(n.input) > 2 and n.input[2] else None
        h = n.output[0]
        if scale in self.consts and self.consts[scale].size > 1:
            return False  # per-axis quantization of a run-time tensor: not lowered
        self.quantize(
            x,
            self.as_float(scale, h),
            self.zero_point(zp, h),
            self.qtype(zp),
            h,
            out=[n.output[0]],
        )
        return True

    def DequantizeLinear(self, n):
        x, scale = n.input[0], n.input[1]
        zp = n.input[2] if len(n.input) > 2 and n.input[2] else None
        h = n.output[0]
        axis = _attrs(n).get("axis", 1)
        if x in self.consts and scale in self.consts and (zp is None or zp in self.consts):
            value = self.dequantize_const(
                self.consts[x], self.consts[scale], self.consts.get(zp), axis, h
            )
            self.node("Identity", [value], h, outputs=[n.output[0]])
            return True
        if scale in self.consts and self.consts[scale].size > 1:
            return False
        v = self.as_float(x, h)
        if zp:
            v = self.node("Sub", [v, self.as_float(zp, h)], h)
        self.node("Mul", [v, self.as_float(scale, h)], h, outputs=[n.output[0]])
        return True

    def _dequantized_input(self, x, scale, zp, h):
        if x in self.consts and scale in self.consts and zp in self.consts:
            return self.dequantize_const(self.consts[x], self.consts[scale], self.consts[zp], 0, h)
        v = self.node("Sub", [self.as_float(x, h), self.as_float(zp, h)], h)
        return self.node("Mul", [v, self.as_float(scale, h)], h)

    def QLinearConv(self, n):
        x, xs, xzp, w, ws, wzp, ys, yzp = n.input[:8]
        h = n.output[0]
        if any(s not in self.consts for s in (xs, ws, ys, yzp)) or self.consts[xs].size > 1:
            return False
        x_f = self._dequantized_input(x, xs, xzp, h)
        w_f = self._dequantized_input(w, ws, wzp, h)
        inputs = [x_f, w_f]
        if len(n.input) > 8 and n.input[8]:
            bias = n.input[8]
            if bias not in self.consts:
                return False
            scale = (self.consts[xs] * self.consts[ws]).astype(np.float32).reshape(-1)
            inputs.append(self.const(h, self.consts[bias].astype(np.float32) * scale))
        y = self.node("Conv", inputs, h, **_attrs(n))
        self.quantize(
            y, self.as_float(ys, h), self.as_float(yzp, h), self.qtype(yzp), h, out=[n.output[0]]
        )
        return True

    def QLinearMatMul(self, n):
        a, as_, azp, b, bs, bzp, ys, yzp = n.input[:8]
        h = n.output[0]
        if any(s not in self.consts for s in (as_, bs, ys, yzp)) or self.consts[as_].size > 1:
            return False
        if self.consts[bs].size > 1 and b not in self.consts:
            return False
        a_f = self._dequantized_input(a, as_, azp, h)
        if b in self.consts:  # per column scale: the last axis of B
            b_f = self.dequantize_const(self.consts[b], self.consts[bs], self.consts[bzp], -1, h)
        else:
            b_f = self._dequantized_input(b, bs, bzp, h)
        y = self.node("MatMul", [a_f, b_f], h)
        self.quantize(
            y, self.as_float(ys, h), self.as_float(yzp, h), self.qtype(yzp), h, out=[n.output[0]]
        )
        return True

    def _binary(self, n, op: str):
        a, as_, azp, b, bs, bzp, ys, yzp = (list(n.input) + [""] * 8)[:8]
        h = n.output[0]
        if not yzp or any(s not in self.consts for s in (as_, bs, ys, azp, bzp, yzp)):
            return False
        a_f = self._dequantized_input(a, as_, azp, h)
        b_f = self._dequantized_input(b, bs, bzp, h)
        y = self.node(op, [a_f, b_f], h)
        self.quantize(
            y, self.as_float(ys, h), self.as_float(yzp, h), self.qtype(yzp), h, out=[n.output[0]]
        )
        return True

    def QLinearAdd(self, n):  # com.microsoft
        return self._binary(n, "Add")

    def QLinearMul(self, n):  # com.microsoft
        return self._binary(n, "Mul")

    def DynamicQuantizeLSTM(self, n):
        names = list(n.input) + [""] * 12
        x, w, r, b, seq, h0, c0, p, w_s, w_zp, r_s, r_zp = names[:12]
        h = n.output[0] or self.name("lstm")
        if any(v not in self.consts for v in (w, r, w_s, w_zp, r_s, r_zp)):
            return False
        weights = []
        for q, s, zp in ((w, w_s, w_zp), (r, r_s, r_zp)):
            q = self.consts[q].astype(np.float32)  # [directions, input, 4 * hidden]
            s = self.consts[s].astype(np.float32).reshape(q.shape[0], 1, -1)
            zp = self.consts[zp].astype(np.float32).reshape(q.shape[0], 1, -1)
            weights.append(self.const(h, ((q - zp) * s).transpose(0, 2, 1).copy()))
        inputs = [x, weights[0], weights[1], b, seq, h0, c0, p]
        while inputs and not inputs[-1]:
            inputs.pop()
        # X2Paddle's LSTM mapper reads all three outputs
        outputs = [o or self.name(h) for o in (list(n.output) + ["", "", ""])[:3]]
        self.node("LSTM", inputs, h, outputs=outputs, **_attrs(n))
        return True


_INTEGER_TYPES = {2, 3, 4, 5, 6, 7, 12, 13}  # onnx TensorProto integer element types
_SHAPE_ONLY = {"Reshape", "Unsqueeze", "Squeeze", "Identity", "Flatten", "Transpose"}


def _integer_operands_to_float(graph, rewritten: set) -> None:
    """The int32 arithmetic around an integer product follows it into float.

    onnxruntime's quantizer adds a run-time quantized bias to ConvInteger's int32 output
    (``Add(conv, Cast<int32>(floor(bias / scale)))``); that product is float now, so the
    Cast that made the other operand an integer casts to float (exact below 2^24).
    """
    producers = {o: n for n in graph.node for o in n.output}
    changed = True
    while changed:
        changed = False
        for node in graph.node:
            if node.op_type not in ("Add", "Sub", "Mul") or node.output[0] in rewritten:
                continue
            if not any(i in rewritten for i in node.input):
                continue
            rewritten.add(node.output[0])
            changed = True
            for name in node.input:
                src = producers.get(name)
                while src is not None and src.op_type in _SHAPE_ONLY:
                    rewritten.add(src.output[0])
                    src = producers.get(src.input[0])
                if src is not None and src.op_type == "Cast":
                    for attr in src.attribute:
                        if attr.name == "to" and attr.i in _INTEGER_TYPES:
                            attr.i = 1
                            rewritten.add(src.output[0])


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def lower_quantized(model) -> None:
    """Rewrite the quantized operators of ``model`` (in place) into float operators."""
    graph = model.graph
    if not any(n.op_type in QUANTIZED_OPS for n in graph.node):
        return
    rw = _Rewriter(model)
    rewritten = set()
    for node in list(graph.node):
        fn = getattr(rw, node.op_type, None) if node.op_type in QUANTIZED_OPS else None
        mark = len(rw.nodes)
        if fn is not None and fn(node) is not False:
            rewritten.update(node.output)
            continue
        del rw.nodes[mark:]
        rw.nodes.append(node)
    del graph.node[:]
    graph.node.extend(rw.nodes)
    _integer_operands_to_float(graph, rewritten)
    # the rewritten values are float now: stale integer types would mislead the decoder
    keep = [v for v in graph.value_info if v.name not in rewritten]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    # the contrib domain is no longer needed once its operators are gone
    if not any(n.domain == "com.microsoft" for n in graph.node):
        keep_ops = [o for o in model.opset_import if o.domain != "com.microsoft"]
        del model.opset_import[:]
        model.opset_import.extend(keep_ops)


@register(
    "onnx-quantized-to-float",
    "N19",
    "quantized ONNX (onnxruntime's dynamic form DynamicQuantizeLinear/ConvInteger/"
    "MatMulInteger/DynamicQuantizeLSTM, QDQ QuantizeLinear/DequantizeLinear, QLinearConv, "
    "QLinearMatMul) rewritten into float operators that keep the quantization's rounding; "
    "X2Paddle had none of them",
)
def _quantized(fix) -> None:
    _ONNX_PASSES.insert(0, lower_quantized)
    fix.on_undo(lambda: _ONNX_PASSES.remove(lower_quantized))
