"""Expectations for the reader, computed in Python from the PIR JSON and from Paddle itself.

Structure (ops, edges, graph inputs/outputs, captures) is derived from the JSON by this module's
own walk; operand and result slot names come from Paddle (the program deserialized by
``core.deserialize_pir_program`` and asked ``get_input_names()``), and weight values come from
``reference.json``, which the corpus builder wrote from the layer in memory. None of it uses the
reader or the shipped signature table.
"""

from __future__ import annotations

import json
from pathlib import Path

DIALECTS = {"0": "builtin", "1": "pd_op", "2": "cf", "3": "custom_op", "4": "pd_dist"}
HIDDEN = {"builtin.parameter", "pd_op.data", "pd_op.fetch", "builtin.shadow_output", "cf.yield"}


def op_type(raw: str) -> str:
    if raw == "p":
        return "builtin.parameter"
    dialect, _, name = raw.partition(".")
    return f"{DIALECTS.get(dialect, dialect)}.{name}"


class Walk:
    def __init__(self, doc):
        self.body = doc["program"]["regions"][0]["blocks"][0]
        self.producer = {}  # id -> (op, index)
        self.block_arg = {}  # id -> index
        self.uses = {}  # id -> [(op, block)]
        self._index(self.body)

    def _index(self, block):
        for i, arg in enumerate(block.get("args", [])):
            self.block_arg[arg.get("%", arg.get("#"))] = i
        for op in block["ops"]:
            outs = op["O"] if isinstance(op.get("O"), list) else [op["O"]]
            for i, out in enumerate(outs):
                self.producer[out["%"]] = (op, i)
            for operand in op.get("I", []):
                if operand["%"] != 0:
                    self.uses.setdefault(operand["%"], []).append((op, block))
            for region in op.get("regions", []):
                for inner in region["blocks"]:
                    self._index(inner)

    def foldable(self, op, block):
        outs = op.get("O")
        if not isinstance(outs, list) or len(outs) != 1:
            return False
        if op_type(op["#"]) != "builtin.combine" and constant_size(op) is None:
            return False
        uses = self.uses.get(op["O"][0]["%"], [])
        return bool(uses) and all(op_type(u["#"]) != "cf.yield" and b is block for u, b in uses)

    def combine_inputs(self, vid):
        op, _ = self.producer.get(vid, (None, 0))
        return [i["%"] for i in op.get("I", []) if i["%"] != 0] if op else [vid]

    def nodes(self, block):
        return [
            op
            for op in block["ops"]
            if op_type(op["#"]) not in HIDDEN and not self.foldable(op, block)
        ]

    def captures(self, op):
        inside, used = set(), []

        def visit(block):
            for arg in block.get("args", []):
                inside.add(arg.get("%", arg.get("#")))
            for inner in block["ops"]:
                outs = inner["O"] if isinstance(inner.get("O"), list) else [inner["O"]]
                inside.update(o["%"] for o in outs)
                used.extend(i["%"] for i in inner.get("I", []))
                for region in inner.get("regions", []):
                    for b in region["blocks"]:
                        visit(b)

        for region in op.get("regions", []):
            for block in region["blocks"]:
                visit(block)
        seen, result = set(), []
        for vid in used:
            if (
                vid != 0
                and vid not in inside
                and vid not in seen
                and (vid in self.producer or vid in self.block_arg)
            ):
                seen.add(vid)
                result.append(vid)
        return result


CONSTANT_DTYPES = {
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int32",
    "int64",
    "bool",
    "int8",
    "uint8",
    "int16",
}


def constant_size(op):
    """Number of values of a foldable small constant (full_int_array, 1-D full <= 64), else None."""
    kind = op_type(op["#"])
    if kind not in ("pd_op.full", "pd_op.full_int_array") or op.get("I"):
        return None
    if _attr(op, "dtype") not in CONSTANT_DTYPES:
        return None
    if kind == "pd_op.full_int_array":
        values = _attr(op, "value")  # an a_array of a_i64 attributes
        if isinstance(values, list):
            values = [v.get("D") if isinstance(v, dict) else v for v in values]
        ok = isinstance(values, list) and all(isinstance(v, (int, float)) for v in values)
        return len(values) if ok and len(values) <= 64 else None
    shape, value = _attr(op, "shape"), _attr(op, "value")
    if not isinstance(shape, list) or len(shape) > 1 or not isinstance(value, (int, float)):
        return None
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        return None
    size = shape[0] if shape else 1
    return size if size <= 64 else None


