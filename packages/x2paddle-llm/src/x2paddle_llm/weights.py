"""Load converted weights (either target's names) into :class:`DecoderForCausalLM`."""

from __future__ import annotations

import json
from pathlib import Path

from ._paddle import require_paddle
from .config import DecoderConfig
from .errors import CheckpointError
from .mapping import PADDLENLP_PREFIX
from .safetensors_io import SafetensorsReader, to_float32


def weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise CheckpointError(f"{index}: missing shard(s) {missing}")
        return [folder / f for f in files]
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    raise CheckpointError(f"{folder}: no model.safetensors or model.safetensors.index.json")


def _own_name(name: str, cfg: DecoderConfig) -> str:
    prefix = PADDLENLP_PREFIX.get(cfg.model_type)
    if prefix and name.startswith(prefix + "."):
        return "model" + name[len(prefix):]
    return name


def load_state_into(model, folder: Path, cfg: DecoderConfig) -> None:
    paddle = require_paddle()
    params = dict(model.named_parameters())
    loaded: set[str] = set()
    for path in weight_files(folder):
        reader = SafetensorsReader(path)
        for name in reader.keys():
            own = _own_name(name, cfg)
            if own not in params:
                raise CheckpointError(f"{path}: unexpected tensor {name!r} for {cfg.model_type}")
            param = params[own]
            array = to_float32(reader.read(name), reader.tensors[name].dtype)
            if tuple(array.shape) != tuple(param.shape):
                raise CheckpointError(f"{path}: {name!r} has shape {list(array.shape)}, model expects {list(param.shape)}")
            param.set_value(paddle.to_tensor(array, dtype=param.dtype))
            loaded.add(own)
    missing = sorted(set(params) - loaded)
    if missing:
        raise CheckpointError(f"{folder}: weights missing for {missing[:8]}")
