"""Conversion entry points: X2Paddle's converters with the fixes applied and atomic output.

Every function writes into a temporary sibling folder and renames it to ``save_dir`` only
when X2Paddle produced the whole model (``x2paddle_code.py``, ``model.pdparams`` and
``inference_model/model.json`` + ``model.pdiparams``), so a failed run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConversionError, InvalidModelError, UnsupportedOpsError

REQUIRED_FILES = (
    "x2paddle_code.py",
    "model.pdparams",
    "inference_model/model.json",
)  # inference_model/model.pdiparams too, when the model has parameters


@contextlib.contextmanager
def atomic_output(save_dir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``save_dir`` only if the block succeeds."""
    final = Path(save_dir).resolve()
    if final.exists() and any(final.iterdir()) and not overwrite:
        raise FileExistsError(f"{final} exists and is not empty (pass overwrite=True / --overwrite)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        missing = [f for f in REQUIRED_FILES if not (tmp / f).exists()]
        if missing:
            raise ConversionError(f"X2Paddle did not write {', '.join(missing)} for {final}")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_file(path: str | os.PathLike | None, what: str) -> Path:
    if path is None:
        raise InvalidModelError(f"no {what} given")
    p = Path(path)
    if not p.is_file():
        raise InvalidModelError(f"{what} {p} does not exist or is not a file")
    if p.stat().st_size == 0:
        raise InvalidModelError(f"{what} {p} is empty")
    return p


def _run(fn, *args, source: str, **kwargs) -> None:
    # the fixes were applied when x2paddle_compat was imported (tests may remove some)
    try:
        fn(*args, disable_feedback=True, **kwargs)
    except (ConversionError, FileExistsError):
        raise
    except Exception as exc:  # X2Paddle raises bare Exceptions/AssertionErrors
        raise ConversionError(f"converting {source} failed: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """The exception and the ones X2Paddle's mappers hid behind it (bare except)."""
    parts = []
    while exc is not None and len(parts) < 4:
        text = str(exc).strip().splitlines()
        parts.append(f"{type(exc).__name__}: {text[-1] if text else ''}")
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def convert_onnx(model_path, save_dir, *, input_shape_dict: dict | None = None,
                 enable_onnx_checker: bool = True, overwrite: bool = False) -> Path:
    """Convert an ONNX file; returns the output folder."""
    path = _check_file(model_path, "ONNX model")
    _validate_onnx(path)
    from x2paddle import convert as x2c

    with atomic_output(save_dir, overwrite) as tmp:
        _run(x2c.onnx2paddle, str(path), str(tmp), input_shape_dict=input_shape_dict,
             enable_onnx_checker=enable_onnx_checker, source=str(path))
    return Path(save_dir)


def _validate_onnx(path: Path) -> None:
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise InvalidModelError(f"{path} is not a readable ONNX model "
                                f"(truncated or corrupt?): {exc}") from exc
    if not model.graph.node:
        raise InvalidModelError(f"{path} has an empty graph (not an ONNX model?)")


def convert_caffe(prototxt, weight, save_dir, *, caffe_proto: str | None = None,
                  overwrite: bool = False) -> Path:
    """Convert a Caffe ``.prototxt`` + ``.caffemodel``; returns the output folder."""
    proto = _check_file(prototxt, "Caffe prototxt")
    weights = _check_file(weight, "Caffe weights")
    _validate_caffe(proto, weights)
    from x2paddle import convert as x2c

    with atomic_output(save_dir, overwrite) as tmp:
        _run(x2c.caffe2paddle, str(proto), str(weights), str(tmp), caffe_proto,
             source=f"{proto} + {weights}")
    return Path(save_dir)


def _validate_caffe(proto: Path, weights: Path) -> None:
    from google.protobuf import text_format
    from x2paddle.decoder import caffe_pb2

    net = caffe_pb2.NetParameter()
    try:
        text_format.Merge(proto.read_text(encoding="utf-8"), net)
    except Exception as exc:
        raise InvalidModelError(f"{proto} is not a valid Caffe prototxt: {exc}") from exc
    blob = caffe_pb2.NetParameter()
    try:
        blob.ParseFromString(weights.read_bytes())
    except Exception as exc:
        raise InvalidModelError(f"{weights} is not a valid .caffemodel "
                                f"(truncated or corrupt?): {exc}") from exc
    if not (blob.layer or blob.layers):
        raise InvalidModelError(f"{weights} contains no layers (not a .caffemodel?)")


def convert_tensorflow(model_path, save_dir, *, define_input_shape: bool = False,
                       overwrite: bool = False) -> Path:
    """Convert a TensorFlow frozen graph (``.pb``); returns the output folder."""
    path = _check_file(model_path, "TensorFlow frozen graph")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ImportError("TensorFlow conversion needs `pip install x2paddle-compat[tensorflow]` "
                          "(tensorflow-cpu<2.17, numpy<2, protobuf<5)") from exc
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as exc:
        raise InvalidModelError(f"{path} is not a TensorFlow frozen GraphDef "
                                f"(truncated or corrupt?): {exc}") from exc
    if not graph_def.node:
        raise InvalidModelError(f"{path} has no nodes (not a frozen graph?)")
    from x2paddle import convert as x2c

    with atomic_output(save_dir, overwrite) as tmp:
        _run(x2c.tf2paddle, str(path), str(tmp), define_input_shape=define_input_shape,
             source=str(path))
    return Path(save_dir)


def convert_torch(module, input_examples: Any, save_dir, *, jit_type: str = "trace",
                  enable_code_optim: bool = False, overwrite: bool = False) -> Path:
    """Convert a ``torch.nn.Module`` (trace or script) with example inputs."""
    from x2paddle import convert as x2c

    if not isinstance(input_examples, (list, tuple, dict)):
        input_examples = [input_examples]
    module.eval()
    with atomic_output(save_dir, overwrite) as tmp:
        _run(x2c.pytorch2paddle, module, str(tmp), jit_type=jit_type,
             input_examples=input_examples, enable_code_optim=enable_code_optim,
             source=type(module).__name__)
    return Path(save_dir)


__all__ = ["convert_caffe", "convert_onnx", "convert_tensorflow", "convert_torch",
           "atomic_output", "UnsupportedOpsError"]
