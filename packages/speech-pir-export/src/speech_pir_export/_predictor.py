"""Paddle Inference predictor with a oneDNN self-check, repaired by deleting passes.

Paddle 3.3.1's CPU predictor with oneDNN can fail or return silently wrong results on graphs
that run correctly without it. Usually one fusion pass is at fault, and Paddle Inference lets
a caller delete passes (``Config.delete_pass``). This module:

* creates a predictor from a graph (``<prefix>.json`` + ``<prefix>.pdiparams``) with given
  :class:`Settings` (oneDNN on/off, deleted passes, threads) and runs it;
* compares outputs against reference outputs with a tolerance (:func:`compare`);
* lists the passes the predictor applies with oneDNN on (:func:`applied_passes`, read from
  its own log);
* finds a minimal set of passes whose deletion makes the oneDNN predictor match the reference
  (:func:`repair_onednn`, delta debugging over the pass list), every check in a worker
  process, because some oneDNN defects kill the process or hang it;
* returns the configuration to use, with the evidence to record.

No import of the rest of the package: this file is meant to be copied verbatim into other
packages (with a ``# Copied from`` line).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

_PASS_LINE = re.compile(r"Running PIR pass \[([A-Za-z0-9_]+)\]")


@dataclass
class Settings:
    onednn: bool = False
    deleted_passes: list[str] = field(default_factory=list)
    threads: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Settings:
        data = data or {}
        return cls(
            bool(data.get("onednn", False)),
            list(data.get("deleted_passes") or []),
            int(data.get("threads", 1)),
        )


def graph_files(prefix: str | os.PathLike) -> tuple[str, str]:
    """(model file, params file) of a saved graph: ``.json`` (PIR) or ``.pdmodel``."""
    prefix = str(prefix)
    model = prefix + ".json"
    if not os.path.exists(model) and os.path.exists(prefix + ".pdmodel"):
        model = prefix + ".pdmodel"
    return model, prefix + ".pdiparams"


def create_predictor(prefix, settings: Settings | None = None, *, verbose: bool = False):
    from paddle import inference

    settings = settings or Settings()
    model, params = graph_files(prefix)
    config = inference.Config(model, params)
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(settings.threads)
    if settings.onednn:
        config.enable_mkldnn()
        for name in settings.deleted_passes:
            config.delete_pass(name)
    else:
        config.disable_mkldnn()
    if not verbose:
        config.disable_glog_info()
    return inference.create_predictor(config)


def run_predictor(predictor, feeds: list[np.ndarray]) -> list[np.ndarray]:
    names = predictor.get_input_names()
    if len(names) != len(feeds):
        raise ValueError(
            f"the graph takes {len(names)} inputs ({', '.join(names)}), got {len(feeds)}"
        )
    for name, value in zip(names, feeds):
        handle = predictor.get_input_handle(name)
        handle.reshape(list(value.shape))
        handle.copy_from_cpu(np.ascontiguousarray(value))
    predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


def compare(reference: list[np.ndarray], got: list[np.ndarray], tolerance: float = 1e-4) -> dict:
    """ok when ``max|reference - got| <= tolerance * max(1, max|reference|)`` for every
    output (same count and shapes; non-finite outputs where the reference is finite fail)."""
    if len(reference) != len(got):
        return {"ok": False, "reason": f"{len(got)} outputs vs {len(reference)} expected"}
    max_abs, max_rel, ok = 0.0, 0.0, True
    for ref, out in zip(reference, got):
        ref, out = np.asarray(ref), np.asarray(out)
        if ref.shape != out.shape:
            return {"ok": False, "reason": f"shape {list(out.shape)} vs expected {list(ref.shape)}"}
        if ref.size == 0:
            continue
        if not np.all(np.isfinite(out)) and np.all(np.isfinite(ref)):
            return {"ok": False, "reason": "non-finite predictor output"}
        d = float(np.nanmax(np.abs(ref.astype("float64") - out.astype("float64"))))
        scale = max(1.0, float(np.abs(ref).max()))
        max_abs, max_rel = max(max_abs, d), max(max_rel, d / scale)
        ok = ok and d <= tolerance * scale
    return {"ok": ok, "max_abs": max_abs, "max_rel": max_rel}


def _error_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {(lines[-1] if lines else '')[:300]}"


# --------------------------------------------------------------------------------------------
# checks in a worker process (a oneDNN defect may abort the process or deadlock it)
# --------------------------------------------------------------------------------------------


class Worker:
    """A process that answers checks: ``check(prefix, settings, feeds, reference)``.

    Started once and reused; if a check kills it or exceeds ``timeout`` seconds, the check
    fails with that reason and the next check starts a new process."""

    def __init__(self, timeout: float = 120.0):
        self.timeout = timeout
        self.proc = None
        self._dir = tempfile.TemporaryDirectory()
        self.started = 0

    def _start(self):
        env = _child_env(GLOG_minloglevel=os.environ.get("GLOG_minloglevel", "3"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __name__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.started += 1
        # importing Paddle is not part of a check's time budget: wait for the worker's hello
        _readline(self.proc, max(120.0, self.timeout))

    def check(self, prefix, settings: Settings, feeds, reference, tolerance=1e-4) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        d = Path(self._dir.name)
        np.savez(d / "feeds.npz", *feeds)
        np.savez(d / "ref.npz", *reference)
        request = {
            "prefix": str(prefix),
            "settings": settings.to_dict(),
            "dir": str(d),
            "tolerance": tolerance,
        }
        t0 = time.perf_counter()
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.close()
            return {"ok": False, "reason": "predictor process died"}
        line = _readline(self.proc, self.timeout)
        if line is None:
            code = self.proc.poll()
            self.close()
            if code is None:
                return {
                    "ok": False,
                    "reason": f"predictor process hung (> {self.timeout:.0f} s, killed)",
                }
            how = f"signal {-code}" if code < 0 else f"exit {code}"
            return {"ok": False, "reason": f"predictor process died ({how})"}
        result = json.loads(line)
        result["seconds"] = round(time.perf_counter() - t0, 3)
        return result

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


def _child_env(**extra) -> dict:
    """The environment of a child process that imports this module as this process does."""
    path = [p for p in sys.path if p] + os.environ.get("PYTHONPATH", "").split(os.pathsep)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in path if p), **extra)


def _readline(proc, timeout):
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
            return None
        if line.startswith("{"):
            return line


def _worker_main():
    from paddle import inference  # noqa: F401  (imported before saying ready)

    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        d = Path(req["dir"])
        with np.load(d / "feeds.npz") as f, np.load(d / "ref.npz") as r:
            feeds = [f[f"arr_{i}"] for i in range(len(f.files))]
            ref = [r[f"arr_{i}"] for i in range(len(r.files))]
        try:
            pred = create_predictor(req["prefix"], Settings.from_dict(req["settings"]))
            result = compare(ref, run_predictor(pred, feeds), req["tolerance"])
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
    code = (
        f"from {__name__} import create_predictor, Settings\n"
        f"create_predictor({str(prefix)!r}, Settings(True, [], {threads}), verbose=True)\n"
    )
    env = _child_env(GLOG_minloglevel="0", GLOG_v="0")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout
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
    prefix, feeds, reference, *, tolerance=1e-4, threads=1, worker=None, timeout=120.0
) -> dict:
    """Find the passes to delete so that this graph runs right with oneDNN.

    Returns ``{"settings": Settings as dict, "ok": bool, "plain": result with every pass,
    "deleted_passes": [...], "checks": n, "reason": ...}``: ``settings.onednn`` is true only
    if the final configuration was verified against ``reference``.
    """
    own = worker is None
    worker = worker or Worker(timeout)
    try:
        plain = worker.check(prefix, Settings(True, [], threads), feeds, reference, tolerance)
        if plain.get("ok"):
            return {
                "ok": True,
                "settings": Settings(True, [], threads).to_dict(),
                "plain": plain,
                "deleted_passes": [],
                "checks": 1,
                "verified": plain,
            }
        passes = applied_passes(prefix, threads=threads, timeout=timeout)
        cache: dict[tuple, dict] = {}

        def ok(deleted):
            key = tuple(sorted(deleted))
            if key not in cache:
                cache[key] = worker.check(
                    prefix, Settings(True, list(deleted), threads), feeds, reference, tolerance
                )
            return bool(cache[key].get("ok"))

        if not passes or not ok(passes):
            return {
                "ok": False,
                "settings": Settings(False, [], threads).to_dict(),
                "plain": plain,
                "deleted_passes": [],
                "checks": 1 + len(cache),
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
            "verified": final,
        }
    finally:
        if own:
            worker.__exit__(None, None, None)


if __name__ == "__main__" and "--worker" in sys.argv:
    _worker_main()
