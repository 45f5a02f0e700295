"""Tensor-by-tensor safetensors reading and writing.

The ``safetensors`` library validates every input file (``safe_open``), but it has no
streaming writer and its numpy backend cannot hold bfloat16.  To keep peak memory near the
largest tensor, this module reads one tensor's bytes at a time at the offsets of the (already
validated) header, and writes output shards by first writing the header, then each tensor.
bfloat16 is carried as raw ``uint16`` bits and converted with exact bit arithmetic.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CheckpointError

#: safetensors dtype code -> numpy dtype used to hold the bytes (BF16 held as uint16 bits)
ST_TO_NP = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}
NAME_TO_ST = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64"}
ST_TO_NAME = {v: k for k, v in NAME_TO_ST.items()}
FLOAT_CODES = ("F64", "F32", "F16", "BF16")


@dataclass
class TensorInfo:
    name: str
    dtype: str  # safetensors code
    shape: tuple[int, ...]
    begin: int  # absolute file offset
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


class SafetensorsReader:
    """Validated header plus on-demand reading of single tensors."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: file not found")
        size = self.path.stat().st_size
        # Let the reference library validate the file first (truncation, overlaps, bad JSON).
        try:
            from safetensors import safe_open

            with safe_open(str(self.path), framework="numpy") as handle:
                handle.keys()
        except Exception as exc:  # the library raises its own SafetensorError types
            raise CheckpointError(f"{self.path}: not a valid safetensors file ({exc})") from None
        with open(self.path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        self.metadata = header.pop("__metadata__", None) or {}
        base = 8 + header_len
        self.tensors: dict[str, TensorInfo] = {}
        for name, meta in header.items():
            begin, end = meta["data_offsets"]
            info = TensorInfo(name, meta["dtype"], tuple(meta["shape"]), base + begin, base + end)
            if info.end > size:
                raise CheckpointError(f"{self.path}: tensor {name!r} ends past the end of the file (truncated)")
            self.tensors[name] = info

    def keys(self) -> list[str]:
        return list(self.tensors)

    def read(self, name: str) -> np.ndarray:
        info = self.tensors[name]
        if info.dtype not in ST_TO_NP:
            raise CheckpointError(f"{self.path}: tensor {name!r} has unsupported dtype {info.dtype}")
        out = np.empty(info.shape, dtype=ST_TO_NP[info.dtype])
        with open(self.path, "rb") as f:
            f.seek(info.begin)
            got = f.readinto(memoryview(out).cast("B")) if out.nbytes else 0
        if got != info.nbytes:
            raise CheckpointError(f"{self.path}: tensor {name!r} is truncated")
        return out


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


def cast(array: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Cast between safetensors float codes; integer tensors pass through unchanged."""
    if src == dst or src not in FLOAT_CODES or dst not in FLOAT_CODES:
        return array
    as_f32 = bf16_bits_to_f32(array) if src == "BF16" else array.astype(np.float32)
    if dst == "BF16":
        return f32_to_bf16_bits(as_f32)
    return as_f32.astype(ST_TO_NP[dst])


def to_float32(array: np.ndarray, code: str) -> np.ndarray:
    return bf16_bits_to_f32(array) if code == "BF16" else array.astype(np.float32)


# --------------------------------------------------------------------- writer
@dataclass
class PlannedTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        n = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        return n * np.dtype(ST_TO_NP[self.dtype]).itemsize


class StreamingWriter:
    """Write one safetensors file whose tensor list is known in advance, tensor by tensor."""

    def __init__(self, path: str | Path, plan: list[PlannedTensor], metadata: dict[str, str] | None = None):
        self.path = Path(path)
        self.plan = {t.name: t for t in plan}
        header: dict[str, object] = {}
        if metadata:
            header["__metadata__"] = metadata
        offset = 0
        for t in plan:
            header[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
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
        if tuple(array.shape) != planned.shape or array.dtype != np.dtype(ST_TO_NP[planned.dtype]):
            raise RuntimeError(f"{self.path}: {name} is {array.dtype}{array.shape}, planned {planned.dtype}{planned.shape}")
        self.write_chunks(name, [array])

    def write_chunks(self, name: str, chunks) -> None:
        """Append tensor ``name`` from contiguous pieces (e.g. row blocks of a transpose)."""
        expected = self._order[self._next] if self._next < len(self._order) else None
        if name != expected:
            raise RuntimeError(f"{self.path}: tensors must be written in plan order; got {name}, expected {expected}")
        written = 0
        for chunk in chunks:
            view = memoryview(np.ascontiguousarray(chunk)).cast("B")  # no extra copy
            self._file.write(view)
            written += view.nbytes
        if written != self.plan[name].nbytes:
            raise RuntimeError(f"{self.path}: {name} got {written} bytes, planned {self.plan[name].nbytes}")
        self._next += 1

    def close(self) -> None:
        if self._next != len(self._order):
            self._file.close()
            raise RuntimeError(f"{self.path}: only {self._next} of {len(self._order)} tensors written")
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


def iter_file_tensors(path: str | Path) -> Iterator[tuple[str, np.ndarray, str]]:
    reader = SafetensorsReader(path)
    for name in reader.keys():
        yield name, reader.read(name), reader.tensors[name].dtype
