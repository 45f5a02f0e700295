# Copied from x2paddle-llm:src/x2paddle_llm/_safetensors.py
"""Tensor-by-tensor safetensors reading and writing, with every header claim checked first.

The ``safetensors`` library has no streaming writer, its numpy backend cannot hold bfloat16,
and a header that claims a huge tensor makes it allocate (or panic) before anything is
checked. This module parses the header itself and checks every claim against the file
before a single byte of tensor data is allocated: the header length against the file size,
the JSON shape of each entry, a known dtype, non-negative integer dimensions, that the byte
range equals shape x dtype size, that ranges lie inside the file and do not overlap. A tensor
is then read with one ``readinto`` at its offset, so peak memory stays near the largest tensor.

Dtype policy, the same everywhere: every safetensors dtype that numpy can hold is read as
itself (BF16 as its raw ``uint16`` bits, converted by exact bit arithmetic); any other dtype
is refused with the tensor's name. Nothing is ever cast silently.

This file is copied verbatim into other packages of the repository (each copy starts with a
``# Copied from`` line); change it here and re-copy.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import UserError

#: safetensors dtype code -> numpy dtype that holds its bytes (BF16 as uint16 bits)
ST_TO_NP = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U64": np.uint64,
    "U32": np.uint32,
    "U16": np.uint16,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
NP_TO_ST = {
    np.dtype(np.float64): "F64",
    np.dtype(np.float32): "F32",
    np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64",
    np.dtype(np.int32): "I32",
    np.dtype(np.int16): "I16",
    np.dtype(np.int8): "I8",
    np.dtype(np.uint64): "U64",
    np.dtype(np.uint32): "U32",
    np.dtype(np.uint16): "U16",
    np.dtype(np.uint8): "U8",
    np.dtype(np.bool_): "BOOL",
}
FLOAT_CODES = ("F64", "F32", "F16", "BF16")
#: headers larger than this are refused (the reference library's own limit is 100 MB)
MAX_HEADER_BYTES = 100_000_000


class SafetensorsError(UserError):
    """A safetensors file is damaged, lies in its header, or holds an unsupported dtype."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors code
    shape: tuple[int, ...]
    begin: int  # absolute file offset
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def _check_entry(
    path: Path, name: str, meta: object, data_size: int
) -> tuple[str, tuple, int, int]:
    def bad(problem: str) -> SafetensorsError:
        return SafetensorsError(f"tensor {name!r}: {problem}", path)

    if not isinstance(meta, dict):
        raise bad("header entry is not an object")
    dtype, shape, offsets = meta.get("dtype"), meta.get("shape"), meta.get("data_offsets")
    if dtype not in ST_TO_NP:
        raise bad(f"unsupported dtype {dtype!r} (supported: {', '.join(ST_TO_NP)})")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise bad(f"shape {shape!r} is not a list of non-negative integers")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise bad(f"data_offsets {offsets!r} are not two increasing non-negative integers")
    numel = 1
    for d in shape:
        numel *= d
    claimed = numel * np.dtype(ST_TO_NP[dtype]).itemsize
    if offsets[1] - offsets[0] != claimed:
        raise bad(
            f"shape {shape} of {dtype} needs {claimed} bytes but data_offsets span "
            f"{offsets[1] - offsets[0]}"
        )
    if offsets[1] > data_size:
        raise bad(
            f"data ends at byte {offsets[1]} of a {data_size}-byte data section "
            "(truncated file, or a header that claims more than the file holds)"
        )
    return dtype, tuple(shape), offsets[0], offsets[1]


class SafetensorsReader:
    """A checked header plus on-demand reading of single tensors."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise SafetensorsError(
                "file not found" if not self.path.exists() else "not a file", self.path
            )
        size = self.path.stat().st_size
        with open(self.path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise SafetensorsError(f"not a safetensors file ({size} bytes)", self.path)
            (header_len,) = struct.unpack("<Q", head)
            if header_len > min(MAX_HEADER_BYTES, size - 8):
                raise SafetensorsError(
                    f"not a safetensors file (header length {header_len} does not fit the "
                    f"{size}-byte file)",
                    self.path,
                )
            raw = f.read(header_len)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SafetensorsError(f"header is not valid JSON ({exc})", self.path) from None
        if not isinstance(header, dict):
            raise SafetensorsError("header is not a JSON object", self.path)
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict):
            raise SafetensorsError("__metadata__ is not an object", self.path)
        self.metadata: dict = metadata
        base = 8 + header_len
        data_size = size - base
        self.tensors: dict[str, TensorInfo] = {}
        for name, meta in header.items():
            dtype, shape, begin, end = _check_entry(self.path, name, meta, data_size)
            self.tensors[name] = TensorInfo(name, dtype, shape, base + begin, base + end)
        spans = sorted((t.begin, t.end, t.name) for t in self.tensors.values() if t.nbytes)
        for (_, end_a, name_a), (begin_b, _, name_b) in zip(spans, spans[1:]):
            if begin_b < end_a:
                raise SafetensorsError(f"tensors {name_a!r} and {name_b!r} overlap", self.path)

    def keys(self) -> list[str]:
        return list(self.tensors)

    def read(self, name: str) -> np.ndarray:
        """The tensor's array in its own dtype (BF16 as uint16 bits)."""
        try:
            info = self.tensors[name]
        except KeyError:
            raise SafetensorsError(f"no tensor named {name!r}", self.path) from None
        out = np.empty(info.shape, dtype=ST_TO_NP[info.dtype])
        if out.nbytes:
            with open(self.path, "rb") as f:
                f.seek(info.begin)
                got = f.readinto(memoryview(out.reshape(-1)).cast("B"))
            if got != info.nbytes:
                raise SafetensorsError(f"tensor {name!r} is truncated", self.path)
        return out

    def read_float32(self, name: str) -> np.ndarray:
        """The tensor as float32; refuses a tensor that is not a float."""
        info = self.tensors.get(name)
        if info is not None and info.dtype not in FLOAT_CODES:
            raise SafetensorsError(
                f"tensor {name!r} is {info.dtype}, a float was expected", self.path
            )
        return to_float32(self.read(name), self.tensors[name].dtype)


