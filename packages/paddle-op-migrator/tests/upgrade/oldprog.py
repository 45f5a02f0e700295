"""Tiny old-format programs and parameter files written with the package's own schema, for the
fault tests (no Paddle 2.x needed: these exercise what the tool must refuse)."""

from __future__ import annotations

import struct

import numpy as np

from paddle_op_migrator.upgrade import schema
from paddle_op_migrator.upgrade.program import make_op

DT = {"float32": 5, "int64": 3, "int32": 2}


def add_var(block, name, dtype="float32", dims=(-1,), persistable=False):
    v = block.vars.add()
    v.name = name
    v.persistable = persistable
    v.type.type = schema.LOD_TENSOR
    v.type.lod_tensor.tensor.data_type = DT[dtype]
    v.type.lod_tensor.tensor.dims.extend(dims)


def program(extra_ops=(), weight=(4, 3)):
    """feed x[2,4] -> matmul(x, w, alpha 0.5) -> [extra ops on "y"] -> fetch."""
    prog = schema.ProgramDesc()
    block = prog.blocks.add()
    block.idx, block.parent_idx = 0, -1
    fv = block.vars.add()
    fv.name, fv.persistable = "feed", True
    fv.type.type = schema.FEED_MINIBATCH
    fv2 = block.vars.add()
    fv2.name, fv2.persistable = "fetch", True
    fv2.type.type = schema.FETCH_LIST
    add_var(block, "x", dims=(2, 4))
    add_var(block, "w", dims=weight, persistable=True)
    add_var(block, "y", dims=(2, weight[1]))
    block.ops.append(make_op("feed", {"X": ["feed"]}, {"Out": ["x"]}, [("col", "INT", 0)]))
    block.ops.append(make_op("matmul", {"X": ["x"], "Y": ["w"]}, {"Out": ["y"]},
                             [("alpha", "FLOAT", 0.5), ("transpose_X", "BOOLEAN", False),
                              ("transpose_Y", "BOOLEAN", False)]))  # fmt: skip
    last = "y"
    for i, (type_, attrs) in enumerate(extra_ops):
        out = f"e{i}"
        add_var(block, out, dims=(2, weight[1]))
        block.ops.append(make_op(type_, {"X": [last]}, {"Out": [out]}, attrs))
        last = out
    block.ops.append(make_op("fetch", {"X": [last]}, {"Out": ["fetch"]}, [("col", "INT", 0)]))
    return prog


def tensor_bytes(arr: np.ndarray) -> bytes:
    desc = schema.TensorDesc()
    desc.data_type = {np.dtype("float32"): 5, np.dtype("int64"): 3}[arr.dtype]
    desc.dims.extend(arr.shape)
    d = desc.SerializeToString()
    return (struct.pack("<I", 0) + struct.pack("<Q", 0) + struct.pack("<I", 0) + struct.pack("<i", len(d))
            + d + np.ascontiguousarray(arr).tobytes())  # fmt: skip


def write_model(prefix, prog=None, params=None):
    prog = prog if prog is not None else program()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_name(prefix.name + ".pdmodel").write_bytes(prog.SerializeToString())
    if params is None:
        params = [np.arange(12, dtype="float32").reshape(4, 3) / 7]
    if params != []:
        prefix.with_name(prefix.name + ".pdiparams").write_bytes(
            b"".join(tensor_bytes(a) for a in params)
        )
    return prefix
