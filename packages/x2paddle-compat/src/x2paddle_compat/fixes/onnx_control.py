"""ONNX control flow on run-time values (N20): ``If`` as a selection, ``Loop`` unrolled.

X2Paddle's ONNX decoder reads no sub-graphs. An ``If`` whose condition is known when
converting is already replaced by its branch (N14); what is left depends on the data.

* ``If``: both branches are computed and ``Where(cond, then, else)`` picks the result. This
  is the same answer as branching when both branches are free of side effects and random
  numbers, and both give outputs of the same shape; it is done only then (shapes from
  ONNX's shape inference, every dimension known or the same symbol). A branch that cannot be
  computed on the data the other branch is meant for (an index valid only when the condition
  holds) would fail at run time: verification runs the converted model and says so.
* ``Loop``: unrolled when the trip count is a constant (at most ``MAX_UNROLL``) and the
  condition stays a constant ``true`` (the "for i in range(n)" and scan shapes exporters
  write); scan outputs are stacked. A loop whose condition is computed (a while loop) stays
  unsupported and is named as such.
"""

from __future__ import annotations

import numpy as np

from .onnx_fixes import _ONNX_PASSES
from .registry import register

MAX_UNROLL = 64
_RANDOM = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}


def _sub_graphs(node):
    return [a.g for a in node.attribute if a.type == 5] + [
        g for a in node.attribute if a.type == 10 for g in a.graphs
    ]


def _dims(value_info):
    if value_info is None or not value_info.type.HasField("tensor_type"):
        return None
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            return None
    return dims


