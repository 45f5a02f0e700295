"""Reading a combined parameter file (``*.pdiparams``) and checking it against the program.

The file is a plain sequence of tensors, one per persistable variable of the program in sorted
name order (the order in which ``save_inference_model`` writes and the predictor reads them).
Each tensor: ``uint32`` version, ``uint64`` LoD level count and the levels, ``uint32`` tensor
version, ``int32`` size of a ``TensorDesc`` message, the message, then the raw elements.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from .._errors import UserError
from . import schema

ITEM_SIZE = {
    "bool": 1, "int16": 2, "int32": 4, "int64": 8, "float16": 2, "float32": 4, "float64": 8,
    "uint8": 1, "int8": 1, "bfloat16": 2, "complex64": 8, "complex128": 16,
}  # fmt: skip
_MAX_LOD_LEVELS = 64
_MAX_DESC = 1 << 20


@dataclass(frozen=True)
class StoredTensor:
    dtype: str
    dims: tuple[int, ...]
    offset: int  # of the first element in the file
    nbytes: int


def read_tensors(path: Path, data: bytes) -> list[StoredTensor]:
    """Every tensor in a combined parameter file, or a ``UserError`` saying where it breaks."""
    out: list[StoredTensor] = []
    pos = 0
    end = len(data)

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if pos + n > end:
            raise UserError(
                f"parameter file ends inside tensor {len(out) + 1} ({what} at byte {pos}): "
                "the file is truncated or is not a Paddle parameter file",
                path,
            )
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    while pos < end:
        index = len(out) + 1
        (version,) = struct.unpack("<I", take(4, "version"))
        if version != 0:
            raise UserError(
                f"tensor {index} at byte {pos - 4} has version {version} (expected 0): "
                "not a Paddle parameter file, or damaged",
                path,
            )
        (levels,) = struct.unpack("<Q", take(8, "LoD level count"))
        if levels > _MAX_LOD_LEVELS:
            raise UserError(f"tensor {index}: {levels} LoD levels: damaged file", path)
        for _ in range(levels):
            (size,) = struct.unpack("<Q", take(8, "LoD level size"))
            take(size, "LoD level")
        (tversion,) = struct.unpack("<I", take(4, "tensor version"))
        if tversion != 0:
            raise UserError(
                f"tensor {index}: tensor version {tversion} (expected 0): damaged file", path
            )
        (desc_size,) = struct.unpack("<i", take(4, "descriptor size"))
        if not 0 <= desc_size <= _MAX_DESC:
            raise UserError(f"tensor {index}: descriptor size {desc_size}: damaged file", path)
        try:
            desc = schema.TensorDesc.FromString(take(desc_size, "descriptor"))
        except DecodeError as exc:
            raise UserError(
                f"tensor {index}: unreadable descriptor ({exc}): damaged file", path
            ) from None
        dtype = schema.DTYPES.get(desc.data_type)
        if dtype is None or any(d < 0 for d in desc.dims):
            raise UserError(
                f"tensor {index}: element type {desc.data_type} / shape {list(desc.dims)} is not "
                "valid for a stored tensor: damaged file",
                path,
            )
        nbytes = math.prod(desc.dims) * ITEM_SIZE[dtype]
        offset = pos
        take(nbytes, f"{nbytes} bytes of elements")
        out.append(StoredTensor(dtype, tuple(desc.dims), offset, nbytes))
    return out


def check_params(
    path: Path, data: bytes, persistables: list[tuple[str, str, tuple[int, ...]]]
) -> None:
    """``persistables``: (name, dtype, dims) of every persistable tensor the program declares.

    Raises one ``UserError`` that lists every mismatch (count, element type, shape)."""
    tensors = read_tensors(path, data)
    wanted = sorted(persistables)
    if len(tensors) != len(wanted):
        names = ", ".join(n for n, _, _ in wanted[:8]) + (" ..." if len(wanted) > 8 else "")
        raise UserError(
            f"holds {len(tensors)} tensors but the program declares {len(wanted)} persistable "
            f"tensors ({names}): this parameter file belongs to another model",
            path,
        )
    problems = []
    for (name, dtype, dims), t in zip(wanted, tensors):
        if dtype != t.dtype:
            problems.append(f"{name}: program says {dtype}, file holds {t.dtype}")
        elif len(dims) != len(t.dims) or any(a not in (-1, b) for a, b in zip(dims, t.dims)):
            problems.append(f"{name}: program says shape {list(dims)}, file holds {list(t.dims)}")
    if problems:
        raise UserError(
            "does not match the program (tensors are stored in sorted name order): "
            + "; ".join(problems),
            path,
        )
