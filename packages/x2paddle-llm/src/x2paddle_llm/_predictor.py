# Copied from speech-pir-export:src/speech_pir_export/_predictor.py
"""Paddle Inference CPU predictor: set-up, verification, oneDNN repair, choice by speed.

Paddle 3.3.1's CPU predictor with oneDNN can crash, hang or return silently wrong results on
graphs that run correctly without it, and where it is right it is not always faster. Usually
one fusion pass is at fault, and Paddle Inference lets a caller delete passes
(``Config.delete_pass``). This module:

* creates a predictor from a graph (``<prefix>.json`` / ``.pdmodel`` + ``.pdiparams``, or an
  explicit ``(model file, params file)`` pair) with given :class:`Settings` (oneDNN on/off,
  deleted passes, threads, memory optimisation, IR optimisation) and runs it with positional
  or named feeds (:func:`create_predictor`, :func:`run_predictor`, :func:`run_tensors`);
* compares outputs against reference outputs with a tolerance (:func:`compare`);
* checks a configuration in a worker process with a timeout, because some oneDNN defects kill
  the process or hang it (:class:`Worker`), on one or several input cases run in order on one
  predictor (a runtime's shape classes: a streaming model's first chunk with empty caches and
  later chunks with filled ones);
* lists the passes the predictor applies with oneDNN on (:func:`applied_passes`, read from its
  own log) and finds a minimal set whose deletion makes oneDNN match the reference on every
  case (:func:`repair_onednn`, delta debugging over the pass list);
* times the verified candidates (plain, oneDNN, repaired oneDNN) on the same feeds in one
  process and returns the fastest verified one with the timings (:func:`choose_fastest`), so
  oneDNN is used only where it is both right and faster.

No import of the rest of the package: this file is the canonical copy; other packages copy it
verbatim with a ``# Copied from speech-pir-export:src/speech_pir_export/_predictor.py`` line.
Its worker runs this file as a script, so a copy never imports its host package in the child.

A graph may call custom operators (built with ``paddle.utils.cpp_extension``): the host
registers their libraries in its own process and names them in ``PADDLE_PREDICTOR_OP_LIBRARIES``
(:func:`register_op_libraries`), which the worker processes inherit and register at start-up.

A *case* is ``(feeds, reference)``: ``feeds`` a list of arrays (in the graph's input order) or
a dict ``{input name: array}``; ``reference`` the list of expected outputs (or ``None`` where
only a run, not a comparison, is wanted).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

_PASS_LINE = re.compile(r"Running PIR pass \[([A-Za-z0-9_]+)\]")


class PredictorError(RuntimeError):
    """A predictor that could not be created or run (in the worker: also a crash or hang)."""


@dataclass
class Settings:
    """How to configure the CPU predictor. ``deleted_passes`` apply with oneDNN on only.
    ``memory_optim``: Paddle 3.3.1 refuses it for PIR (``.json``) graphs at creation
    ("Not find ... pass_name memory_optimize_pass"); for ``.pdmodel`` graphs."""

    onednn: bool = False
    deleted_passes: list[str] = field(default_factory=list)
    threads: int = 1
    memory_optim: bool = False
    ir_optim: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Settings:
        data = data or {}
        return cls(
            bool(data.get("onednn", False)),
            list(data.get("deleted_passes") or []),
            int(data.get("threads", 1)),
            bool(data.get("memory_optim", False)),
            bool(data.get("ir_optim", True)),
        )

    @property
    def label(self) -> str:
        """``plain``, ``onednn`` or ``onednn-N`` (N passes deleted)."""
        if not self.onednn:
            return "plain"
        return f"onednn-{len(self.deleted_passes)}" if self.deleted_passes else "onednn"


def graph_files(graph) -> tuple[str, str]:
    """(model file, params file) of a graph: a prefix (``<prefix>.json`` (PIR) or
    ``<prefix>.pdmodel``, ``<prefix>.pdiparams``) or an explicit pair. The params file is
    ``""`` when absent (a graph without parameters)."""
    if isinstance(graph, (tuple, list)):
        model, params = (str(p) if p else "" for p in graph)
    else:
        prefix = str(graph)
        model = prefix + ".json"
        if not os.path.exists(model) and os.path.exists(prefix + ".pdmodel"):
            model = prefix + ".pdmodel"
        params = prefix + ".pdiparams"
    if params and not os.path.exists(params):
        params = ""
    return model, params


def make_config(graph, settings: Settings | None = None, *, verbose: bool = False):
    """A ``paddle.inference.Config`` for ``graph`` with ``settings`` (CPU only)."""
    from paddle import inference

    settings = settings or Settings()
    model, params = graph_files(graph)
    if not os.path.exists(model):
        raise PredictorError(f"{model}: no such model file")
    config = inference.Config(model, params)
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(settings.threads)
    if settings.onednn:
        config.enable_mkldnn()
        for name in settings.deleted_passes:
            config.delete_pass(name)
    else:
        config.disable_mkldnn()
    if settings.memory_optim:
        config.enable_memory_optim()
    config.switch_ir_optim(settings.ir_optim)
    if not verbose:
        config.disable_glog_info()
    return config


def create_predictor(graph, settings: Settings | None = None, *, verbose: bool = False):
    from paddle import inference

    return inference.create_predictor(make_config(graph, settings, verbose=verbose))


def _ordered_feeds(predictor, feeds) -> list[tuple[str, object]]:
    names = list(predictor.get_input_names())
    if isinstance(feeds, dict):
        missing = [n for n in names if n not in feeds]
        if missing:
            raise ValueError(
                f"the graph takes inputs {', '.join(names)}; missing {', '.join(missing)}"
            )
        return [(n, feeds[n]) for n in names]
    feeds = list(feeds)
    if len(names) != len(feeds):
        raise ValueError(
            f"the graph takes {len(names)} inputs ({', '.join(names)}), got {len(feeds)}"
        )
    return list(zip(names, feeds))


def check_input_shape(name: str, shape, declared) -> None:
    """Raise ValueError when ``shape`` cannot feed an input declared ``declared`` (-1 = any)."""
    declared = list(declared or [])
    if not declared or declared == [0]:  # shape not recorded in the program
        return
    if len(shape) != len(declared) or any(d > 0 and d != s for s, d in zip(shape, declared)):
        raise ValueError(
            f"input '{name}': shape {list(shape)} does not match the graph's input shape "
            f"{declared} (-1 = any)"
        )


def run_predictor(predictor, feeds, *, check_shapes: bool = False) -> list[np.ndarray]:
    """Run with numpy feeds (a list in input order, or a dict by input name); numpy outputs."""
    for name, value in _ordered_feeds(predictor, feeds):
        value = np.ascontiguousarray(value)
        handle = predictor.get_input_handle(name)
        if check_shapes:
            check_input_shape(name, value.shape, handle.shape())
        handle.reshape(list(value.shape))
        handle.copy_from_cpu(value)
    predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


def run_tensors(predictor, feeds) -> list:
    """Run with Paddle tensors in and out (``predictor.run(list)``): a state such as a KV
    cache can stay a tensor between calls instead of a numpy round trip. Numpy feeds are
    converted."""
    import paddle

    inputs = [
        v if isinstance(v, paddle.Tensor) else paddle.to_tensor(np.ascontiguousarray(v))
        for _, v in _ordered_feeds(predictor, feeds)
    ]
    return list(predictor.run(inputs))


def compare(
    reference,
    got,
    tolerance: float = 1e-4,
    *,
    atol: float | None = None,
    rtol: float | None = None,
) -> dict:
    """Compare outputs (same count and shapes; non-finite outputs where the reference is
    finite fail). Default: ok when ``max|reference - got| <= tolerance * max(1, max|reference|)``
    per output. With ``atol`` / ``rtol``: ok when ``|reference - got| <= atol + rtol *
    |reference|`` element-wise (numpy's ``allclose``)."""
    if len(reference) != len(got):
        return {"ok": False, "reason": f"{len(got)} outputs vs {len(reference)} expected"}
    elementwise = atol is not None or rtol is not None
    max_abs, max_rel, ok = 0.0, 0.0, True
    for ref, out in zip(reference, got):
        ref, out = np.asarray(ref), np.asarray(out)
        if ref.shape != out.shape:
            return {"ok": False, "reason": f"shape {list(out.shape)} vs expected {list(ref.shape)}"}
        if ref.size == 0:
            continue
        if not np.all(np.isfinite(out)) and np.all(np.isfinite(ref)):
            return {"ok": False, "reason": "non-finite predictor output"}
        diff = np.abs(ref.astype("float64") - out.astype("float64"))
        d = float(np.nanmax(diff))
        scale = max(1.0, float(np.abs(ref).max()))
        max_abs, max_rel = max(max_abs, d), max(max_rel, d / scale)
        if elementwise:
            bound = (atol or 0.0) + (rtol or 0.0) * np.abs(ref.astype("float64"))
            ok = ok and bool(np.all(np.nan_to_num(diff, nan=0.0) <= bound))
        else:
            ok = ok and d <= tolerance * scale
    return {"ok": ok, "max_abs": max_abs, "max_rel": max_rel}


def _error_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {(lines[-1] if lines else '')[:300]}"


def time_call(fn, *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


#: custom operator libraries (``.so`` files), joined by ``os.pathsep``, that a worker registers
#: with Paddle before it loads a graph; children inherit it from the host's environment
OP_LIBRARIES_ENV = "PADDLE_PREDICTOR_OP_LIBRARIES"
_registered_libraries: set[str] = set()


def register_op_libraries(paths=None, *, export: bool = False) -> list[str]:
    """Register custom operator libraries with Paddle, each once per process: ``paths``, or
    those named in ``$PADDLE_PREDICTOR_OP_LIBRARIES``. ``export``: also add ``paths`` to that
    variable in this process, so that the workers started from now on register them too (a
    library the host loaded itself, e.g. with ``cpp_extension.load``, is passed with
    ``export=True`` and is not registered here again). Returns the libraries registered now."""
    if paths is None:
        paths = [p for p in os.environ.get(OP_LIBRARIES_ENV, "").split(os.pathsep) if p]
    paths = [str(p) for p in paths]
    if export:
        named = [p for p in os.environ.get(OP_LIBRARIES_ENV, "").split(os.pathsep) if p]
        os.environ[OP_LIBRARIES_ENV] = os.pathsep.join(named + [p for p in paths if p not in named])
        _registered_libraries.update(paths)
        return []
    from paddle.utils.cpp_extension import load_op_meta_info_and_register_op

    done = []
    for path in paths:
        if path not in _registered_libraries:
            load_op_meta_info_and_register_op(path)
            _registered_libraries.add(path)
            done.append(path)
    return done


# --------------------------------------------------------------------------------------------
# checks in a worker process (a oneDNN defect may abort the process or deadlock it)
# --------------------------------------------------------------------------------------------

# the child runs this file as a script: only numpy and paddle are imported there
_BOOT = (
    "import runpy, sys; f = sys.argv[1]; sys.argv = sys.argv[1:]; "
    "runpy.run_path(f, run_name='__main__')"
)


def _save_case(path: Path, feeds, reference) -> dict:
    names = list(feeds) if isinstance(feeds, dict) else None
    values = list(feeds.values()) if isinstance(feeds, dict) else list(feeds)
    arrays = {f"f{i}": np.asarray(v) for i, v in enumerate(values)}
    if reference is not None:
        arrays.update({f"r{i}": np.asarray(v) for i, v in enumerate(reference)})
    np.savez(path, **arrays)
    return {
        "file": str(path),
        "names": names,
        "feeds": len(values),
        "refs": None if reference is None else len(reference),
    }


def _load_case(desc: dict):
    with np.load(desc["file"]) as data:
        values = [data[f"f{i}"] for i in range(desc["feeds"])]
        ref = None if desc["refs"] is None else [data[f"r{i}"] for i in range(desc["refs"])]
    feeds = dict(zip(desc["names"], values)) if desc["names"] is not None else values
    return feeds, ref


class Worker:
    """A process that creates and runs predictors on request.

    Started once and reused; if a request kills it or exceeds ``timeout`` seconds, the
    request fails with that reason and the next one starts a new process.

    * ``check(graph, settings, feeds, reference)``: one case;
    * ``check_cases(graph, settings, cases)``: every case, in order, on one predictor;
    * ``run(graph, settings, feeds)``: the outputs (raises :class:`PredictorError`);
    * ``time(graph, [settings, ...], cases)``: median seconds per configuration, rounds
      interleaved so that drift of the machine hits every configuration alike.
    """

    def __init__(self, timeout: float = 120.0):
        self.timeout = timeout
        self.proc = None
        self._dir = tempfile.TemporaryDirectory()
        self.started = 0

    def _start(self):
        env = _child_env(GLOG_minloglevel=os.environ.get("GLOG_minloglevel", "3"))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, os.path.abspath(__file__), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.started += 1
        # importing Paddle is not part of a request's time budget: wait for the hello
        _readline(self.proc, max(120.0, self.timeout))

    def _request(self, request: dict, timeout: float | None = None) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        t0 = time.perf_counter()
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            return {"ok": False, "reason": "predictor process died"}
        limit = self.timeout if timeout is None else timeout
        line = _readline(self.proc, limit)
        if not line:
            code = self.proc.poll()
            if line == "" and code is None:
                # the output closed before the time limit: the process is exiting (a crash
                # closes its pipes before the kernel reports the status), so wait for it
                try:
                    code = self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    code = None
            self.close()
            if code is None and line == "":
                return {"ok": False, "reason": "predictor process closed its output (killed)"}
            if code is None:
                return {"ok": False, "reason": f"predictor process hung (> {limit:.0f} s, killed)"}
            how = f"signal {-code}" if code < 0 else f"exit {code}"
            return {"ok": False, "reason": f"predictor process died ({how})"}
        result = json.loads(line)
        result["seconds"] = round(time.perf_counter() - t0, 3)
        return result

    def _cases(self, cases) -> list[dict]:
        d = Path(self._dir.name)
        return [_save_case(d / f"case{i}.npz", f, r) for i, (f, r) in enumerate(cases)]

    def check(self, prefix, settings: Settings, feeds, reference, tolerance=1e-4) -> dict:
        return self.check_cases(prefix, settings, [(feeds, reference)], tolerance)

    def check_cases(
        self, graph, settings: Settings, cases, tolerance=1e-4, *, atol=None, rtol=None
    ) -> dict:
        """ok when every case matches its reference; ``cases`` holds each case's result and
        ``failed_case`` the index of the first that did not."""
        return self._request(
            {
                "op": "check",
                "graph": _graph_arg(graph),
                "settings": settings.to_dict(),
                "cases": self._cases(cases),
                "tolerance": {"tolerance": tolerance, "atol": atol, "rtol": rtol},
            }
        )

    def run(self, graph, settings: Settings, feeds) -> list[np.ndarray]:
        out = Path(self._dir.name) / "out.npz"
        res = self._request(
            {
                "op": "run",
                "graph": _graph_arg(graph),
                "settings": settings.to_dict(),
                "cases": self._cases([(feeds, None)]),
                "out": str(out),
            }
        )
        if not res.get("ok"):
            raise PredictorError(res.get("reason", "predictor failed"))
        with np.load(out) as data:
            return [data[f"o{i}"] for i in range(len(data.files))]

    def time(self, graph, candidates, cases, *, repeats: int = 5, warmup: int = 1) -> dict:
        """``{"ok", "medians": [median seconds per candidate]}``: one pass over ``cases`` per
        timed call."""
        budget = self.timeout * (1 + repeats + warmup) * max(1, len(candidates))
        return self._request(
            {
                "op": "time",
                "graph": _graph_arg(graph),
                "candidates": [s.to_dict() for s in candidates],
                "cases": self._cases(cases),
                "repeats": repeats,
                "warmup": warmup,
            },
            timeout=budget,
        )

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        self._dir.cleanup()


def _graph_arg(graph):
    return [str(p) for p in graph] if isinstance(graph, (tuple, list)) else str(graph)


def _child_env(**extra) -> dict:
    """The environment of a child process that finds the modules this process finds."""
    path = [p for p in sys.path if p] + os.environ.get("PYTHONPATH", "").split(os.pathsep)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p), **extra)


