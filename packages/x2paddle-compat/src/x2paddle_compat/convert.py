"""Conversion entry points: X2Paddle's converters with the fixes applied and atomic output.

Every function writes into a temporary sibling folder and renames it to ``save_dir`` only
when X2Paddle produced the whole model (``x2paddle_code.py``, ``model.pdparams`` and
``inference_model/model.json`` + ``model.pdiparams``), so a failed run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._atomic import atomic_dir, prepare_output
from .errors import ConversionError, ConversionWarning, InvalidModelError, UnsupportedOpsError

REQUIRED_FILES = (
    "x2paddle_code.py",
    "model.pdparams",
    "inference_model/model.json",
)  # inference_model/model.pdiparams too, when the model has parameters

# X2Paddle and Paddle print progress and logs on stdout/stderr; the conversion functions
# keep them out of the user's terminal unless this is true (``x2paddle3 --verbose``)
VERBOSE = {"on": False}


@contextlib.contextmanager
def atomic_output(save_dir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden temporary folder that becomes ``save_dir`` only if the block succeeds
    and X2Paddle wrote the whole model. An existing non-empty ``save_dir`` is refused unless
    ``overwrite`` and then replaced only once the new output is complete; temporaries of
    killed runs are removed (said on stderr)."""
    with atomic_dir(save_dir, overwrite=overwrite) as tmp:
        yield tmp
        missing = [f for f in REQUIRED_FILES if not (tmp / f).exists()]
        if missing:
            raise ConversionError(
                f"X2Paddle did not write {', '.join(missing)} for {Path(save_dir)}"
            )


@contextlib.contextmanager
def _quiet_native() -> Iterator[list[str]]:
    """Send what X2Paddle and Paddle print (Python and C++) to a log instead of the terminal.

    Yields a list that receives the log's last lines, so an error can quote them."""
    tail: list[str] = []
    if VERBOSE["on"]:
        yield tail
        return
    python_log = io.StringIO()
    try:
        fds = [sys.stdout.fileno(), sys.stderr.fileno()]
    except (AttributeError, OSError, ValueError):  # captured streams: Python level only
        fds = []
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as log:
        saved = [os.dup(fd) for fd in fds]
        try:
            for fd in fds:
                os.dup2(log.fileno(), fd)
            with contextlib.redirect_stdout(python_log), contextlib.redirect_stderr(python_log):
                yield tail
        finally:
            for fd, old in zip(fds, saved):
                os.dup2(old, fd)
                os.close(old)
            log.seek(0)
            text = log.read().decode("utf-8", "replace") + python_log.getvalue()
            tail.extend(text.splitlines()[-20:])


def _loaded() -> None:
    from . import load

    load()


def _check_file(path: str | os.PathLike | None, what: str) -> Path:
    if path is None:
        raise InvalidModelError(f"no {what} given")
    p = Path(path)
    if not p.exists():
        raise InvalidModelError(f"{what} does not exist", p)
    if not p.is_file():
        raise InvalidModelError(f"{what} is not a regular file", p)
    if p.stat().st_size == 0:
        raise InvalidModelError(f"{what} is empty", p)
    if not os.access(p, os.R_OK):
        raise InvalidModelError(f"{what} is not readable (permission denied)", p)
    return p


def _run(fn, *args, source: str, **kwargs) -> None:
    _loaded()  # Paddle imported and the fixes applied (tests may have removed some)
    # The fixes' ConversionWarnings would go to the log with X2Paddle's output: keep them
    # and issue them again once the terminal is back, or name them in the error they preceded.
    failed = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConversionWarning)
            try:
                with _quiet_native():
                    fn(*args, disable_feedback=True, **kwargs)
            except ConversionError:
                raise
            except Exception as exc:  # X2Paddle raises bare Exceptions/AssertionErrors
                failed = exc
    finally:
        ours = [r for r in caught if issubclass(r.category, ConversionWarning)]
        if failed is None:
            for record in ours:
                warnings.warn_explicit(
                    record.message, record.category, record.filename, record.lineno
                )
    if failed is not None:
        note = f" ({'; '.join(str(r.message) for r in ours)})" if ours else ""
        raise ConversionError(f"converting {source} failed: {_describe(failed)}{note}") from failed


