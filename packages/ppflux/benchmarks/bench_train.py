"""DreamBooth-LoRA training speed and peak RSS, ppflux vs diffusers, same tiny model, data and
arguments, each side in its own process (so peak RSS is its own).

The diffusers side is the script's training step written with diffusers/peft/torch objects
(``tests/test_train.py::reference_train``, checked against the real script by
``tests/test_train_script.py``). Steps per second count only optimisation steps after
``--warmup`` steps: model loading, prompt encoding and the first steps are excluded. Peak RSS
is the whole process's (``ru_maxrss``), loading included.

    python benchmarks/bench_train.py [--steps 12] [--warmup 2] [--resolution 32]
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
import torchvision_shim
torchvision_shim.import_torchvision()
side, pipe_dir, data, out, steps, res = sys.argv[1:7]
steps = int(steps)
import test_train
from test_train import _args, reference_train
test_train.RES = int(res)
args = _args(pipe_dir, data, out, max_train_steps=steps, weighting_scheme="logit_normal",
             gradient_accumulation_steps=1, resolution=int(res))
times = []
if side == "diffusers":
    reference_train(pipe_dir, args, steps, step_times=times)
else:
    from ppflux.train_dreambooth_lora import Trainer
    trainer = Trainer(args)
    trainer.setup()
    step = trainer.optimizer.step
    def timed_step():
        step()
        times.append(time.perf_counter())
    trainer.optimizer.step = timed_step
    trainer.run()
print(json.dumps({{"step_times": times,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main():
    sys.path.insert(0, str(TESTS))
    import torchvision_shim

    torchvision_shim.import_torchvision()
    import reference
    from test_train import _images

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=32)
    args = parser.parse_args()
    if args.warmup < 1 or args.steps <= args.warmup:
        parser.error("need --warmup >= 1 and --steps > --warmup")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pipe_dir = reference.build_pipeline_folder(tmp / "model", True)
        data = _images(tmp / "data", n=3)
        for side in ("diffusers", "ppflux"):
            res = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD.format(tests=str(TESTS)),
                    side,
                    str(pipe_dir),
                    str(data),
                    str(tmp / f"out-{side}"),
                    str(args.steps),
                    str(args.resolution),
                ],
                capture_output=True,
                text=True,
            )
            if res.returncode:
                raise RuntimeError(res.stderr[-3000:])
            out = json.loads(res.stdout.strip().splitlines()[-1])
            t = out["step_times"]
            measured = len(t) - args.warmup
            seconds = t[-1] - t[args.warmup - 1]
            rows[side] = {
                "steps_per_s": measured / seconds,
                "measured_steps": measured,
                "seconds": seconds,
                "peak_rss_mb": out["peak_rss_mb"],
            }
            print(side, rows[side])
    result = {
        "benchmark": f"DreamBooth LoRA training steps, tiny FLUX (2+2 blocks, hidden 32), "
        f"{args.resolution}x{args.resolution} images, batch 1, logit_normal, "
        "fp32 CPU, 1 thread; setup and warm-up steps excluded from the speed",
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": rows,
        "ppflux_over_diffusers_steps_per_s": rows["ppflux"]["steps_per_s"]
        / rows["diffusers"]["steps_per_s"],
        "ppflux_over_diffusers_peak_rss": rows["ppflux"]["peak_rss_mb"]
        / rows["diffusers"]["peak_rss_mb"],
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg": os.getloadavg(),
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = HERE / "results" / f"train_{args.resolution}.json"
    out.write_text(json.dumps(result, indent=2))
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("ppflux_over_diffusers_steps_per_s", "ppflux_over_diffusers_peak_rss")
            }
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