def _readline(proc, timeout):
    """The next JSON line of ``proc``'s output; None when ``timeout`` passes first, "" when
    the output ends first (the process is exiting)."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            return None
        line = proc.stdout.readline()
        if not line:
            return ""  # end of output, before the time limit
        if line.startswith("{"):
            return line


def _serve(req: dict) -> dict:
    graph = req["graph"]
    cases = [_load_case(c) for c in req["cases"]]
    if req["op"] == "time":
        preds = [create_predictor(graph, Settings.from_dict(s)) for s in req["candidates"]]
        runs = [lambda p=p: [run_predictor(p, f) for f, _ in cases] for p in preds]
        for _ in range(req["warmup"]):
            for run in runs:
                run()
        times = [[] for _ in runs]
        for _ in range(max(1, req["repeats"])):
            for i, run in enumerate(runs):
                t0 = time.perf_counter()
                run()
                times[i].append(time.perf_counter() - t0)
        return {"ok": True, "medians": [statistics.median(t) for t in times]}
    pred = create_predictor(graph, Settings.from_dict(req["settings"]))
    if req["op"] == "run":
        outs = run_predictor(pred, cases[0][0])
        np.savez(req["out"], **{f"o{i}": o for i, o in enumerate(outs)})
        return {"ok": True}
    tol = req["tolerance"]
    results, first_bad = [], None
    for i, (feeds, ref) in enumerate(cases):
        try:
            res = compare(
                ref,
                run_predictor(pred, feeds),
                tol["tolerance"],
                atol=tol["atol"],
                rtol=tol["rtol"],
            )
        except Exception as exc:
            res = {"ok": False, "reason": _error_line(exc)}
        results.append(res)
        if not res["ok"] and first_bad is None:
            first_bad = i
    out = {
        "ok": first_bad is None,
        "max_abs": max((r.get("max_abs", 0.0) for r in results), default=0.0),
        "max_rel": max((r.get("max_rel", 0.0) for r in results), default=0.0),
    }
    if first_bad is not None:
        out["failed_case"] = first_bad
        if "reason" in results[first_bad]:
            out["reason"] = results[first_bad]["reason"]
    if len(results) > 1:
        out["cases"] = results
    return out


def _worker_main():
    from paddle import inference  # noqa: F401  (imported before saying ready)

    try:
        register_op_libraries()
        broken = None
    except Exception as exc:  # every request says why rather than a silent crash
        broken = f"registering {OP_LIBRARIES_ENV}: {_error_line(exc)}"
    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            result = {"ok": False, "reason": broken} if broken else _serve(json.loads(line))
        except Exception as exc:
            result = {"ok": False, "reason": _error_line(exc)}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# passes and their bisection
# --------------------------------------------------------------------------------------------


def applied_passes(prefix, *, threads: int = 1, timeout: float = 120.0) -> list[str]:
    """Names of the passes the predictor applies to this graph with oneDNN on, in order, read
    from the predictor's own log (a separate process: the log level is read once)."""
    env = _child_env(GLOG_minloglevel="0", GLOG_v="0")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _BOOT,
            os.path.abspath(__file__),
            "--passes",
            json.dumps({"graph": _graph_arg(prefix), "threads": threads}),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    names = []
    for match in _PASS_LINE.finditer(proc.stdout + proc.stderr):
        if match.group(1) not in names:
            names.append(match.group(1))
    return names


