"""DreamBooth-LoRA training speed and peak RSS, ppflux vs diffusers, same tiny model, data and
arguments, each side in its own process (so peak RSS is its own).

The diffusers side is the script's training step written with diffusers/peft/torch objects
(``tests/test_train.py::reference_train``, checked against the real script by
``tests/test_train_script.py``). Steps per second count only optimisation steps after
``--warmup`` steps: model loading, prompt encoding and the first steps are excluded. Peak RSS
is the whole process's (``ru_maxrss``), loading included.

    python benchmarks/bench_train.py [--steps 12] [--warmup 2] [--resolution 32]
    python benchmarks/bench_train.py --wide [--rank 16] [--resolution 128] [--text-tokens 64]
    python benchmarks/bench_train.py --processes 2 [--steps 12] [--warmup 2]

``--wide`` trains a transformer of FLUX.1's width instead of the tiny one: hidden 3072 (24
heads x 128), 1 double + 2 single blocks (the speed benchmark's depth; FLUX.1-dev has 19 + 38
of the same blocks), RoPE axes 16/56/56, diffusers' own random initialisation; the VAE and
the text encoders stay the tiny ones (the transformer's text and pooled inputs are their
32-wide outputs), so the step is the transformer's matmuls, as when users train.

``--processes N`` measures ppflux alone, on one process and on N processes started by
``python -m paddle.distributed.launch`` (gloo), with the same global batch (N images per
micro-batch: ``--train_batch_size N`` on one process, 1 on each of the N), in one run.

The JSON is printed and written to ``benchmarks/results/<name>.local.json``; ``--record``
writes the committed ``benchmarks/results/<name>.json`` instead.
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
side, pipe_dir, data, out, steps, res, batch, rank, text_tokens, cache = sys.argv[1:11]
steps = int(steps)
import test_train
from test_train import _args, reference_train
test_train.RES = int(res)
extra = dict(cache_latents=True) if cache == "1" else {{}}
args = _args(pipe_dir, data, out, max_train_steps=steps, weighting_scheme="logit_normal",
             gradient_accumulation_steps=1, resolution=int(res), train_batch_size=int(batch),
             rank=int(rank), max_sequence_length=int(text_tokens), **extra)
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
    if trainer.rank:
        sys.exit(0)
print(json.dumps({{"step_times": times,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _run(child: Path, argv: list[str], processes: int, log_dir: Path) -> dict:
    """One side's step times: a plain process, or ``processes`` launched by Paddle's launcher
    (rank 0 prints the JSON into its worker log)."""
    if processes == 0:
        cmd = [sys.executable, str(child), *argv]
    else:
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node"]
        cmd += [str(processes), "--log_dir", str(log_dir), str(child), *argv]
    env = dict(os.environ, PADDLE_DISTRI_BACKEND="gloo", OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    text = res.stdout
    if processes:
        text = (log_dir / "workerlog.0").read_text(errors="replace")
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:] + text[-3000:])
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


WIDE_TRANSFORMER = dict(
    num_layers=1,
    num_single_layers=2,
    attention_head_dim=128,
    num_attention_heads=24,
    axes_dims_rope=[16, 56, 56],
)


def _widen(pipe_dir: Path) -> None:
    """Replace the tiny pipeline's transformer by one of FLUX.1's width (diffusers' init)."""
    import shutil

    import reference

    model = reference.make_transformer(True, seed=0, **WIDE_TRANSFORMER)
    shutil.rmtree(pipe_dir / "transformer")
    model.save_pretrained(pipe_dir / "transformer")


def _row(out: dict, warmup: int) -> dict:
    t = out["step_times"]
    measured = len(t) - warmup
    seconds = t[-1] - t[warmup - 1]
    return {
        "steps_per_s": measured / seconds,
        "measured_steps": measured,
        "seconds": seconds,
        "peak_rss_mb": out["peak_rss_mb"],
    }


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
    parser.add_argument("--wide", action="store_true", help="a transformer of FLUX.1's width")
    parser.add_argument("--rank", type=int, default=4, help="LoRA rank (default: 4)")
    parser.add_argument(
        "--cache_latents",
        action="store_true",
        help="both sides encode each image once (the script's --cache_latents)",
    )
    parser.add_argument(
        "--text-tokens", type=int, default=16, help="T5 tokens (max_sequence_length)"
    )
    parser.add_argument(
        "--processes", type=int, default=0, help="ppflux on 1 vs N processes (N >= 2)"
    )
    parser.add_argument("--record", action="store_true", help="update the committed result")
    args = parser.parse_args()
    if args.warmup < 1 or args.steps <= args.warmup:
        parser.error("need --warmup >= 1 and --steps > --warmup")
    if args.processes == 1:
        parser.error("--processes must be >= 2 (one process is always measured)")
    load_before = os.getloadavg()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        child = tmp / "child.py"
        child.write_text(CHILD.format(tests=str(TESTS)))
        pipe_dir = reference.build_pipeline_folder(tmp / "model", True)
        if args.wide:
            _widen(pipe_dir)
        data = _images(tmp / "data", n=max(3, 2 * args.processes))
        if args.processes:
            n = args.processes
            sides = [
                ("ppflux, 1 process", "ppflux", n, 0),
                (f"ppflux, {n} processes", "ppflux", 1, n),
            ]
        else:
            sides = [("diffusers", "diffusers", 1, 0), ("ppflux", "ppflux", 1, 0)]
        for i, (name, side, batch, processes) in enumerate(sides):
            argv = [side, str(pipe_dir), str(data), str(tmp / f"out-{i}"), str(args.steps)]
            argv += [str(args.resolution), str(batch), str(args.rank), str(args.text_tokens)]
            argv += ["1" if args.cache_latents else "0"]
            rows[name] = _row(_run(child, argv, processes, tmp / f"logs-{i}"), args.warmup)
            print(name, rows[name])
    if args.processes:
        name = f"train_{args.processes}proc_{args.resolution}"
        what = (
            f"ppflux DreamBooth LoRA training steps on 1 vs {args.processes} processes "
            f"(paddle.distributed.launch, gloo), global batch {args.processes}"
        )
        ratios = {
            f"{args.processes}_over_1_processes_steps_per_s": rows[sides[1][0]]["steps_per_s"]
            / rows[sides[0][0]]["steps_per_s"]
        }
    else:
        name = f"train_{'wide_' if args.wide else ''}{args.resolution}"
        name += "_cached" if args.cache_latents else ""
        what = "DreamBooth LoRA training steps, batch 1"
        ratios = {
            "ppflux_over_diffusers_steps_per_s": rows["ppflux"]["steps_per_s"]
            / rows["diffusers"]["steps_per_s"],
            "ppflux_over_diffusers_peak_rss": rows["ppflux"]["peak_rss_mb"]
            / rows["diffusers"]["peak_rss_mb"],
        }
    model = (
        "FLUX.1-width transformer (1+2 blocks, hidden 3072 = 24 x 128; tiny VAE and text encoders)"
        if args.wide
        else "tiny FLUX (2+2 blocks, hidden 32)"
    )
    tokens = (args.resolution // 16) ** 2
    result = {
        "benchmark": f"{what}, {model}, {args.resolution}x{args.resolution} images "
        f"({tokens} image tokens), {args.text_tokens} text tokens, LoRA rank {args.rank}, "
        f"{'latents cached' if args.cache_latents else 'a VAE encode every step'}, "
        "logit_normal, fp32 CPU, 1 thread per process; setup and warm-up steps excluded "
        "from the speed",
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": rows,
        **ratios,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_before": load_before,
            "load_avg_after": os.getloadavg(),
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = HERE / "results" / (f"{name}.json" if args.record else f"{name}.local.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(ratios))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