def _describe(exc: BaseException) -> str:
    """The exception and the ones X2Paddle's mappers hid behind it (bare except)."""
    parts = []
    while exc is not None and len(parts) < 4:
        text = str(exc).strip().splitlines()
        parts.append(f"{type(exc).__name__}: {text[-1] if text else ''}")
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def convert_onnx(
    model_path,
    save_dir,
    *,
    input_shape_dict: dict | None = None,
    input_values: dict | None = None,
    enable_onnx_checker: bool = True,
    overwrite: bool = False,
) -> Path:
    """Convert an ONNX file; returns the output folder.

    ``input_shape_dict`` fixes input shapes (``{name: [dims]}``, -1 = any). ``input_values``
    freezes inputs to constants (``{"sr": 16000}``): they become weights of the converted
    model, which then has no such input, and branches that test them (an ONNX ``If`` on a
    sample rate) are resolved when the other input shapes are known too.
    """
    path = _check_file(model_path, "ONNX model")
    prepare_output(save_dir, overwrite=overwrite)
    _validate_onnx(path)
    shapes = check_shape_dict(input_shape_dict, path)
    _loaded()
    from x2paddle import convert as x2c

    with contextlib.ExitStack() as stack:
        source = path
        if input_values:
            tmp_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            source = tmp_dir / path.name
            freeze_inputs(path, input_values, source)
        with atomic_output(save_dir, overwrite) as tmp:
            _run(
                x2c.onnx2paddle,
                str(source),
                str(tmp),
                input_shape_dict=shapes,
                enable_onnx_checker=enable_onnx_checker,
                source=str(path),
            )
    return Path(save_dir)


