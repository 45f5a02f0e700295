"""Write a large synthetic PIR JSON program (version 4 schema) with its ``model.pdiparams``.

Paddle's own ``save_inference_model`` takes many minutes on 10,000 ops, so the benchmark writes
the program directly: ``blocks`` residual blocks ``h = h + relu(h @ W + b)`` (4 ops, 2 parameters
each), between a ``pd_op.data`` and a ``pd_op.fetch``. ``validate`` lets Paddle deserialize it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np


def _tensor_type(dims):
    return {"#": "0.t_dtensor", "D": [{"#": "0.t_f32"}, dims, "NCHW", [], 0]}


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tensor_bytes(array: np.ndarray) -> bytes:
    desc = b"\x08" + _varint(5)  # data_type = FP32
    for dim in array.shape:
        desc += b"\x10" + _varint(dim)
    return (
        struct.pack("<IQI", 0, 0, 0)
        + struct.pack("<i", len(desc))
        + desc
        + array.astype("<f4").tobytes()
    )


def write(folder: Path, blocks: int, width: int = 16, seed: int = 0) -> int:
    """Write model.json + model.pdiparams; return the number of non-parameter ops."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    next_id = iter(range(1, 10_000_000))
    ops, params = [], {}
    row = _tensor_type([-1, width])
    x = next(next_id)
    ops.append(
        {
            "#": "1.data",
            "A": [
                {"N": "name", "AT": {"#": "0.a_str", "D": "x"}},
                {"N": "shape", "AT": {"#": "1.a_intarray", "D": [-1, width]}},
                {"N": "dtype", "AT": {"#": "1.a_dtype", "D": "float32"}},
                {"N": "place", "AT": {"#": "1.a_place", "D": [0, 0, ""]}},
            ],
            "I": [],
            "O": [{"%": x, "TT": row}],
        }
    )
    h = x
    for k in range(blocks):
        w_name, b_name = f"fc_{k}.w_0", f"fc_{k}.b_0"
        w, b = next(next_id), next(next_id)
        for name, vid, dims in ((w_name, w, [width, width]), (b_name, b, [width])):
            ops.append(
                {
                    "#": "p",
                    "A": [0, 1, 1, name],
                    "DA": [],
                    "QA": [],
                    "O": {"%": vid, "TT": _tensor_type(dims)},
                    "OA": [1, 0, 1],
                }
            )
            params[name] = rng.standard_normal(dims).astype("float32") * 0.1
        mm, add, relu, res = (next(next_id) for _ in range(4))
        ops.append(
            {
                "#": "1.matmul",
                "A": [
                    {"N": "transpose_x", "AT": {"#": "0.a_bool", "D": False}},
                    {"N": "transpose_y", "AT": {"#": "0.a_bool", "D": False}},
                ],
                "I": [{"%": h}, {"%": w}],
                "O": [{"%": mm, "TT": row}],
            }
        )
        ops.append(
            {"#": "1.add", "A": [], "I": [{"%": mm}, {"%": b}], "O": [{"%": add, "TT": row}]}
        )
        ops.append({"#": "1.relu", "A": [], "I": [{"%": add}], "O": [{"%": relu, "TT": row}]})
        ops.append(
            {"#": "1.add", "A": [], "I": [{"%": h}, {"%": relu}], "O": [{"%": res, "TT": row}]}
        )
        h = res
    ops.append(
        {
            "#": "1.fetch",
            "A": [
                {"N": "name", "AT": {"#": "0.a_str", "D": "fetch_name_0"}},
                {"N": "col", "AT": {"#": "0.a_i32", "D": 0}},
            ],
            "I": [{"%": h}],
            "O": [{"%": next(next_id), "TT": row}],
        }
    )
    doc = {
        "base_code": {"magic": "pir", "trainable": True, "version": 4},
        "program": {
            "regions": [{"#": "region_0", "blocks": [{"#": "block_0", "args": [], "ops": ops}]}]
        },
    }
    for op in ops:  # as in files saved with trainable=True (netron's reader requires it)
        if op["#"] != "p":
            op["OA"] = [
                {
                    "AT": {"#": "0.a_array", "D": [{"#": "0.a_bool", "D": False}]},
                    "N": "stop_gradient",
                }
            ]
    (folder / "model.json").write_text(json.dumps(doc, separators=(",", ":")))
    with open(folder / "model.pdiparams", "wb") as handle:
        for name in sorted(params):
            handle.write(_tensor_bytes(params[name]))
    return sum(1 for op in ops if op["#"] not in ("p", "1.data", "1.fetch"))


def validate(folder: Path) -> int:
    """Let Paddle deserialize the program; return its op count (parameters included)."""
    import paddle
    from paddle.base import core

    paddle.enable_static()
    program = paddle.pir.Program()
    core.deserialize_pir_program(str(folder / "model.json"), program, 4)
    count = len(program.global_block().ops)
    paddle.disable_static()
    return count
