"""Run a converted model three ways and compare with the source model's outputs.

* dygraph: the generated ``x2paddle_code.py`` class with ``model.pdparams``;
* jit: ``paddle.jit.load(inference_model/model)``;
* predictor: Paddle Inference on CPU, with oneDNN (in a worker process, because oneDNN passes
  of Paddle 3.3.1 can segfault, R14) and without oneDNN.

The predictor set-up (config, oneDNN on/off, running, the worker process) is ``_predictor``,
a deliberate copy of speech-pir-export's; what is x2paddle-compat's own stays here: the
converted folder's layout, inputs fed by name or else by position, the shape message naming
the folder, the comparison with the source runtime's spread, and ``deploy.json``.

The predictor configuration that matches the source model is written to ``deploy.json``;
:func:`create_predictor` reads it back. A predictor that gives a wrong result is never
chosen, and if no configuration is right, :class:`VerificationError` says so.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import _predictor
from ._atomic import write_text
from ._paddle import require_paddle
from .errors import VerificationError

DEPLOY_FILE = "deploy.json"


@dataclass
class Diff:
    max_abs: float
    max_rel: float
    ok: bool
    error: str = ""


@dataclass
class VerifyReport:
    folder: str
    atol: float
    rtol: float
    results: dict[str, Diff] = field(default_factory=dict)
    predictor_config: dict = field(default_factory=dict)
    predictors: bool = True
    spreads: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        needed = [k for k in ("dygraph", "jit") if k in self.results]
        return all(self.results[k].ok for k in needed) and (
            bool(self.predictor_config) or not self.predictors
        )

    def table(self) -> str:
        lines = [f"{'runtime':<22}{'max abs diff':>14}{'max rel diff':>14}  verdict"]
        for name, d in self.results.items():
            error = " ".join(d.error.split())  # one line per runtime
            verdict = "ok" if d.ok else ("ERROR " + error[:100] if error else "WRONG")
            lines.append(f"{name:<22}{d.max_abs:>14.3e}{d.max_rel:>14.3e}  {verdict}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "folder": self.folder,
            "atol": self.atol,
            "rtol": self.rtol,
            "source_spread": self.spreads,
            "results": {k: _json_diff(v) for k, v in self.results.items()},
            "predictor_config": self.predictor_config,
            "ok": self.ok,
        }


# How many times the source runtime's own run-to-run spread a conversion may differ by
SPREAD_FACTOR = 4.0


def compare(outputs, references, atol: float, rtol: float, spreads=None) -> Diff:
    """Largest absolute and relative difference over all outputs.

    Passes when ``max|a - b| <= atol + rtol * max|b| + SPREAD_FACTOR * spread`` for every
    output: relative to the output's scale, so large-valued outputs are judged relatively,
    and to ``spread``, how much the source runtime differs from itself on the same input
    (two of its own configurations), so a real-size model is not held to a precision its
    own runtime does not have.
    """
    outputs, references = list(outputs), list(references)
    if len(outputs) != len(references):
        return Diff(
            float("inf"),
            float("inf"),
            False,
            f"{len(outputs)} outputs instead of {len(references)}",
        )
    worst_abs, worst_rel, ok = 0.0, 0.0, True
    spreads = list(spreads) if spreads is not None else [0.0] * len(references)
    for out, ref, spread in zip(outputs, references, spreads):
        out = np.asarray(out)
        ref = np.asarray(ref)
        if out.shape != ref.shape:
            if out.size == ref.size:
                out = out.reshape(ref.shape)
            else:
                return Diff(
                    float("inf"), float("inf"), False, f"shape {out.shape} instead of {ref.shape}"
                )
        if ref.dtype == bool or out.dtype == bool:
            out, ref = out.astype(np.int64), ref.astype(np.int64)
        diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
        if not np.all(np.isfinite(diff)):
            return Diff(float("inf"), float("inf"), False, "non-finite output")
        a = float(diff.max()) if diff.size else 0.0
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        r = a / scale if scale > 0 else a
        worst_abs, worst_rel = max(worst_abs, a), max(worst_rel, r)
        ok = ok and a <= atol + rtol * scale + SPREAD_FACTOR * float(spread)
    return Diff(worst_abs, worst_rel, ok)


def spread(first, second) -> list[float]:
    """Per output, the largest difference between two runs of the source runtime."""
    out = []
    for a, b in zip(first, second):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.size == 0 or a.dtype == bool:
            out.append(0.0)
            continue
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        out.append(float(d.max()) if np.all(np.isfinite(d)) else 0.0)
    return out


def _as_list(outputs):
    if isinstance(outputs, (list, tuple)):
        flat = []
        for o in outputs:
            flat.extend(_as_list(o))
        return flat
    return [outputs]


def load_dygraph(folder):
    """Instantiate the generated Layer with its weights (eval mode)."""
    paddle = require_paddle()
    folder = Path(folder)
    name = f"x2paddle_code_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, folder / "x2paddle_code.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    classes = [
        c
        for c in vars(module).values()
        if inspect.isclass(c)
        and issubclass(c, paddle.nn.Layer)
        and c.__module__ == name
        and "forward" in vars(c)
    ]
    # the top-level class: the one X2Paddle's main() builds, else the one no other uses
    source = (folder / "x2paddle_code.py").read_text(encoding="utf-8")
    built = set(re.findall(r"^    model = (\w+)\(\)$", source, re.M))
    top = [c for c in classes if c.__name__ in built]
    top = top or [c for c in classes if source.count(c.__name__ + "(") <= 1] or classes
    cls = top[-1]
    with paddle.utils.unique_name.guard():
        model = cls()
    state = paddle.load(str(folder / "model.pdparams"))
    # X2Paddle saves TensorFlow models by parameter name, the others by structure (and
    # leaves some constant parameters out): load the way that matches more saved tensors
    by_structure = len(set(model.state_dict()) & set(state))
    by_name = len({p.name for p in model.parameters()} & set(state))
    structured = by_structure >= by_name
    model.set_dict(state, use_structured_name=structured)
    model.eval()
    return model


def input_names(folder) -> list[str]:
    meta = _inference_meta(folder)
    return meta["inputs"]


def _inference_meta(folder) -> dict:
    require_paddle()
    predictor = _predictor.create_predictor(_graph(folder), _predictor.Settings())
    return {
        "inputs": list(predictor.get_input_names()),
        "outputs": list(predictor.get_output_names()),
    }


def run_dygraph(folder, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    paddle = require_paddle()
    model = load_dygraph(folder)
    params = list(inspect.signature(model.forward).parameters)
    with paddle.no_grad():
        if set(params) >= set(inputs):
            out = model(**{k: paddle.to_tensor(v) for k, v in inputs.items()})
        else:
            out = model(*[paddle.to_tensor(v) for v in inputs.values()])
    return [np.asarray(o.numpy()) for o in _as_list(out)]


def run_jit(folder, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    paddle = require_paddle()
    layer = paddle.jit.load(str(Path(folder) / "inference_model" / "model"))
    layer.eval()
    with paddle.no_grad():
        out = layer(*[paddle.to_tensor(v) for v in inputs.values()])
    return [np.asarray(o.numpy()) for o in _as_list(out)]


def _graph(folder) -> tuple[str, str]:
    """(model, params) of a converted folder; params is absent when the model has none."""
    inf = Path(folder) / "inference_model"
    return str(inf / "model.json"), str(inf / "model.pdiparams")


def make_config(folder, *, use_onednn: bool, threads: int = 1):
    """A Paddle Inference CPU config for ``folder``."""
    require_paddle()
    return _predictor.make_config(
        _graph(folder), _predictor.Settings(onednn=use_onednn, threads=threads)
    )


def _feeds(names, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Inputs in the graph's order: by name where the name matches, else by position."""
    values = list(inputs.values())
    return [inputs[name] if name in inputs else values[i] for i, name in enumerate(names)]