def _inferred_shapes(model) -> dict:
    """Shapes of every value, sub-graphs included, as ONNX's shape inference sees them."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return {}
    shapes: dict = {}

    def collect(graph):
        for v in list(graph.value_info) + list(graph.output) + list(graph.input):
            dims = _dims(v)
            if dims is not None:
                shapes.setdefault(v.name, dims)
        for n in graph.node:
            for g in _sub_graphs(n):
                collect(g)

    collect(inferred.graph)
    return shapes


def _inline(graph_body, prefix: str, bound: dict, nodes: list) -> dict:
    """Append the nodes of ``graph_body`` to ``nodes`` with every value it defines renamed
    ``prefix + name``; ``bound`` maps its formal inputs to outer values. Returns the map
    of its names (outputs included) to the outer names."""
    from onnx import helper

    names = dict(bound)
    for init in graph_body.initializer:
        names[init.name] = prefix + init.name
    for node in graph_body.node:
        for out in node.output:
            if out:
                names[out] = prefix + out
    for node in graph_body.node:
        copy = helper.make_node(
            node.op_type,
            [names.get(i, i) if i else "" for i in node.input],
            [names[o] if o else "" for o in node.output],
            domain=node.domain,
        )
        copy.attribute.extend(node.attribute)
        nodes.append(copy)
    return names


class _Lowering:
    def __init__(self, model):
        self.model = model
        self.shapes = _inferred_shapes(model)
        self.count = 0
        self.inits: list = []

    def prefix(self, kind: str) -> str:
        self.count += 1
        return f"x2pc_{kind}{self.count}__"

    def graph(self, graph) -> None:
        nodes: list = []
        for node in graph.node:
            for g in _sub_graphs(node):
                self.graph(g)  # innermost first
            if node.op_type == "If" and self.if_(node, nodes):
                continue
            if node.op_type == "Loop" and self.loop(node, nodes):
                continue
            nodes.append(node)
        del graph.node[:]
        graph.node.extend(nodes)

    def _plain(self, body) -> bool:
        return not any(
            n.op_type in ("If", "Loop", "Scan") or n.op_type in _RANDOM for n in body.node
        )

    def if_(self, node, nodes: list) -> bool:
        from onnx import helper

        branches = {a.name: a.g for a in node.attribute if a.name.endswith("_branch")}
        then_g, else_g = branches.get("then_branch"), branches.get("else_branch")
        if then_g is None or else_g is None or not (self._plain(then_g) and self._plain(else_g)):
            return False
        for t_out, e_out in zip(then_g.output, else_g.output):
            t_dims = self.shapes.get(t_out.name) or _dims(t_out)
            e_dims = self.shapes.get(e_out.name) or _dims(e_out)
            if t_dims is None or t_dims != e_dims:
                return False
            if t_out.type.tensor_type.elem_type != e_out.type.tensor_type.elem_type:
                return False
        new: list = []
        then_names = _inline(then_g, self.prefix("then"), {}, new)
        else_names = _inline(else_g, self.prefix("else"), {}, new)
        cond = node.input[0]
        for t_out, e_out, out in zip(then_g.output, else_g.output, node.output):
            new.append(
                helper.make_node(
                    "Where",
                    [
                        cond,
                        then_names.get(t_out.name, t_out.name),
                        else_names.get(e_out.name, e_out.name),
                    ],
                    [out],
                )
            )
        nodes.extend(new)
        return True

    def loop(self, node, nodes: list) -> bool:
        from onnx import helper, numpy_helper

        body = next((a.g for a in node.attribute if a.name == "body"), None)
        consts = self.constants()
        trip, cond = (list(node.input) + ["", ""])[:2]
        if body is None or not self._plain(body) or not trip or trip not in consts:
            return False
        if cond and not (cond in consts and bool(np.asarray(consts[cond]).reshape(-1)[0])):
            return False
        count = int(np.asarray(consts[trip]).reshape(-1)[0])
        if count < 1 or count > MAX_UNROLL:
            return False
        # the body's condition output must be a constant true (or the cond input passed on)
        body_cond = body.output[0].name
        producer = {o: n for n in body.node for o in n.output}
        cond_in = body.input[1].name
        if body_cond != cond_in:
            src = producer.get(body_cond)
            if src is not None and src.op_type == "Identity" and src.input[0] == cond_in:
                pass
            elif src is None or src.op_type != "Constant":
                return False
            else:
                value = numpy_helper.to_array(src.attribute[0].t)
                if not bool(np.asarray(value).reshape(-1)[0]):
                    return False
        carried = list(node.input[2:])
        n_carried = len(carried)
        scans: list[list[str]] = [[] for _ in body.output[1 + n_carried :]]
        new: list = []
        cond_name = self.const(np.array(True))
        for i in range(count):
            bound = {body.input[0].name: self.const(np.array(i, np.int64)), cond_in: cond_name}
            for formal, actual in zip(body.input[2:], carried):
                bound[formal.name] = actual
            names = _inline(body, self.prefix(f"it{i}_"), bound, new)
            outs = [names.get(o.name, o.name) for o in body.output]
            carried = outs[1 : 1 + n_carried]
            for k, name in enumerate(outs[1 + n_carried :]):
                scans[k].append(name)
        for value, out in zip(carried, node.output[:n_carried]):
            new.append(helper.make_node("Identity", [value], [out]))
        axes = self.const(np.array([0], np.int64))
        for values, out in zip(scans, node.output[n_carried:]):
            stacked = []
            for j, value in enumerate(values):
                name = f"{out}__x2pc_scan{j}"
                new.append(helper.make_node("Unsqueeze", [value, axes], [name]))
                stacked.append(name)
            new.append(helper.make_node("Concat", stacked, [out], axis=0))
        nodes.extend(new)
        return True

    def constants(self) -> dict:
        from onnx import numpy_helper

        consts = {i.name: numpy_helper.to_array(i) for i in self.model.graph.initializer}
        consts.update({i.name: numpy_helper.to_array(i) for i in self.inits})
        for n in self.model.graph.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        return consts

    def const(self, value) -> str:
        from onnx import numpy_helper

        name = self.prefix("const")[:-2]
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name


def lower_control_flow(model) -> None:
    """Replace the ``If`` and ``Loop`` nodes that can be (see the module) in place."""
    if not any(n.op_type in ("If", "Loop") for n in model.graph.node):
        return
    lowering = _Lowering(model)
    lowering.graph(model.graph)
    model.graph.initializer.extend(lowering.inits)


@register(
    "onnx-control-flow",
    "N20",
    "ONNX If on a run-time value: both branches computed and selected with Where when they "
    "are side-effect free and their outputs agree in shape and type; Loop with a constant "
    "trip count and a constant true condition unrolled (scan outputs stacked); X2Paddle "
    "read no sub-graphs",
)
def _control_flow(fix) -> None:
    from .onnx_real import fold_constant_branches

    # after the Ifs whose condition is known when converting were resolved (N14)
    at = (
        _ONNX_PASSES.index(fold_constant_branches) + 1
        if fold_constant_branches in _ONNX_PASSES
        else 0
    )
    _ONNX_PASSES.insert(at, lower_control_flow)
    fix.on_undo(lambda: _ONNX_PASSES.remove(lower_control_flow))
