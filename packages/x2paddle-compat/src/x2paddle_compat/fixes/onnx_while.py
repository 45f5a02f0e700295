"""ONNX ``Loop`` that N20 cannot unroll, emitted as a Python ``while`` (N25).

A loop whose condition is computed in its body (a while loop) or whose trip count is known
only at run time cannot be unrolled. It becomes a ``while`` in the generated dygraph code,
which ``paddle.jit.to_static`` turns into a while op of the saved inference model:

* before X2Paddle's decoder (the last ONNX pass, after shape folding, which onnxruntime runs
  and which must still see a standard ``Loop``), the node becomes ``X2pcLoop`` with the outer
  values its body reads (ONNX lets a body use any value of the enclosing scopes) as explicit
  inputs, so X2Paddle orders and names them; the body gets them as extra graph inputs and
  its initializers get names unique to the loop (they become parameters of one model);
* the op mapper converts the body with X2Paddle itself (its decoder, every fix, its op
  mappers: a nested loop is handled the same way) into a layer class of its own,
  ``X2pcLoopBodyN``, appended to ``x2paddle_code.py``; its parameters join the model's
  under the sub-layer's name;
* the emitted loop follows ONNX's semantics: ``i`` from 0, ``while (i < M) and cond``
  (either test only when its input is given), carried values written back every
  iteration, scan outputs collected in a tensor array and stacked after the loop.

Limits (said where they are refused, and in the README): a loop with scan outputs that runs
zero times has no element to give the stacked output its shape: Paddle's ``stack`` of an
empty array fails, so the converted model raises there (ONNX returns a 0-length tensor).
"""

from __future__ import annotations

import itertools
import os
import tempfile

from .onnx_control import _sub_graphs
from .registry import register

_COUNTER = itertools.count(1)
# ONNX TensorProto element types -> Paddle dtype names (scan outputs' tensor arrays)
_PADDLE_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
}
OP = "X2pcLoop"


def free_names(graph) -> list[str]:
    """Names a graph reads that it neither defines nor receives (outer-scope values), in
    order of first use; nested sub-graphs included."""
    defined = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    free: list[str] = []

    def use(name):
        if name and name not in defined and name not in free:
            free.append(name)

    for node in graph.node:
        for name in node.input:
            use(name)
        for g in _sub_graphs(node):
            for name in free_names(g):
                use(name)
        defined.update(o for o in node.output if o)
    for out in graph.output:
        use(out.name)
    return free


def _rename(graph, mapping: dict) -> None:
    """Rename values read or written in ``graph`` and its sub-graphs."""
    for init in graph.initializer:
        init.name = mapping.get(init.name, init.name)
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = mapping.get(name, name)
        for i, name in enumerate(node.output):
            node.output[i] = mapping.get(name, name)
        for g in _sub_graphs(node):
            _rename(g, mapping)
    for out in graph.output:
        out.name = mapping.get(out.name, out.name)


def _value_types(model) -> dict:
    """ValueInfoProto of every value of the main graph whose type ONNX can infer."""
    import onnx
    from onnx import helper, numpy_helper

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    g = inferred.graph
    types = {v.name: v for v in list(g.input) + list(g.value_info) + list(g.output)}
    for init in g.initializer:
        types[init.name] = helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
    for node in g.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            value = numpy_helper.to_array(node.attribute[0].t)
            types[node.output[0]] = helper.make_tensor_value_info(
                node.output[0], node.attribute[0].t.data_type, list(value.shape)
            )
    return types