def freeze_inputs(model_path, values: dict, out_path) -> None:
    """Write ``model_path`` with the inputs named in ``values`` replaced by constants."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    inputs = {i.name: i for i in model.graph.input}
    unknown = sorted(set(values) - set(inputs))
    if unknown:
        raise InvalidModelError(
            f"input values name {', '.join(unknown)}, not inputs of the model "
            f"(its inputs: {', '.join(inputs)})",
            model_path,
        )
    for name, value in values.items():
        dtype = helper.tensor_dtype_to_np_dtype(inputs[name].type.tensor_type.elem_type)
        try:
            array = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise InvalidModelError(
                f"input value {name}={value!r} is not a {dtype} value", model_path
            ) from exc
        model.graph.input.remove(inputs[name])
        model.graph.initializer.append(numpy_helper.from_array(array, name))
    onnx.save(model, str(out_path))


def check_shape_dict(value, model_path=None) -> dict | None:
    """``input_shape_dict`` as ``{name: [int, ...]}`` (from a dict or its text), or a clear
    :class:`InvalidModelError`; names must be inputs of the model when it is given."""
    from .fixes.onnx_real import parse_shape_dict

    if value is None:
        return None
    try:
        shapes = parse_shape_dict(value)
    except (ValueError, SyntaxError) as exc:
        raise InvalidModelError(
            f"input shapes {value!r} are not a dict like \"{{'x': [1, 3, 224, 224]}}\""
        ) from exc
    for name, shape in shapes.items():
        if (
            not isinstance(name, str)
            or not isinstance(shape, (list, tuple))
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        ):
            raise InvalidModelError(
                f"input shapes: {name!r}: {shape!r} is not a list of integers (-1 = any)"
            )
    if model_path is not None:
        import onnx

        model = onnx.load(str(model_path), load_external_data=False)
        names = [i.name for i in model.graph.input]
        unknown = sorted(set(shapes) - set(names))
        if unknown:
            raise InvalidModelError(
                f"input shapes name {', '.join(unknown)}, not inputs of "
                f"the model (its inputs: {', '.join(names)})",
                model_path,
            )
    return {k: [int(d) for d in v] for k, v in shapes.items()}


def _validate_onnx(path: Path) -> None:
    try:
        import onnx
    except ImportError as exc:
        raise InvalidModelError(
            "ONNX conversion needs `pip install x2paddle-compat[onnx]` (onnx, onnxruntime)"
        ) from exc
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InvalidModelError(
            f"not a readable ONNX model (truncated or corrupt?): {first}", path
        ) from exc
    if not model.graph.node:
        raise InvalidModelError("has an empty graph (not an ONNX model?)", path)


def convert_caffe(
    prototxt, weight, save_dir, *, caffe_proto: str | None = None, overwrite: bool = False
) -> Path:
    """Convert a Caffe ``.prototxt`` + ``.caffemodel``; returns the output folder."""
    proto = _check_file(prototxt, "Caffe prototxt")
    weights = _check_file(weight, "Caffe weights")
    prepare_output(save_dir, overwrite=overwrite)
    _loaded()
    _validate_caffe(proto, weights)
    from x2paddle import convert as x2c

    with atomic_output(save_dir, overwrite) as tmp:
        _run(
            x2c.caffe2paddle,
            str(proto),
            str(weights),
            str(tmp),
            caffe_proto,
            source=f"{proto} + {weights}",
        )
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
        raise InvalidModelError(
            f"{weights} is not a valid .caffemodel (truncated or corrupt?): {exc}"
        ) from exc
    if not (blob.layer or blob.layers):
        raise InvalidModelError(f"{weights} contains no layers (not a .caffemodel?)")


def convert_tensorflow(
    model_path, save_dir, *, define_input_shape: bool = False, overwrite: bool = False
) -> Path:
    """Convert a TensorFlow frozen graph (``.pb``); returns the output folder."""
    path = _check_file(model_path, "TensorFlow frozen graph")
    prepare_output(save_dir, overwrite=overwrite)
    _loaded()
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise InvalidModelError(
            "TensorFlow conversion needs `pip install "
            "x2paddle-compat[tensorflow]` (tensorflow-cpu<2.17, numpy<2, "
            "protobuf<5) in its own environment"
        ) from exc
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as exc:
        raise InvalidModelError(
            f"{path} is not a TensorFlow frozen GraphDef (truncated or corrupt?): {exc}"
        ) from exc
    if not graph_def.node:
        raise InvalidModelError(f"{path} has no nodes (not a frozen graph?)")
    from x2paddle import convert as x2c

    with atomic_output(save_dir, overwrite) as tmp:
        _run(
            x2c.tf2paddle,
            str(path),
            str(tmp),
            define_input_shape=define_input_shape,
            source=str(path),
        )
    return Path(save_dir)


def convert_torch(
    module,
    input_examples: Any,
    save_dir,
    *,
    jit_type: str = "trace",
    enable_code_optim: bool = False,
    overwrite: bool = False,
    dynamic_axes: dict | None = None,
    input_names: list[str] | None = None,
    opset: int = 17,
) -> Path:
    """Convert a ``torch.nn.Module`` (trace or script) with example inputs.

    X2Paddle's trace bakes the example's shapes in. With ``dynamic_axes`` (``{input name:
    {axis: "name"}}``, names ``x0, x1, ...`` unless ``input_names``) the module is exported
    to ONNX with those axes left dynamic and converted through the ONNX path instead, so the
    converted model runs at any batch / sequence length.
    """
    prepare_output(save_dir, overwrite=overwrite)
    _loaded()
    if not isinstance(input_examples, (list, tuple, dict)):
        input_examples = [input_examples]
    module.eval()
    if dynamic_axes is not None:
        return _convert_torch_via_onnx(
            module, list(input_examples), save_dir, dynamic_axes, input_names, opset, overwrite
        )
    from x2paddle import convert as x2c

    with atomic_output(save_dir, overwrite) as tmp:
        _run(
            x2c.pytorch2paddle,
            module,
            str(tmp),
            jit_type=jit_type,
            input_examples=input_examples,
            enable_code_optim=enable_code_optim,
            source=type(module).__name__,
        )
    return Path(save_dir)


def _convert_torch_via_onnx(
    module, examples, save_dir, dynamic_axes, input_names, opset, overwrite
) -> Path:
    import torch

    names = list(input_names or [f"x{i}" for i in range(len(examples))])
    unknown = sorted(set(dynamic_axes) - set(names))
    if unknown:
        raise ConversionError(
            f"dynamic_axes name {', '.join(unknown)}, not inputs ({', '.join(names)})"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            with torch.no_grad(), _quiet_native():
                torch.onnx.export(
                    module,
                    tuple(examples),
                    str(path),
                    dynamo=False,
                    input_names=names,
                    dynamic_axes=dynamic_axes,
                    opset_version=opset,
                )
        except Exception as exc:
            raise ConversionError(
                f"exporting {type(module).__name__} to ONNX with dynamic "
                f"axes failed: {_describe(exc)}"
            ) from exc
        return convert_onnx(path, save_dir, overwrite=overwrite)


__all__ = [
    "convert_caffe",
    "convert_onnx",
    "convert_tensorflow",
    "convert_torch",
    "atomic_output",
    "UnsupportedOpsError",
]