# ---------------------------------------------------------------- dtype casts
def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round to nearest even, like torch's ``.to(torch.bfloat16)``; NaN stays NaN."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = 0x7FC0
    return rounded


def to_float32(array: np.ndarray, code: str) -> np.ndarray:
    if code == "BF16":
        return bf16_bits_to_f32(array)
    return array if array.dtype == np.float32 else array.astype(np.float32)


def cast(array: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Cast between safetensors float codes; integer tensors pass through unchanged."""
    if src == dst or src not in FLOAT_CODES or dst not in FLOAT_CODES:
        return array
    as_f32 = to_float32(array, src)
    if dst == "BF16":
        return f32_to_bf16_bits(as_f32)
    return as_f32.astype(ST_TO_NP[dst])


def st_code(array: np.ndarray) -> str:
    """The safetensors code of a numpy array's dtype (uint16 means U16, never BF16)."""
    try:
        return NP_TO_ST[array.dtype]
    except KeyError:
        raise TypeError(f"no safetensors dtype for numpy {array.dtype}") from None


# --------------------------------------------------------------------- writer
@dataclass(frozen=True)
class PlannedTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n * np.dtype(ST_TO_NP[self.dtype]).itemsize


class StreamingWriter:
    """Write one safetensors file whose tensor list is known in advance, tensor by tensor.

    Write into a temporary location (see ``_atomic``): a writer that fails part-way leaves an
    incomplete file behind by design.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        plan: list[PlannedTensor],
        metadata: dict[str, str] | None = None,
    ):
        self.path = Path(path)
        self.plan = {t.name: t for t in plan}
        if len(self.plan) != len(plan):
            raise ValueError(f"{self.path}: duplicate tensor names in the plan")
        header: dict[str, object] = {}
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        offset = 0
        for t in plan:
            header[t.name] = {
                "dtype": t.dtype,
                "shape": [int(d) for d in t.shape],
                "data_offsets": [offset, offset + t.nbytes],
            }
            offset += t.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)  # align the data section like the reference writer
        self._order = [t.name for t in plan]
        self._next = 0
        self._file = open(self.path, "wb")
        self._file.write(struct.pack("<Q", len(raw)))
        self._file.write(raw)

    def write(self, name: str, array: np.ndarray) -> None:
        planned = self.plan[name]
        wanted = np.dtype(ST_TO_NP[planned.dtype])
        if tuple(array.shape) != tuple(planned.shape) or array.dtype != wanted:
            raise ValueError(
                f"{self.path}: {name} is {array.dtype}{tuple(array.shape)}, planned "
                f"{planned.dtype}{tuple(planned.shape)}"
            )
        self.write_chunks(name, [array])

    def write_chunks(self, name: str, chunks: Iterable[np.ndarray]) -> None:
        """Append tensor ``name`` from contiguous pieces (e.g. row blocks of a transpose)."""
        expected = self._order[self._next] if self._next < len(self._order) else None
        if name != expected:
            raise ValueError(
                f"{self.path}: tensors are written in plan order; got {name}, expected {expected}"
            )
        written = 0
        for chunk in chunks:
            view = memoryview(np.ascontiguousarray(chunk).reshape(-1)).cast("B")
            self._file.write(view)
            written += view.nbytes
        if written != self.plan[name].nbytes:
            raise ValueError(
                f"{self.path}: {name} got {written} bytes, planned {self.plan[name].nbytes}"
            )
        self._next += 1

    def close(self) -> None:
        if self._next != len(self._order):
            self._file.close()
            raise ValueError(
                f"{self.path}: only {self._next} of {len(self._order)} tensors were written"
            )
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> StreamingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._file.close()


def save_arrays(
    path: str | os.PathLike,
    tensors: dict[str, np.ndarray],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write a dict of numpy arrays (each in its own dtype) as one safetensors file."""
    plan = [PlannedTensor(n, st_code(a), tuple(a.shape)) for n, a in tensors.items()]
    with StreamingWriter(path, plan, metadata) as writer:
        for name, array in tensors.items():
            writer.write(name, array)


def iter_file_tensors(path: str | os.PathLike) -> Iterator[tuple[str, np.ndarray, str]]:
    """``(name, array, code)`` for every tensor of one file, one at a time."""
    reader = SafetensorsReader(path)
    for name in reader.keys():
        yield name, reader.read(name), reader.tensors[name].dtype