def lower_while_loops(model) -> None:
    """Rewrite the ``Loop`` nodes left after N20 into ``X2pcLoop`` nodes (see the module)."""
    from onnx import helper

    if not any(n.op_type == "Loop" for n in model.graph.node):
        return
    types = _value_types(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    nodes = []
    for node in model.graph.node:
        body = next((a.g for a in node.attribute if a.name == "body"), None)
        if node.op_type != "Loop" or body is None:
            nodes.append(node)
            continue
        free = free_names(body)
        if any(name not in types for name in free):
            nodes.append(node)  # an outer value of unknown type: left to the op checker
            continue
        n = next(_COUNTER)
        new_body = type(body)()
        new_body.CopyFrom(body)
        _rename(new_body, {i.name: f"x2pc_loop{n}_{i.name}" for i in body.initializer})
        for name in free:
            new_body.input.append(types[name])
        trip, cond = (list(node.input) + ["", ""])[:2]
        carried = list(node.input[2:])
        loop = helper.make_node(
            OP,
            [trip, cond] + carried + free,
            list(node.output),
            name=node.name,
            body=new_body,
            n_carried=len(carried),
            n_free=len(free),
            opset=opset,
            number=n,
        )
        nodes.append(loop)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _emit_body(body, opset: int, number: int):
    """Convert ``body`` with X2Paddle into the source of a layer class; returns (class name,
    source, its parameters, its input names, its output names)."""
    import onnx
    from onnx import helper
    from x2paddle.decoder.onnx_decoder import ONNXDecoder
    from x2paddle.op_mapper.onnx2paddle.onnx_op_mapper import ONNXOpMapper

    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "body.onnx")
        onnx.save(model, path)
        decoder = ONNXDecoder(path, False, None)
    mapper = ONNXOpMapper(decoder)
    graph = mapper.paddle_graph
    graph.build()
    inputs = list(decoder.graph.input_nodes)
    outputs = list(graph.outputs)
    init, forward = graph.gen_code(code_dir=None, indent=2)
    name = f"X2pcLoopBody{number}"
    lines = [
        "",
        "",
        f"class {name}(paddle.nn.Layer):",
        "    def __init__(self):",
        "        super().__init__()",
    ]
    seen = set()
    for line in init:
        if line not in seen:
            lines.append(line.rstrip("\n"))
            seen.add(line)
    lines.append(f"    def forward(self, {', '.join(inputs)}):")
    lines.extend(line.rstrip("\n") for line in forward)
    lines.append(f"        return {', '.join(outputs)}")
    extra = getattr(graph, "x2pc_extra_code", [])  # nested loops' bodies
    return name, extra + ["\n".join(lines) + "\n"], dict(graph.parameters), inputs, outputs


def _loop_mapper(self, node) -> None:
    """Op mapper of ``X2pcLoop``: the body as a layer class, the loop as a ``prim`` layer."""
    n_carried = node.get_attr("n_carried")
    n_free = node.get_attr("n_free")
    number = node.get_attr("number")
    body = next(a.g for a in node.layer.attribute if a.name == "body")
    cls, code, params, _, body_outputs = _emit_body(body, node.get_attr("opset"), number)
    n_scan = len(body_outputs) - 1 - n_carried
    scan_types = [
        _PADDLE_DTYPES.get(v.type.tensor_type.elem_type, "float32")
        for v in body.output[1 + n_carried :]
    ]
    attr = f"x2pc_loop{number}"
    for key, value in params.items():
        self.weights[f"{attr}.{key}"] = value
    extra = getattr(self.paddle_graph, "x2pc_extra_code", None)
    if extra is None:
        extra = self.paddle_graph.x2pc_extra_code = []
    extra.extend(code)
    # the outer values, by the names X2Paddle gives them (empty inputs are not counted)
    given = [name for name in node.layer.input]
    names, k = [], 0
    for name in given:
        if name:
            names.append(self.graph.get_input_node(node, idx=k, copy=True).name)
            k += 1
        else:
            names.append(None)
    trip, cond = names[0], names[1]
    carried = names[2 : 2 + n_carried]
    free = names[2 + n_carried : 2 + n_carried + n_free]
    inputs = {}
    if trip:
        inputs["trip"] = trip
    if cond:
        inputs["cond"] = cond
    for i, v in enumerate(carried):
        inputs[f"v{i}"] = v
    for i, v in enumerate(free):
        inputs[f"f{i}"] = v
    count = len(node.layer.output)
    outputs = [f"{node.layer_name}_p{i}" for i in range(count)]
    aliases = {}  # consumers name output 0 by the node's name, graph outputs by value name
    for i, extra_name in [(0, node.layer_name)] + list(enumerate(node.layer.output)):
        if extra_name and extra_name not in outputs:
            outputs.append(extra_name)
            aliases[extra_name] = i
    self.paddle_graph.add_layer(
        "prim.x2pc_loop",
        inputs=inputs,
        outputs=outputs,
        body=attr,
        cls=cls,
        n_carried=n_carried,
        n_free=n_free,
        n_scan=n_scan,
        scan_types=scan_types,
        n_outputs=count,
        aliases=aliases,
    )


