"""Streaming safetensors reading and writing with numpy (bf16 included).

The ``safetensors`` numpy backend cannot return bfloat16 (numpy has no such dtype), and the
FLUX.1 checkpoints are bfloat16. ``SafeOpen`` checks every header claim against the file when
it opens it (``_safetensors.SafetensorsReader``: dtypes, shapes, byte ranges inside the file,
no overlaps), so a damaged or lying file is refused before anything is allocated. It then
reads one tensor at a time into private memory (not a memory map: mapped pages stay in the
process's resident set until unmapped), so converting a 24 GB checkpoint holds about one
tensor at a time.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ._safetensors import (
    FLOAT_CODES,
    SafetensorsReader,
    f32_to_bf16_bits,  # noqa: F401  (public name)
)
from ._safetensors import SafetensorsError as _CheckedError
from ._safetensors import bf16_bits_to_f32 as bf16_to_f32  # noqa: F401  (public name)

_NP_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_SIZES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


class SafetensorsError(_CheckedError, ValueError):
    """A safetensors file that cannot be read (printed as ``error: <file>: <problem>``)."""


class SafeOpen:
    """Read access to one ``.safetensors`` file, one tensor at a time (not memory-mapped);
    the header is checked against the file on opening."""

    def __init__(self, path: str | os.PathLike):
        try:
            self._reader = SafetensorsReader(path)
        except _CheckedError as exc:
            raise SafetensorsError(exc.problem, exc.path) from None
        self.path = self._reader.path
        self.metadata = self._reader.metadata
        self.header = {
            name: {"dtype": t.dtype, "shape": list(t.shape)}
            for name, t in self._reader.tensors.items()
        }

    def keys(self) -> list[str]:
        return list(self.header)

    def dtype(self, key: str) -> str:
        return self.header[key]["dtype"]

    def shape(self, key: str) -> list[int]:
        return list(self.header[key]["shape"])

    def is_float(self, key: str) -> bool:
        return self.dtype(key) in FLOAT_CODES

    def raw(self, key: str) -> np.ndarray:
        """The tensor in its stored dtype (bf16 as uint16 bit patterns)."""
        try:
            return self._reader.read(key)
        except _CheckedError as exc:
            raise SafetensorsError(exc.problem, exc.path) from None

    def get(self, key: str, dtype=np.float32) -> np.ndarray:
        """The tensor as a numpy array of ``dtype`` (floats) or its own integer dtype."""
        arr = self.raw(key)
        if self.header[key]["dtype"] == "BF16":
            arr = bf16_to_f32(arr)
        if dtype is not None and np.issubdtype(arr.dtype, np.floating):
            return arr.astype(dtype, copy=True)
        return np.array(arr)

    def close(self):
        pass  # each read opens and closes the file

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _st_dtype(arr: np.ndarray) -> str:
    for name, dt in _NP_DTYPES.items():
        if arr.dtype == dt:
            return name
    raise SafetensorsError(f"cannot store numpy dtype {arr.dtype}")


def write_streaming(
    path: str | os.PathLike,
    specs: Iterable[tuple[str, str, list[int], Callable[[], np.ndarray]]],
    metadata: dict[str, str] | None = None,
    sparse_zeros: bool = False,
) -> None:
    """Write tensors one at a time: ``specs`` yields (name, st_dtype, shape, producer).

    The header is computed from the shapes first, then each producer is called and its bytes
    written, so peak memory is one tensor. The file is written next to ``path`` and renamed.
    ``sparse_zeros`` leaves all-zero tensors as holes in the file (they read back as zeros;
    used by the memory benchmark so a 24 GB synthetic output takes no disk).
    """
    specs = list(specs)
    header: dict = {"__metadata__": dict(metadata or {"format": "pt"})}
    offset = 0
    for name, st_dtype, shape, _ in specs:
        nbytes = int(np.prod(shape)) * _SIZES[st_dtype] if shape else _SIZES[st_dtype]
        header[name] = {
            "dtype": st_dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as fh:
            fh.write(struct.pack("<Q", len(blob)))
            fh.write(blob)
            for name, st_dtype, shape, producer in specs:
                arr = np.ascontiguousarray(producer())
                if list(arr.shape) != list(shape):
                    raise SafetensorsError(f"{name}: produced shape {arr.shape}, header {shape}")
                if st_dtype == "BF16":
                    arr = arr if arr.dtype == np.uint16 else f32_to_bf16_bits(arr)
                else:
                    arr = arr.astype(_NP_DTYPES[st_dtype], copy=False)
                if sparse_zeros and not arr.any():
                    fh.seek(arr.nbytes, 1)
                else:
                    fh.write(arr.reshape(-1).view(np.uint8).data)
                del arr
            fh.truncate(fh.tell())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_numpy(
    path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> None:
    """Save a dict of numpy arrays (atomic rename)."""
    write_streaming(
        path,
        [(k, _st_dtype(v), list(v.shape), (lambda v=v: v)) for k, v in tensors.items()],
        metadata,
    )
