"""A parsed old inference program: reading, checking and small editing helpers.

Works on our own schema (``schema.py``), so no Paddle is needed to read or rewrite a program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from .._errors import UserError
from . import schema
from .schema import ATTR_FIELD, ATTR_KIND

# Attributes every op may carry that belong to the framework, not to the op's signature.
FRAMEWORK_ATTRS = frozenset(
    {
        "op_role", "op_role_var", "op_namescope", "op_callstack", "op_device", "with_quant_attr",
        "is_test", "use_mkldnn", "use_cudnn", "mkldnn_data_type", "use_quantizer",
        "force_fp32_output", "Scale_x", "Scale_y", "Scale_out", "Scale_in", "Scale_in_eltwise",
        "name",
    }
)  # fmt: skip
# Attributes copied onto every op a rewrite creates (where the op was, who made it).
PROVENANCE_ATTRS = ("op_role", "op_namescope", "op_callstack", "op_device", "with_quant_attr")
_IDENT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


def load_program(path: Path, data: bytes):
    """Parse ``data`` as a ``ProgramDesc`` and check that it is one; a ``UserError`` otherwise."""
    if not data:
        raise UserError("is empty: not a Paddle program", path)
    head = data[:64].lstrip()
    if head[:1] in (b"{", b"["):
        raise UserError(
            "is JSON, not a protobuf program (a Paddle 3 PIR model is already upgraded)", path
        )
    try:
        prog = schema.ProgramDesc.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise UserError(f"is not a Paddle program (protobuf does not parse: {exc})", path) from None
    problems = []
    if not prog.blocks:
        problems.append("it has no blocks")
    for b, block in enumerate(prog.blocks):
        if block.idx != b:
            problems.append(f"block {b} says it is block {block.idx}")
            break
        for i, op in enumerate(block.ops):
            if not op.type or not set(op.type) <= _IDENT:
                problems.append(f"block {b} op {i} has no valid type ({op.type!r})")
                break
            for a in op.attrs:
                if a.type not in ATTR_FIELD:
                    problems.append(
                        f"block {b} op {i} ({op.type}) attribute {a.name!r} has kind {a.type}"
                    )
                    break
        for v in block.vars:
            if not v.name or not v.HasField("type"):
                problems.append(f"block {b} has a variable without name or type")
                break
    if problems:
        raise UserError(
            "is not a Paddle inference program (or is damaged): " + "; ".join(problems[:5]), path
        )
    ops = [op.type for op in prog.blocks[0].ops]
    if "feed" not in ops or "fetch" not in ops:
        raise UserError(
            "is a Paddle program but not an inference model (no feed or fetch op: save it with "
            "paddle.static.save_inference_model or paddle.jit.save)",
            path,
        )
    return prog


def attr_value(a):
    """The Python value of an attribute message."""
    f = ATTR_FIELD[a.type]
    v = getattr(a, f)
    if a.type in (2,):  # STRING: stored as bytes in our schema
        return v.decode("utf-8", "replace")
    if a.type == 5:
        return [s.decode("utf-8", "replace") for s in v]
    if a.type in (16, 17):
        return None  # scalars are not compared by the rules
    return list(v) if f in ("ints", "floats", "strings", "bools", "longs", "float64s",
                            "blocks_idx", "vars_name") else v  # fmt: skip


def attrs_of(op) -> dict:
    return {a.name: attr_value(a) for a in op.attrs}


def set_attr(op, name: str, kind: str, value) -> None:
    """Set (or replace) attribute ``name`` of kind ``kind`` (``"INT"``, ``"FLOATS"``, ...)."""
    for i, a in enumerate(op.attrs):
        if a.name == name:
            del op.attrs[i]
            break
    a = op.attrs.add()
    a.name = name
    a.type = ATTR_KIND[kind]
    f = ATTR_FIELD[a.type]
    if kind == "STRING":
        a.s = value.encode()
    elif kind == "STRINGS":
        a.strings.extend(s.encode() for s in value)
    elif isinstance(value, (list, tuple)):
        getattr(a, f).extend(value)
    else:
        setattr(a, f, value)


def slot_args(slots, name: str) -> list[str]:
    for s in slots:
        if s.parameter == name:
            return list(s.arguments)
    return []


@dataclass
class BlockEditor:
    """Creates the variables and ops of a rewrite inside one block."""

    block: object
    counter: list = field(default_factory=lambda: [0])

    def __post_init__(self) -> None:
        self.vars = {v.name: v for v in self.block.vars}

    def var(self, name: str):
        return self.vars.get(name)

    def dtype(self, name: str) -> int:
        v = self.vars.get(name)
        if v is None or not v.type.HasField("lod_tensor"):
            return 5
        return v.type.lod_tensor.tensor.data_type

    def dims(self, name: str) -> list[int] | None:
        v = self.vars.get(name)
        if v is None or not v.type.HasField("lod_tensor"):
            return None
        return list(v.type.lod_tensor.tensor.dims)

    def new_var(self, base: str, dtype: int, dims: list[int] | None) -> str:
        self.counter[0] += 1
        name = f"{base}.upgraded_{self.counter[0]}"
        while name in self.vars:
            self.counter[0] += 1
            name = f"{base}.upgraded_{self.counter[0]}"
        v = self.block.vars.add()
        v.name = name
        v.type.type = schema.LOD_TENSOR
        v.type.lod_tensor.tensor.data_type = dtype
        v.type.lod_tensor.tensor.dims.extend(dims if dims is not None else [-1])
        self.vars[name] = v
        return name


def make_op(type_: str, inputs: dict, outputs: dict, attrs: list[tuple], like=None):
    """A new op; ``attrs`` are (name, kind, value); provenance attributes come from ``like``."""
    op = schema.OpDesc()
    op.type = type_
    for slots, given in ((op.inputs, inputs), (op.outputs, outputs)):
        for k, names in given.items():
            s = slots.add()
            s.parameter = k
            s.arguments.extend(names)
    for name, kind, value in attrs:
        set_attr(op, name, kind, value)
    if like is not None:
        for a in like.attrs:
            if a.name in PROVENANCE_ATTRS and not any(b.name == a.name for b in op.attrs):
                op.attrs.add().CopyFrom(a)
    return op