def prim_x2pc_loop(layer, indent=1, init_func=(), forward_func=(), layer_id=None, **_):
    """The generated code of an ``X2pcLoop`` layer (see the module)."""
    a = dict(layer.attrs)
    ins = layer.inputs
    p = a["body"]
    pad = "    " * indent
    lines = [f"{p}_i = paddle.full([], 0, dtype='int64')"]
    if "cond" in ins:
        lines.append(f"{p}_c = paddle.reshape(paddle.cast({ins['cond']}, 'bool'), [])")
    else:
        lines.append(f"{p}_c = paddle.full([], True, dtype='bool')")
    if "trip" in ins:
        lines.append(f"{p}_m = paddle.reshape(paddle.cast({ins['trip']}, 'int64'), [])")
    carried = [f"{p}_v{i}" for i in range(a["n_carried"])]
    for i, name in enumerate(carried):
        lines.append(f"{name} = {ins[f'v{i}']}")
    free = [ins[f"f{i}"] for i in range(a["n_free"])]
    scans = [f"{p}_s{i}" for i in range(a["n_scan"])]
    for name, dtype in zip(scans, a["scan_types"]):
        lines.append(f"{name} = paddle.tensor.create_array(dtype='{dtype}')")
    if "trip" in ins and "cond" in ins:
        test = f"paddle.logical_and({p}_i < {p}_m, {p}_c)"
    elif "trip" in ins:
        test = f"{p}_i < {p}_m"
    else:
        test = f"{p}_c"
    lines.append(f"while {test}:")
    step = [f"{p}_t{i}" for i in range(a["n_scan"])]
    lhs = ", ".join([f"{p}_c"] + carried + step)
    args = ", ".join([f"{p}_i", f"{p}_c"] + carried + free)
    body = [f"{lhs} = self.{p}({args})", f"{p}_c = paddle.reshape({p}_c, [])"]
    for s, t in zip(scans, step):
        body.append(f"{s} = paddle.tensor.array_write({t}, paddle.reshape({p}_i, [1]), {s})")
    body.append(f"{p}_i = {p}_i + 1")
    lines.extend("    " + line for line in body)
    results = carried + [
        f"paddle.tensor.manipulation.tensor_array_to_tensor({s}, axis=0, use_stack=True)[0]"
        for s in scans
    ]
    outs = layer.outputs
    n = a["n_outputs"]
    for i, value in enumerate(results[:n]):
        lines.append(f"{outs[i]} = {value}")
    for alias, index in a["aliases"].items():
        lines.append(f"{alias} = {outs[index]}")
    forward_func.extend(pad + line + "\n" for line in lines)
    init_func.append(f"        self.{p} = {a['cls']}()\n")


@register(
    "onnx-while-loop",
    "N25",
    "ONNX Loop with a computed condition or a run-time trip count (not unrollable by N20): "
    "emitted as a Python while over a layer class converted from the body, which "
    "paddle.jit.to_static saves as a while op; carried values written back, scan outputs "
    "stacked; X2Paddle read no sub-graphs",
)
def _while_loop(fix) -> None:
    from x2paddle.core.program import PaddleGraph
    from x2paddle.op_mapper.onnx2paddle import opset_legacy
    from x2paddle.op_mapper.pytorch2paddle import prim2code

    from .onnx_fixes import _LATE_ONNX_PASSES

    _LATE_ONNX_PASSES.append(lower_while_loops)
    fix.on_undo(lambda: _LATE_ONNX_PASSES.remove(lower_while_loops))
    fix.patch(opset_legacy.OpSet, OP, _loop_mapper)
    fix.patch(prim2code, "prim_x2pc_loop", prim_x2pc_loop)

    original = PaddleGraph.gen_code

    def gen_code(self, code_dir=None, indent=2):
        result = original(self, code_dir, indent)
        extra = getattr(self, "x2pc_extra_code", None)
        if extra and code_dir is not None and indent == 2:
            with open(os.path.join(code_dir, "x2paddle_code.py"), "a", encoding="utf-8") as f:
                f.writelines(extra)
        return result

    fix.patch(PaddleGraph, "gen_code", gen_code)
