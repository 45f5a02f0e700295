"""Convert-and-verify helpers shared by the tests and the zoo."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import x2paddle_compat as xc
from x2paddle_compat import sources
from x2paddle_compat.verify import verify

ATOL = 1e-5  # absolute tolerance; RTOL relative to the output's largest magnitude
RTOL = 1e-5


def check_onnx(model_or_path, tmp_path: Path, *, predictors: bool = True, name: str = "m"):
    import onnx

    tmp_path = Path(tmp_path)
    if isinstance(model_or_path, (str, Path)):
        path = Path(model_or_path)
    else:
        path = tmp_path / f"{name}.onnx"
        onnx.save(model_or_path, path)
    out = tmp_path / f"{name}_paddle"
    xc.convert_onnx(path, out)
    inputs = sources.onnx_inputs(path)
    refs = sources.run_onnx(path, inputs)
    return verify(out, inputs, refs, atol=ATOL, rtol=RTOL, predictors=predictors)


def torch_reference(module, inputs):
    import torch

    with torch.no_grad():
        out = module(*inputs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [o.detach().numpy() for o in outs]


def check_torch(module, inputs, tmp_path: Path, *, predictors: bool = True, name: str = "m"):
    out = Path(tmp_path) / f"{name}_paddle"
    refs = torch_reference(module, inputs)
    xc.convert_torch(module, inputs, out)
    feed = {f"x{i}": np.asarray(t.numpy()) for i, t in enumerate(inputs)}
    return verify(out, feed, refs, atol=ATOL, rtol=RTOL, predictors=predictors)


def export_onnx(module, inputs, path: Path, opset: int | None, dynamic_batch: bool = False):
    import torch

    names = [f"x{i}" for i in range(len(inputs))]
    kwargs = {"dynamo": False, "input_names": names}
    if dynamic_batch:
        kwargs["dynamic_axes"] = {n: {0: "batch"} for n in names}
    if opset is not None:
        kwargs["opset_version"] = opset
    torch.onnx.export(module, tuple(inputs), str(path), **kwargs)
    return path
