"""DreamBooth-LoRA training speed and peak RSS, ppflux vs the torch/diffusers reference step
(tests/test_train.py::reference_train, diffusers' script step), same tiny model, data and
arguments, each side in its own process so peak RSS is its own.

    python benchmarks/bench_train.py [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {tests!r})
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch
torch.set_num_threads(1)
side, pipe_dir, data, out, steps = sys.argv[1:6]
steps = int(steps)
from test_train import _args, reference_train
from ppflux.train_dreambooth_lora import train
args = _args(pipe_dir, data, out, max_train_steps=steps, weighting_scheme="logit_normal",
             gradient_accumulation_steps=1)
t0 = time.perf_counter()
if side == "diffusers":
    reference_train(pipe_dir, args, steps)
else:
    train(args)
dt = time.perf_counter() - t0
print(json.dumps({{"seconds": dt, "steps_per_s": steps / dt,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main():
    sys.path.insert(0, str(TESTS))
    import reference
    from test_train import _images

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pipe_dir = reference.build_pipeline_folder(tmp / "model", True)
        data = _images(tmp / "data", n=3)
        for side in ("diffusers", "ppflux"):
            code = CHILD.format(tests=str(TESTS))
            res = subprocess.run([sys.executable, "-c", code, side, str(pipe_dir), str(data),
                                  str(tmp / f"out-{side}"), str(args.steps)],
                                 capture_output=True, text=True)
            if res.returncode:
                raise RuntimeError(res.stderr[-3000:])
            rows[side] = json.loads(res.stdout.strip().splitlines()[-1])
            print(side, rows[side])
    result = {"benchmark": "DreamBooth LoRA training, tiny FLUX (2+2 blocks, hidden 32), "
                           "32x32 images, batch 1, logit_normal, fp32 CPU, 1 thread; includes "
                           "model loading and setup",
              "steps": args.steps, "rows": rows,
              "ppflux_over_diffusers_seconds": rows["ppflux"]["seconds"] / rows["diffusers"]["seconds"],
              "ppflux_over_diffusers_peak_rss": rows["ppflux"]["peak_rss_mb"] /
              rows["diffusers"]["peak_rss_mb"],
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_avg": os.getloadavg()},
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = HERE / "results" / "train.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("ppflux_over_diffusers_seconds",
                                             "ppflux_over_diffusers_peak_rss")}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