# The module view the reader builds from struct_name (README, "Modules"), restated here from
# its rules, not from the reader: consecutive nodes in one module become a module node, a
# module of fewer than MIN_MODULE_NODES nodes stays inline, paths are cut at MAX_MODULE_DEPTH,
# a module whose nodes all sit in one child module is that child, and a graph that is a single
# module opens on its content.
MIN_MODULE_NODES = 4
MAX_MODULE_DEPTH = 8


def module_level(paths, depth=0):
    """One level of the module view over node paths: a list of ``("op",)`` and
    ``("module", path, items)`` entries, in program order."""
    entries = []
    i = 0
    while i < len(paths):
        path = paths[i]
        if len(path) <= depth or depth >= MAX_MODULE_DEPTH:
            entries.append(("op",))
            i += 1
            continue
        j = i + 1
        while j < len(paths) and len(paths[j]) > depth and paths[j][depth] == path[depth]:
            j += 1
        if j - i < MIN_MODULE_NODES:
            entries.extend(("op",) for _ in range(i, j))
        else:
            inner = module_level(paths[i:j], depth + 1)
            if len(inner) == 1 and inner[0][0] == "module":
                entries.append(inner[0])
            else:
                entries.append(("module", tuple(path[: depth + 1]), inner))
        i = j
    return entries


def module_view(struct_names):
    """(nodes of the first view, number of module nodes, {name of a module node of the first
    view: nodes shown when it is entered}) for a graph's nodes' struct_names."""
    paths = [tuple(s for s in (name or "").split("/") if s) for name in struct_names]
    top = module_level(paths)
    if len(top) == 1 and top[0][0] == "module":
        top = top[0][2]

    def modules(entries):
        return sum(1 + modules(e[2]) for e in entries if e[0] == "module")

    inner = {e[1][-1]: len(e[2]) for e in top if e[0] == "module"}
    return len(top), modules(top), inner


def _attr(op, name):
    for a in op.get("A", []):
        if isinstance(a, dict) and a.get("N") == name:
            return a["AT"].get("D")
    return None


def _paddle_names(path: Path, version: int, ops: list) -> list:
    """Slot names per top-level op, asked from Paddle; None where Paddle has none."""
    try:
        import paddle
        from paddle.base import core
    except ImportError:
        return [None] * len(ops)
    paddle.enable_static()
    program = paddle.pir.Program()
    core.deserialize_pir_program(str(path), program, version)
    loaded = list(program.global_block().ops)
    names = [None] * len(ops)
    if len(loaded) != len(ops):
        raise AssertionError(f"{path}: paddle loaded {len(loaded)} ops, JSON has {len(ops)}")
    for i, (json_op, pir_op) in enumerate(zip(ops, loaded)):
        if pir_op.name() != op_type(json_op["#"]):
            raise AssertionError(
                f"{path}: op {i} is {pir_op.name()} in paddle, {op_type(json_op['#'])} in JSON"
            )
        try:
            names[i] = (list(pir_op.get_input_names()), list(pir_op.get_output_names()))
        except (ValueError, RuntimeError):
            names[i] = None
    return names


