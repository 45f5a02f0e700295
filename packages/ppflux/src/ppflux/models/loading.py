"""from_pretrained / save_pretrained for ppflux models, streaming tensor by tensor.

A model folder holds ``config.json`` and one of:

* ``diffusion_pytorch_model.safetensors`` (or a sharded ``...safetensors.index.json``):
  the diffusers layout with torch tensors; converted while loading (``nn.Linear`` weights are
  transposed, bf16/fp16 upcast to the model dtype);
* ``diffusion_paddle_model.safetensors`` (or sharded): a folder saved by ppflux, Paddle layout.

Tensors are read one at a time (not memory-mapped) and copied into the parameters one at a time, so loading
needs the model's memory plus one tensor, not twice the checkpoint.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .._atomic import atomic_dir
from .._compat import require_paddle
from .._errors import UserError
from ..safetensors_io import SafeOpen, write_streaming

paddle = require_paddle()
import paddle.nn as nn  # noqa: E402

logger = logging.getLogger("ppflux")

TORCH_WEIGHTS = "diffusion_pytorch_model.safetensors"
PADDLE_WEIGHTS = "diffusion_paddle_model.safetensors"


class LayoutError(UserError, ValueError):
    """A folder that does not look like a model folder of the expected layout."""


def linear_weight_keys(layer: nn.Layer) -> set[str]:
    """State-dict keys of every ``nn.Linear`` weight (stored [in, out] in Paddle)."""
    keys = set()
    for name, sub in layer.named_sublayers(include_self=True):
        if isinstance(sub, nn.Linear):
            keys.add(f"{name}.weight" if name else "weight")
    return keys


def _weight_files(folder: Path, single: str) -> list[Path] | None:
    if (folder / single).is_file():
        return [folder / single]
    index = folder / (single + ".index.json")
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError) as exc:
            raise LayoutError(f"{index}: not a valid safetensors index ({exc})") from exc
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise LayoutError(f"{index}: shard(s) missing: {', '.join(missing)}")
        return [folder / f for f in files]
    return None


def find_weights(folder: Path) -> tuple[str, list[Path]]:
    """('paddle' | 'torch', files) for a model folder, or a LayoutError saying what is there."""
    files = _weight_files(folder, PADDLE_WEIGHTS)
    if files:
        return "paddle", files
    files = _weight_files(folder, TORCH_WEIGHTS)
    if files:
        return "torch", files
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    hint = ""
    if any(n.endswith(".bin") or n.endswith(".pt") for n in present):
        hint = " (pickled torch weights are not read: save them as safetensors)"
    raise LayoutError(
        f"{folder}: no {PADDLE_WEIGHTS} or {TORCH_WEIGHTS} (or sharded .index.json) found; "
        f"folder holds {present or 'nothing'}{hint}"
    )


def load_state_streaming(
    model: nn.Layer, files: list[Path], layout: str, *, key_map=None, strict: bool = True
) -> dict[str, list[str]]:
    """Copy tensors from safetensors ``files`` into ``model`` one at a time."""
    params = dict(model.state_dict())
    transpose = linear_weight_keys(model) if layout == "torch" else set()
    seen, unexpected = set(), []
    for path in files:
        with SafeOpen(path) as reader:
            for key in reader.keys():
                name = key_map(key) if key_map else key
                if name is None:
                    continue
                target = params.get(name)
                if target is None:
                    unexpected.append(key)
                    continue
                arr = reader.get(key, dtype=np.float32)
                if name in transpose:
                    arr = arr.T
                if list(arr.shape) != list(target.shape):
                    raise LayoutError(
                        f"{path}: tensor {key!r} has shape {list(arr.shape)}, the "
                        f"model expects {list(target.shape)} (wrong config.json?)"
                    )
                target.set_value(paddle.to_tensor(np.ascontiguousarray(arr)).astype(target.dtype))
                del arr
                seen.add(name)
    missing = sorted(set(params) - seen)
    if strict and (missing or unexpected):
        raise LayoutError(
            f"{files[0].parent}: weights do not match {type(model).__name__}: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    return {"missing": missing, "unexpected": unexpected}


def read_config(folder: Path) -> dict:
    from .._errors import read_json_object

    path = folder / "config.json"
    if not path.is_file():
        raise LayoutError(
            f"{folder}: no config.json (is this a model folder? for a pipeline "
            "folder pass subfolder=..., e.g. 'transformer')"
        )
    try:
        return read_json_object(path, "config.json")
    except UserError as exc:
        raise LayoutError(exc.problem, exc.path) from None


class FluxLoadingMixin:
    """Folder loading/saving for models declared with ``register_to_config``."""

    @classmethod
    def from_config_dict(cls, config: dict):
        import inspect

        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        kwargs = {k: v for k, v in config.items() if k in accepted}
        ignored = sorted(k for k in config if k not in accepted and not k.startswith("_"))
        if ignored:
            logger.info("%s: ignoring config keys %s", cls.__name__, ignored)
        return cls(**kwargs)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path,
        subfolder: str | None = None,
        paddle_dtype=None,
        **kwargs,
    ):
        folder = Path(pretrained_model_name_or_path)
        if subfolder:
            folder = folder / subfolder
        if not folder.is_dir():
            raise LayoutError(
                f"{folder}: not a folder (ppflux reads local folders only; "
                "model hubs are not contacted)"
            )
        config = read_config(folder)
        layout, files = find_weights(folder)
        model = cls.from_config_dict({**config, **kwargs})
        if paddle_dtype is not None:
            model.to(dtype=paddle_dtype)
        load_state_streaming(model, files, layout)
        model.eval()
        return model

    def save_pretrained(self, save_directory, layout: str = "paddle", overwrite: bool = False):
        """Save config.json + weights; ``layout='torch'`` writes diffusers' torch layout.

        The folder appears only when complete; an existing non-empty folder is refused unless
        ``overwrite`` (then replaced once the new one is complete)."""
        if layout not in ("paddle", "torch"):
            raise ValueError("layout must be 'paddle' or 'torch'")
        target = Path(save_directory)
        with atomic_dir(target, overwrite=overwrite) as tmp:
            self.save_config(str(tmp))
            state = self.state_dict()
            transpose = linear_weight_keys(self) if layout == "torch" else set()

            def producer(key):
                def make():
                    arr = (
                        state[key].astype("float32").numpy()
                        if state[key].dtype in (paddle.bfloat16, paddle.float16)
                        else state[key].numpy()
                    )
                    return arr.T if key in transpose else arr

                return make

            specs = []
            for key, tensor in state.items():
                shape = list(tensor.shape)
                if key in transpose:
                    shape = shape[::-1]
                dtype = {
                    paddle.float32: "F32",
                    paddle.float16: "F16",
                    paddle.bfloat16: "F32",
                    paddle.float64: "F64",
                }.get(tensor.dtype, "F32")
                specs.append((key, dtype, shape, producer(key)))
            name = TORCH_WEIGHTS if layout == "torch" else PADDLE_WEIGHTS
            write_streaming(tmp / name, specs, {"format": "pt" if layout == "torch" else "paddle"})