def run_predictor(
    folder, inputs: dict[str, np.ndarray], *, use_onednn: bool, threads: int = 1
) -> list[np.ndarray]:
    require_paddle()
    predictor = _predictor.create_predictor(
        _graph(folder), _predictor.Settings(onednn=use_onednn, threads=threads)
    )
    feeds = _feeds(list(predictor.get_input_names()), inputs)
    try:
        return _predictor.run_predictor(predictor, feeds, check_shapes=True)
    except ValueError as exc:  # a feed the graph cannot take: say which model
        raise ValueError(f"{folder}: {exc}") from None


def run_predictor_isolated(
    folder, inputs: dict[str, np.ndarray], *, use_onednn: bool, timeout: float | None = None
) -> list[np.ndarray]:
    """Run the predictor in a worker process: a crash, an error or a hang of more than
    ``timeout`` seconds (default ``$X2PADDLE_COMPAT_PREDICTOR_TIMEOUT`` or 600) becomes a
    ``PredictorError`` (a RuntimeError) with the reason."""
    if timeout is None:
        timeout = float(os.environ.get("X2PADDLE_COMPAT_PREDICTOR_TIMEOUT", "600"))
    feeds = _feeds(input_names(folder), inputs)
    with _predictor.Worker(timeout) as worker:
        return worker.run(_graph(folder), _predictor.Settings(onednn=use_onednn), feeds)


