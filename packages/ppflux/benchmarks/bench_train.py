"""DreamBooth-LoRA training speed and peak RSS, ppflux vs diffusers, same tiny model, data and
arguments, each side in its own process (so peak RSS is its own).

The diffusers side is the script's training step written with diffusers/peft/torch objects
(``tests/test_train.py::reference_train``, checked against the real script by
``tests/test_train_script.py``). Steps per second count only optimisation steps after
``--warmup`` steps: model loading, prompt encoding and the first steps are excluded. Peak RSS
is the whole process's (``ru_maxrss``), loading included.

    python benchmarks/bench_train.py [--steps 12] [--warmup 2] [--resolution 32] [--rounds 5]
    python benchmarks/bench_train.py --wide [--rank 16] [--resolution 128] [--text-tokens 64]
    python benchmarks/bench_train.py --processes 2 [--steps 12] [--warmup 2]

Timing: ``--rounds R`` interleaved rounds. Each round runs each side once, a fresh process
per side, the order rotating from round to round (diffusers then ppflux, ppflux then
diffusers, ...), so that a change of the shared machine's speed during the run lands on both
sides instead of on the ratio. Each side's steps/s is reported as the median and the best
over the rounds, with every round's value; the ratio of each round (the two processes of one
round ran back to back) and the median of those ratios are reported too. The headline ratio
is the ratio of the two sides' median steps/s. Peak RSS is each side's largest over the
rounds. The 1-minute load average is recorded at the start and the end of the run and at the
start of each round.

``--wide`` trains a transformer of FLUX.1's width instead of the tiny one: hidden 3072 (24
heads x 128), 1 double + 2 single blocks (the speed benchmark's depth; FLUX.1-dev has 19 + 38
of the same blocks), RoPE axes 16/56/56, diffusers' own random initialisation; the VAE and
the text encoders stay the tiny ones (the transformer's text and pooled inputs are their
32-wide outputs), so the step is the transformer's matmuls, as when users train.

``--processes N`` measures ppflux alone, on one process and on N processes started by
``python -m paddle.distributed.launch`` (gloo), with the same global batch (N images per
micro-batch: ``--train_batch_size N`` on one process, 1 on each of the N), in interleaved
rounds the same way.

The JSON is printed and written to ``benchmarks/results/<name>.local.json``; ``--record``
writes the committed ``benchmarks/results/<name>.json`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


def _round(out: dict, warmup: int) -> dict:
    """One process's steps/s (steps after the warm-up) and peak RSS."""
    t = out["step_times"]
    measured = len(t) - warmup
    seconds = t[-1] - t[warmup - 1]
    return {
        "steps_per_s": measured / seconds,
        "measured_steps": measured,
        "seconds": seconds,
        "peak_rss_mb": out["peak_rss_mb"],
    }


def _summary(rounds: list[dict]) -> dict:
    """A side over its rounds: median and best steps/s, every round's, largest peak RSS."""
    speeds = [r["steps_per_s"] for r in rounds]
    return {
        "steps_per_s": statistics.median(speeds),
        "best_steps_per_s": max(speeds),
        "rounds_steps_per_s": speeds,
        "measured_steps": rounds[0]["measured_steps"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
    }


def _ratios(key: str, num: str, den: str, per_round: dict, rows: dict) -> dict:
    """``num`` over ``den``: the ratio of the medians (the headline), of the bests, each
    round's and their median."""
    each = [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(per_round[num], per_round[den])]
    return {
        f"{key}_steps_per_s": rows[num]["steps_per_s"] / rows[den]["steps_per_s"],
        f"{key}_best_steps_per_s": rows[num]["best_steps_per_s"] / rows[den]["best_steps_per_s"],
        f"{key}_steps_per_s_per_round": each,
        f"{key}_steps_per_s_median_of_rounds": statistics.median(each),
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
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds, a process per side each"
    )
    parser.add_argument("--record", action="store_true", help="update the committed result")
    args = parser.parse_args()
    if args.warmup < 1 or args.steps <= args.warmup:
        parser.error("need --warmup >= 1 and --steps > --warmup")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if args.processes == 1:
        parser.error("--processes must be >= 2 (one process is always measured)")
    load_before = os.getloadavg()
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
        per_round = {name: [] for name, *_ in sides}
        round_loads = []
        for r in range(args.rounds):
            round_loads.append(os.getloadavg()[0])
            order = sides[r % len(sides) :] + sides[: r % len(sides)]
            for name, side, batch, processes in order:
                i = sides.index((name, side, batch, processes))
                argv = [side, str(pipe_dir), str(data), str(tmp / f"out-{r}-{i}"), str(args.steps)]
                argv += [str(args.resolution), str(batch), str(args.rank), str(args.text_tokens)]
                argv += ["1" if args.cache_latents else "0"]
                out = _run(child, argv, processes, tmp / f"logs-{r}-{i}")
                per_round[name].append(_round(out, args.warmup))
                print(f"round {r + 1}/{args.rounds}", name, per_round[name][-1], flush=True)
        rows = {name: _summary(per_round[name]) for name, *_ in sides}
    if args.processes:
        name = f"train_{args.processes}proc_{args.resolution}"
        what = (
            f"ppflux DreamBooth LoRA training steps on 1 vs {args.processes} processes "
            f"(paddle.distributed.launch, gloo), global batch {args.processes}"
        )
        ratios = _ratios(
            f"{args.processes}_over_1_processes", sides[1][0], sides[0][0], per_round, rows
        )
    else:
        name = f"train_{'wide_' if args.wide else ''}{args.resolution}"
        name += "_cached" if args.cache_latents else ""
        what = "DreamBooth LoRA training steps, batch 1"
        ratios = _ratios("ppflux_over_diffusers", "ppflux", "diffusers", per_round, rows)
        ratios["ppflux_over_diffusers_peak_rss"] = (
            rows["ppflux"]["peak_rss_mb"] / rows["diffusers"]["peak_rss_mb"]
        )
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
        "rounds": args.rounds,
        "timing": "interleaved rounds, a fresh process per side per round, order rotating each "
        "round; steps_per_s is the median over rounds, the headline ratio the ratio of the "
        "medians; peak RSS the largest over rounds",
        "rows": rows,
        **ratios,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_before": load_before,
            "load_avg_after": os.getloadavg(),
            "load_avg_1min_at_round_start": round_loads,
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = HERE / "results" / (f"{name}.json" if args.record else f"{name}.local.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(ratios))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
