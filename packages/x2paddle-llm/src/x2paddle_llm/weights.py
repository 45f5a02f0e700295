"""Load converted weights (either target's names) into :class:`DecoderForCausalLM`."""

from __future__ import annotations

from pathlib import Path

from ._errors import read_json_object
from ._paddle import require_paddle
from ._safetensors import SafetensorsReader
from .config import DecoderConfig
from .errors import CheckpointError
from .families import get_family
from .schema import expected_tensors


def weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json_object(index, what="weight index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index}: no weight_map object")
        files = sorted(set(map(str, weight_map.values())))
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise CheckpointError(f"{index}: missing shard(s) {missing}")
        return [folder / f for f in files]
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    raise CheckpointError(f"{folder}: no model.safetensors or model.safetensors.index.json")


def _name_map(cfg: DecoderConfig) -> dict[str, str]:
    """Stored name -> parameter name: our own names, and PaddleNLP's (prefix instead of ``model``)."""
    specs = expected_tensors(cfg)
    out = {name: name for name in specs}
    prefix = get_family(cfg.model_type).paddlenlp_prefix
    if prefix:
        for spec in specs.values():
            if spec.index is None and spec.hf_name.startswith("model."):
                out.setdefault(prefix + spec.hf_name[len("model") :], spec.name)
            elif spec.index is None:
                out.setdefault(spec.hf_name, spec.name)
    return out


def load_state_into(model, folder: Path, cfg: DecoderConfig) -> None:
    paddle = require_paddle()
    params = dict(model.named_parameters())
    names = _name_map(cfg)
    loaded: set[str] = set()
    for path in weight_files(folder):
        reader = SafetensorsReader(path)
        for name in reader.keys():
            own = names.get(name)
            if own not in params:
                raise CheckpointError(f"{path}: unexpected tensor {name!r} for {cfg.model_type}")
            param = params[own]
            info = reader.tensors[name]
            if tuple(info.shape) != tuple(param.shape):
                raise CheckpointError(
                    f"{path}: {name!r} has shape {list(info.shape)}, model expects {list(param.shape)}"
                )
            param.set_value(paddle.to_tensor(reader.read_float32(name), dtype=param.dtype))
            loaded.add(own)
    missing = sorted(set(params) - loaded)
    if missing:
        raise CheckpointError(f"{folder}: weights missing for {missing[:8]}")