def minimal_deletion(passes: list[str], ok) -> tuple[list[str], int]:
    """A 1-minimal subset D of ``passes`` with ``ok(D)`` (``ok(passes)`` must hold): delta
    debugging (Zeller's ddmin), about 2 log2(n) checks for a single culprit pass."""
    items, n, checks = list(passes), 2, 0
    while len(items) >= 2:
        size = -(-len(items) // n)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        for chunk in chunks:  # one chunk alone suffices?
            checks += 1
            if ok(chunk):
                items, n = chunk, 2
                break
        else:
            for chunk in chunks if n > 2 else []:  # or everything but one chunk?
                rest = [p for p in items if p not in chunk]
                checks += 1
                if ok(rest):
                    items, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= len(items):
                    break
                n = min(len(items), 2 * n)
    return items, checks


def repair_onednn(
    prefix,
    feeds=None,
    reference=None,
    *,
    cases=None,
    tolerance=1e-4,
    atol=None,
    rtol=None,
    threads=1,
    worker=None,
    timeout=120.0,
) -> dict:
    """Find the passes to delete so that this graph runs right with oneDNN on every case.

    ``cases``: ``[(feeds, reference), ...]``, run in order on one predictor (default: the
    single case ``(feeds, reference)``). Returns ``{"settings": Settings as dict, "ok": bool,
    "plain": result with every pass, "deleted_passes": [...], "checks": n, "cases": n,
    "verified" / "reason"}``: ``settings.onednn`` is true only if the final configuration was
    verified on every case.
    """
    if cases is None:
        cases = [(feeds, reference)]
    cases = list(cases)
    own = worker is None
    worker = worker or Worker(timeout)
    tol = {"tolerance": tolerance, "atol": atol, "rtol": rtol}
    try:
        plain = worker.check_cases(prefix, Settings(True, [], threads), cases, **tol)
        if plain.get("ok"):
            return {
                "ok": True,
                "settings": Settings(True, [], threads).to_dict(),
                "plain": plain,
                "deleted_passes": [],
                "checks": 1,
                "cases": len(cases),
                "verified": plain,
            }
        passes = applied_passes(prefix, threads=threads, timeout=timeout)
        cache: dict[tuple, dict] = {}

        def ok(deleted):
            key = tuple(sorted(deleted))
            if key not in cache:
                cache[key] = worker.check_cases(
                    prefix, Settings(True, list(deleted), threads), cases, **tol
                )
            return bool(cache[key].get("ok"))

        if not passes or not ok(passes):
            return {
                "ok": False,
                "settings": Settings(False, [], threads).to_dict(),
                "plain": plain,
                "deleted_passes": [],
                "checks": 1 + len(cache),
                "cases": len(cases),
                "reason": "fails with every oneDNN pass deleted: a defect of a oneDNN "
                "kernel, not of a pass; oneDNN stays off for this graph",
            }
        deleted, _ = minimal_deletion(passes, ok)
        final = cache[tuple(sorted(deleted))]
        return {
            "ok": True,
            "settings": Settings(True, deleted, threads).to_dict(),
            "plain": plain,
            "deleted_passes": deleted,
            "checks": 1 + len(cache),
            "cases": len(cases),
            "verified": final,
        }
    finally:
        if own:
            worker.__exit__(None, None, None)


# --------------------------------------------------------------------------------------------
# choice by speed among verified configurations
# --------------------------------------------------------------------------------------------


def choose_fastest(
    graph,
    cases,
    *,
    timing_cases=None,
    candidates=None,
    repair: bool = True,
    tolerance=1e-4,
    atol=None,
    rtol=None,
    threads=1,
    repeats: int = 5,
    warmup: int = 1,
    margin: float = 0.0,
    worker=None,
    timeout=120.0,
) -> dict:
    """The fastest configuration that is right on every case, with the evidence.

    Candidates (default: plain, then oneDNN) are verified in a worker on ``cases``; when
    oneDNN fails and ``repair`` is set, the repaired oneDNN configuration
    (:func:`repair_onednn`) joins them. The verified candidates are then timed in one process,
    rounds interleaved (median of ``repeats`` passes over the feeds of ``timing_cases``, by
    default ``cases``; pass a subset to time only the calls that dominate run time). A candidate
    replaces the first verified one only when it is faster by more than ``margin`` (a
    fraction: 0.05 = 5 %), so noise does not flip the choice to oneDNN.

    Returns ``{"ok", "settings": chosen Settings as dict (None if nothing verified),
    "chosen": label, "seconds": {label: median s}, "verified": {label: check result},
    "repair": repair result or None, "load": 1-minute load average before timing}``.
    """
    cases = list(cases)
    if candidates is None:
        candidates = [Settings(False, [], threads), Settings(True, [], threads)]
    own = worker is None
    worker = worker or Worker(timeout)
    tol = {"tolerance": tolerance, "atol": atol, "rtol": rtol}
    try:
        verified, results, repair_result = [], {}, None
        for settings in candidates:
            res = worker.check_cases(graph, settings, cases, **tol)
            results[settings.label] = res
            if res.get("ok"):
                verified.append(settings)
            elif repair and settings.onednn and not settings.deleted_passes:
                repair_result = repair_onednn(
                    graph, cases=cases, threads=settings.threads, worker=worker, **tol
                )
                if repair_result["ok"]:
                    fixed = Settings.from_dict(repair_result["settings"])
                    fixed.memory_optim, fixed.ir_optim = settings.memory_optim, settings.ir_optim
                    results[fixed.label] = repair_result["verified"]
                    verified.append(fixed)
        out = {"ok": bool(verified), "verified": results, "repair": repair_result}
        if not verified:
            return {**out, "settings": None, "chosen": None, "seconds": {}}
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        if len(verified) == 1:
            timed = {"ok": True, "medians": [None]}
        else:
            timing = cases if timing_cases is None else list(timing_cases)
            timed = worker.time(graph, verified, timing, repeats=repeats, warmup=warmup)
        if not timed.get("ok"):  # the timing run died: keep the first verified candidate
            chosen = verified[0]
            return {
                **out,
                "settings": chosen.to_dict(),
                "chosen": chosen.label,
                "seconds": {},
                "load": load,
                "reason": f"timing failed: {timed.get('reason')}",
            }
        seconds = dict(zip((s.label for s in verified), timed["medians"]))
        chosen, best = verified[0], timed["medians"][0]
        for settings, sec in zip(verified[1:], timed["medians"][1:]):
            if sec < best * (1.0 - margin):
                chosen, best = settings, sec
        return {
            **out,
            "settings": chosen.to_dict(),
            "chosen": chosen.label,
            "seconds": seconds,
            "load": load,
        }
    finally:
        if own:
            worker.__exit__(None, None, None)


def _passes_main(arg: str):
    req = json.loads(arg)
    register_op_libraries()
    create_predictor(req["graph"], Settings(True, [], int(req["threads"])), verbose=True)


if __name__ == "__main__" and "--worker" in sys.argv:
    _worker_main()
elif __name__ == "__main__" and "--passes" in sys.argv:
    _passes_main(sys.argv[sys.argv.index("--passes") + 1])
