"""Streaming safetensors reading and writing with numpy (bf16 included).

The ``safetensors`` numpy backend cannot return bfloat16 (numpy has no such dtype), and the
FLUX.1 checkpoints are bfloat16. This reader reads one tensor at a time with ``pread`` into
private memory (not a memory map: mapped pages stay in the process's resident set until
unmapped), so converting a 24 GB checkpoint holds about one tensor at a time.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

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
_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
          "U8": 1, "BOOL": 1}


class SafetensorsError(ValueError):
    """A safetensors file that cannot be read."""


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """uint16 bit patterns of bfloat16 -> float32 (exact)."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(arr: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, round to nearest even (as torch does)."""
    bits = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


class SafeOpen:
    """Memory-mapped read access to one ``.safetensors`` file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._fh = open(self.path, "rb")
            header_len = struct.unpack("<Q", self._fh.read(8))[0]
            if header_len > 100_000_000:
                raise SafetensorsError("header length is implausible")
            header = json.loads(self._fh.read(header_len))
        except (OSError, struct.error, json.JSONDecodeError, SafetensorsError) as exc:
            raise SafetensorsError(f"{self.path}: not a readable safetensors file ({exc})") from exc
        self.metadata = header.pop("__metadata__", None) or {}
        self.header = header
        self._offset = 8 + header_len
        self._size = os.fstat(self._fh.fileno()).st_size

    def keys(self) -> list[str]:
        return list(self.header)

    def dtype(self, key: str) -> str:
        return self.header[key]["dtype"]

    def shape(self, key: str) -> list[int]:
        return list(self.header[key]["shape"])

    def raw(self, key: str) -> np.ndarray:
        """The tensor in its stored dtype (bf16 as uint16 bit patterns)."""
        info = self.header[key]
        dtype = info["dtype"]
        start, end = info["data_offsets"]
        np_dtype = np.uint16 if dtype == "BF16" else _NP_DTYPES.get(dtype)
        if np_dtype is None:
            raise SafetensorsError(f"{self.path}: tensor {key!r} has unsupported dtype {dtype}")
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        if end - start != count * _SIZES[dtype] or self._offset + end > self._size:
            raise SafetensorsError(f"{self.path}: tensor {key!r} has inconsistent offsets "
                                   "(truncated file?)")
        arr = np.empty(count, dtype=np_dtype)
        view = memoryview(arr.view(np.uint8))
        done, fd = 0, self._fh.fileno()
        while done < len(view):
            n = os.preadv(fd, [view[done:]], self._offset + start + done)
            if n <= 0:
                raise SafetensorsError(f"{self.path}: short read in tensor {key!r}")
            done += n
        return arr.reshape(info["shape"])

    def get(self, key: str, dtype=np.float32) -> np.ndarray:
        """The tensor as a numpy array of ``dtype`` (floats) or its own integer dtype."""
        arr = self.raw(key)
        if self.header[key]["dtype"] == "BF16":
            arr = bf16_to_f32(arr)
        if dtype is not None and np.issubdtype(arr.dtype, np.floating):
            return arr.astype(dtype, copy=True)
        return np.array(arr)

    def close(self):
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _st_dtype(arr: np.ndarray) -> str:
    for name, dt in _NP_DTYPES.items():
        if arr.dtype == dt:
            return name
    raise SafetensorsError(f"cannot store numpy dtype {arr.dtype}")


def write_streaming(path: str | os.PathLike,
                    specs: Iterable[tuple[str, str, list[int], Callable[[], np.ndarray]]],
                    metadata: dict[str, str] | None = None, sparse_zeros: bool = False) -> None:
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
        header[name] = {"dtype": st_dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
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


def save_numpy(path: str | os.PathLike, tensors: dict[str, np.ndarray],
               metadata: dict[str, str] | None = None) -> None:
    """Save a dict of numpy arrays (atomic rename)."""
    write_streaming(
        path,
        [(k, _st_dtype(v), list(v.shape), (lambda v=v: v)) for k, v in tensors.items()],
        metadata,
    )
