"""Running an upgraded model in Paddle 3: dygraph ``jit.load`` and the Paddle Inference predictor.

Also a worker entry point (``python runtimes.py JOBS.json RESULTS.json``) that runs the oneDNN
predictor over many models in one child process: Paddle 3.3.1's oneDNN predictor can crash the
process, so it never runs inside pytest; the worker writes each result as soon as it has it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np


def load_io(npz: Path) -> tuple[dict, list | None]:
    data = np.load(npz)
    ins = {k[3:]: data[k] for k in data.files if k.startswith("in_")}
    outs = sorted((int(k[4:]), data[k]) for k in data.files if k.startswith("out_"))
    return ins, [v for _, v in outs] or None


def run_jit(prefix: str, inputs: dict) -> list[np.ndarray]:
    import paddle

    paddle.disable_static()
    layer = paddle.jit.load(prefix)
    layer.eval()
    out = layer(*[paddle.to_tensor(v) for v in inputs.values()])
    out = out if isinstance(out, (list, tuple)) else [out]
    return [o.numpy() for o in out]


def run_predictor(prefix: str, inputs: dict, use_onednn: bool) -> list[np.ndarray]:
    from paddle import inference

    params = prefix + ".pdiparams"
    cfg = inference.Config(prefix + ".json", params if os.path.exists(params) else "")
    cfg.disable_gpu()
    cfg.disable_glog_info()
    cfg.set_cpu_math_library_num_threads(1)
    if use_onednn:
        cfg.enable_mkldnn()
    else:
        cfg.disable_mkldnn()
    pred = inference.create_predictor(cfg)
    for name in pred.get_input_names():
        h = pred.get_input_handle(name)
        h.reshape(list(inputs[name].shape))
        h.copy_from_cpu(np.ascontiguousarray(inputs[name]))
    pred.run()
    return [pred.get_output_handle(n).copy_to_cpu() for n in pred.get_output_names()]


def max_diff(got: list, want: list) -> float:
    if len(got) != len(want):
        return float("inf")
    worst = 0.0
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            return float("inf")
        if g.size:
            worst = max(worst, float(np.max(np.abs(g.astype("float64") - w.astype("float64")))))
    return worst


def _worker(jobs_path: str, results_path: str) -> None:
    jobs = json.loads(Path(jobs_path).read_text())
    results = {}
    for job in jobs:
        results[job["name"]] = {"status": "started"}
        Path(results_path).write_text(json.dumps(results))
        ins, _ = load_io(Path(job["io"]))
        try:
            outs = run_predictor(job["prefix"], ins, use_onednn=True)
            np.savez(job["out"], *outs)
            results[job["name"]] = {"status": "ran"}
        except Exception as exc:  # noqa: BLE001 - a failing predictor is a result
            lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
            named = [ln for ln in lines if re.match(r"\w+(Error|Exception)\b", ln)]
            first = (named or lines or [""])[0]
            results[job["name"]] = {"status": "error", "error": f"{type(exc).__name__}: {first}"}
        Path(results_path).write_text(json.dumps(results))


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