def verify(
    folder,
    inputs: dict[str, np.ndarray],
    references,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    check_dygraph: bool = True,
    write_deploy: bool = True,
    isolate_onednn: bool = True,
    predictors: bool = True,
    spreads=None,
) -> VerifyReport:
    """Compare every runtime of the converted model with ``references``; write deploy.json.

    ``spreads``: per output, how much the source runtime differs from itself (see
    :func:`compare`)."""
    folder = Path(folder)
    references = [np.asarray(r) for r in references]
    report = VerifyReport(str(folder), atol, rtol, predictors=predictors)
    report.spreads = [float(x) for x in spreads] if spreads is not None else []
    runners = {}
    if check_dygraph:
        runners["dygraph"] = lambda: run_dygraph(folder, inputs)
    runners["jit"] = lambda: run_jit(folder, inputs)
    if not predictors:
        pass
    elif isolate_onednn:
        runners["predictor+onednn"] = lambda: run_predictor_isolated(
            folder, inputs, use_onednn=True
        )
    else:
        runners["predictor+onednn"] = lambda: run_predictor(folder, inputs, use_onednn=True)
    if predictors:
        runners["predictor"] = lambda: run_predictor(folder, inputs, use_onednn=False)
    for name, fn in runners.items():
        try:
            report.results[name] = compare(fn(), references, atol, rtol, spreads)
        except Exception as exc:  # a runtime failing is a verdict, not a crash of verify
            report.results[name] = Diff(
                float("inf"), float("inf"), False, f"{type(exc).__name__}: {exc}"
            )
    chosen = None
    for name, onednn in (("predictor+onednn", True), ("predictor", False)):
        if predictors and report.results[name].ok:
            chosen = onednn
            break
    if chosen is not None:
        fallback = report.results["predictor+onednn"]
        report.predictor_config = {
            "device": "cpu",
            "use_onednn": chosen,
            "model": "inference_model/model.json",
            "params": "inference_model/model.pdiparams",
            "reason": (
                "oneDNN predictor matches the source model"
                if chosen
                else "oneDNN predictor disabled: "
                + (fallback.error or f"wrong result, max abs diff {fallback.max_abs:.3e}")
                + " (Paddle 3.3.1 CPU oneDNN defects R11-R14)"
            ),
            "verified_max_abs_diff": report.results[
                "predictor+onednn" if chosen else "predictor"
            ].max_abs,
            "atol": atol,
            "rtol": rtol,
            "source_spread": report.spreads,
        }
    if write_deploy and predictors:
        deploy = {
            "verified": report.ok,
            **report.predictor_config,
            "results": {k: _json_diff(v) for k, v in report.results.items()},
        }
        # strict JSON: a runtime that failed has no difference (null), never Infinity
        write_text(
            folder / DEPLOY_FILE,
            json.dumps(deploy, indent=2, allow_nan=False) + "\n",
            overwrite=True,
        )
    return report


def _json_diff(diff: Diff) -> dict:
    out = asdict(diff)
    for key in ("max_abs", "max_rel"):
        if not np.isfinite(out[key]):
            out[key] = None
    return out


def create_predictor(folder, *, threads: int = 1):
    """A Paddle Inference predictor configured as verification found correct (deploy.json).

    Raises :class:`VerificationError` when the folder was never verified or no
    predictor configuration matched the source model.
    """
    require_paddle()
    path = Path(folder) / DEPLOY_FILE
    if not path.exists():
        raise VerificationError(
            f"{path} is missing: run `x2paddle3 ... --verify` first, "
            "the oneDNN predictor of Paddle 3.3.1 can be silently wrong"
        )
    from ._errors import UserError, read_json_object

    try:
        deploy = read_json_object(path, what="deploy.json")
    except UserError as exc:
        raise VerificationError(
            f"{exc.problem}; verify again (`x2paddle3 ... --verify`)", path
        ) from exc
    if "use_onednn" not in deploy:
        raise VerificationError(f"{path}: no predictor configuration matched the source model")
    settings = _predictor.Settings(onednn=bool(deploy["use_onednn"]), threads=threads)
    return _predictor.create_predictor(_graph(folder), settings)