def expect(path: Path) -> dict:
    path = Path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    walk = Walk(doc)
    body = walk.body
    version = doc["base_code"]["version"]
    slot_names = _paddle_names(path, version, body["ops"])
    slot_of = {id(op): names for op, names in zip(body["ops"], slot_names)}
    nodes = walk.nodes(body)
    node_index = {id(op): i for i, op in enumerate(nodes)}
    params = {}
    data_names = {}
    for op in body["ops"]:
        if op["#"] == "p":
            out = op["O"][0] if isinstance(op["O"], list) else op["O"]
            params[out["%"]] = op["A"][3]
        elif op_type(op["#"]) == "pd_op.data":
            data_names[op["O"][0]["%"]] = _attr(op, "name")

    def source(vid):
        if vid in params:
            return ["param", params[vid]]
        producer = walk.producer.get(vid)
        if (
            producer
            and op_type(producer[0]["#"]) != "builtin.combine"
            and walk.foldable(producer[0], body)
        ):
            return ["const", f"%{vid}", constant_size(producer[0])]
        if vid in data_names:
            return ["input", data_names[vid]]
        producer = walk.producer.get(vid)
        if producer and id(producer[0]) in node_index:
            return ["node", node_index[id(producer[0])], producer[1]]
        return ["other", vid]

    expected_nodes = []
    for op in nodes:
        t = op_type(op["#"])
        names = slot_of.get(id(op))
        operands = [i["%"] for i in op.get("I", [])]
        inputs = []
        for k, vid in enumerate(operands):
            if vid == 0:
                continue
            if t == "pd_op.while":
                slot = "cond" if k == 0 else f"loop_var_{k - 1}"
            elif t == "pd_op.if":
                slot = "cond" if k == 0 else f"input_{k}"
            elif names and k < len(names[0]):
                slot = names[0][k]
            else:
                slot = None  # builtin/cf ops: positional or hand-named in the reader
            producer = walk.producer.get(vid)
            if (
                producer
                and op_type(producer[0]["#"]) == "builtin.combine"
                and walk.foldable(producer[0], body)
            ):
                values = [source(v) for v in walk.combine_inputs(vid)]
            else:
                values = [source(vid)]
            inputs.append({"slot": slot, "values": values})
        captures = walk.captures(op)
        outputs = None
        if names and t not in ("pd_op.if", "pd_op.while"):
            outputs = names[1][: len(op.get("O", []))]
        expected_nodes.append(
            {
                "type": t,
                "inputs": inputs,
                "outputs": outputs,
                "captures": [source(v) for v in captures],
                "regions": [len(r["blocks"]) for r in op.get("regions", [])],
                "struct_name": (_attr(op, "struct_name") or "").strip("/") or None,
            }
        )
    fetches = [
        op for op in body["ops"] if op_type(op["#"]) in ("pd_op.fetch", "builtin.shadow_output")
    ]
    if fetches:
        outputs = [
            _attr(op, "name") if op_type(op["#"]) == "pd_op.fetch" else _attr(op, "output_name")
            for op in fetches
        ]
    else:
        outputs = []
        for op in nodes:
            for k, out in enumerate(op.get("O", [])):
                if out["%"] not in walk.uses:
                    outputs.append(["node", node_index[id(op)], k])

    def count(block):
        total = 0
        for op in walk.nodes(block):
            total += 1
            for region in op.get("regions", []):
                for inner in region["blocks"]:
                    total += count(inner)
        return total

    reference = path.parent / "reference.json"
    ref = json.loads(reference.read_text(encoding="utf-8")) if reference.exists() else {}
    top_nodes, module_nodes, top_modules = module_view([n["struct_name"] for n in expected_nodes])
    return {
        "version": version,
        "top_nodes": top_nodes,
        "module_nodes": module_nodes,
        "top_modules": top_modules,
        "trainable": doc["base_code"].get("trainable", True),
        "inputs": [_attr(op, "name") for op in body["ops"] if op_type(op["#"]) == "pd_op.data"],
        "outputs": outputs,
        "nodes": expected_nodes,
        "total_nodes": count(body),
        "parameters": sorted(params.values()),
        "weights": ref.get("params", []),
    }


def write_all(corpus: Path, models: list[dict]) -> Path:
    """Write ``expectations.json`` for every model listed in models.json."""
    result = {}
    for entry in models:
        result[entry["target"]] = expect(corpus / entry["target"])
    out = corpus / "expectations.json"
    out.write_text(json.dumps(result), encoding="utf-8")
    return out
