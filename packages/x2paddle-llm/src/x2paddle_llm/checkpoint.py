"""Find and index the weight files of a Hugging Face checkpoint folder without loading them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._errors import read_json_object
from ._safetensors import SafetensorsReader
from .errors import CheckpointError

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "generation_config.json",
    "chat_template.jinja",
    "chat_template.json",
)

TORCH_TO_ST = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float64": "F64",
    "int64": "I64",
    "int32": "I32",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


@dataclass
class SourceTensor:
    name: str
    dtype: str  # safetensors code
    shape: tuple[int, ...]
    file: Path
    nbytes: int


@dataclass
class SourceShard:
    path: Path
    tensors: list[SourceTensor] = field(default_factory=list)
    _loader: Callable[[str], np.ndarray] | None = None

    def read(self, name: str) -> np.ndarray:
        assert self._loader is not None
        return self._loader(name)


def _index_shards(index_path: Path) -> tuple[list[Path], dict[str, str]]:
    index = read_json_object(index_path, what="weight index")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(
            f"{index_path}: not a valid weight index (no weight_map object of file names)"
        )
    if any("/" in v or "\\" in v or v.startswith(".") for v in weight_map.values()):
        raise CheckpointError(f"{index_path}: weight_map names a file outside the folder")
    files = sorted(set(weight_map.values()))
    missing = [f for f in files if not (index_path.parent / f).is_file()]
    if missing:
        raise CheckpointError(f"{index_path}: shard(s) listed in the index are missing: {missing}")
    return [index_path.parent / f for f in files], weight_map


def _open_safetensors(path: Path) -> SourceShard:
    reader = SafetensorsReader(path)
    shard = SourceShard(path, _loader=reader.read)
    for name, info in reader.tensors.items():
        shard.tensors.append(SourceTensor(name, info.dtype, info.shape, path, info.nbytes))
    return shard


def _open_torch_bin(path: Path) -> SourceShard:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: reading pytorch_model*.bin needs torch (pip install torch); "
            "safetensors checkpoints need no torch"
        ) from None
    try:
        state = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot be read by torch.load ({exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(state).__name__}")
    shard = SourceShard(path)
    for name, t in state.items():
        code = TORCH_TO_ST.get(str(t.dtype).replace("torch.", ""))
        if code is None:
            raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {t.dtype}")
        shard.tensors.append(
            SourceTensor(name, code, tuple(t.shape), path, t.numel() * t.element_size())
        )

    def load(name: str) -> np.ndarray:
        t = state[name].contiguous()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(np.uint16)
        return t.numpy()

    shard._loader = load
    return shard


def open_checkpoint(folder: str | Path) -> list[SourceShard]:
    """Every weight file of ``folder`` as shards whose headers are validated (no weights read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a folder")
    for index_name, opener in (
        ("model.safetensors.index.json", _open_safetensors),
        ("pytorch_model.bin.index.json", _open_torch_bin),
    ):
        index_path = folder / index_name
        if index_path.is_file():
            files, weight_map = _index_shards(index_path)
            shards = [opener(f) for f in files]
            found = {t.name: s.path.name for s in shards for t in s.tensors}
            for key, fname in weight_map.items():
                if found.get(key) != fname:
                    raise CheckpointError(
                        f"{index_path}: tensor {key!r} is listed in {fname} but not found there"
                    )
            return shards
    single = folder / "model.safetensors"
    if single.is_file():
        return [_open_safetensors(single)]
    single_bin = folder / "pytorch_model.bin"
    if single_bin.is_file():
        return [_open_torch_bin(single_bin)]
    loose = sorted(folder.glob("*.safetensors"))
    if loose:
        raise CheckpointError(
            f"{folder}: has {[p.name for p in loose]} but no model.safetensors.index.json "
            "(a sharded checkpoint needs its index)"
        )
    raise CheckpointError(
        f"{folder}: no weights found (expected model.safetensors, model.safetensors.index.json + shards, "
        "pytorch_model.bin or pytorch_model.bin.index.json + shards)"
    )
