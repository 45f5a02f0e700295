"""Seconds per denoising step (transformer forward + Euler step), ppflux vs diffusers, same
weights, same inputs, CPU fp32, one thread each, interleaved in one run.

Model: FLUX.1's width (hidden 3072 = 24 heads x 128, T5 width 4096, CLIP pooled 768, RoPE axes
16/56/56) at reduced depth (1 double + 2 single blocks, FLUX.1's 19:38 ratio), random weights
saved once in diffusers' layout; 512 text tokens (FLUX.1-dev's max_sequence_length) and
512x512 (1024 image tokens). Real FLUX.1-dev has 19 + 38 blocks of exactly these shapes, so a
step of the full model costs about 19 times this one, in the same proportions.

Each library runs in its own worker process, as a user runs it (ppflux's import-time settings
do not reach diffusers'): ``diffusers`` (``--ref-python``, default: this interpreter),
``ppflux``, and ``ppflux`` with ``PPFLUX_MALLOC_TUNE=0`` (its allocator setting off, to show
its share). The parent asks the workers for one step each in turn, ``--repeats`` times after
one warm-up step, and reports medians and ratios (< 1 means ppflux is faster) and the max abs
difference of the step outputs. The 1-minute load average is recorded before and after.

    python benchmarks/bench_speed.py [--ref-python VENV/bin/python] [--repeats 3] [--record]

Prints the JSON and writes ``benchmarks/results/speed.local.json``; ``--record`` writes the
committed ``benchmarks/results/speed.json`` instead.
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

import numpy as np

HERE = Path(__file__).resolve().parent

CONFIG = dict(
    patch_size=1,
    in_channels=64,
    num_layers=1,
    num_single_layers=2,
    attention_head_dim=128,
    num_attention_heads=24,
    joint_attention_dim=4096,
    pooled_projection_dim=768,
    guidance_embeds=True,
    axes_dims_rope=[16, 56, 56],
)
TEXT_TOKENS = 512
IMAGE_TOKENS = 1024  # 512x512


def make_model(folder: Path, config: dict = CONFIG) -> Path:
    """Random weights N(0, 0.05) from a seeded numpy generator, saved in diffusers' layout."""
    import paddle

    import ppflux

    paddle.seed(0)
    model = ppflux.FluxTransformer2DModel(**config)
    rng = np.random.default_rng(0)
    for _, p in sorted(model.named_parameters()):
        p.set_value(paddle.to_tensor((rng.standard_normal(p.shape) * 0.05).astype(np.float32)))
    model.save_pretrained(folder / "transformer", layout="torch")
    return folder / "transformer"


def image_ids(n_img: int) -> np.ndarray:
    side = int(round(n_img**0.5))
    ids = np.zeros((n_img, 3), np.float32)
    ids[:, 1] = np.arange(n_img) // side
    ids[:, 2] = np.arange(n_img) % side
    return ids


def make_inputs(path: Path, config: dict, n_img: int, n_txt: int) -> Path:
    rng = np.random.default_rng(1)
    np.savez(
        path,
        latents=rng.standard_normal((1, n_img, config["in_channels"])).astype(np.float32),
        encoder_hidden_states=rng.standard_normal((1, n_txt, config["joint_attention_dim"])).astype(
            np.float32
        ),
        pooled_projections=rng.standard_normal((1, config["pooled_projection_dim"])).astype(
            np.float32
        ),
        img_ids=image_ids(n_img),
        txt_ids=np.zeros((n_txt, 3), np.float32),
        guidance=np.full([1], 3.5, np.float32),
    )
    return path


def worker(lib: str, folder: str, inputs: str) -> int:
    """One library in this process: load, then answer ``step`` / ``save PATH`` / ``quit``."""
    data = dict(np.load(inputs))
    if lib == "ppflux":
        import paddle

        import ppflux

        model = ppflux.FluxTransformer2DModel.from_pretrained(folder)
        model.eval()
        sched = ppflux.FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
        tensor, no_grad, to_np = paddle.to_tensor, paddle.no_grad, lambda t: t.numpy()
    else:
        import diffusers
        import torch

        torch.set_num_threads(1)
        model = diffusers.FluxTransformer2DModel.from_pretrained(folder).eval()
        sched = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
        tensor, no_grad, to_np = torch.tensor, torch.no_grad, lambda t: t.detach().numpy()
    inp = {k: tensor(data[k]) for k in data if k != "latents"}

    def step():
        sched.set_timesteps(sigmas=np.linspace(1.0, 0.5, 2), mu=1.0)
        t = sched.timesteps[0]
        latents = tensor(data["latents"])
        with no_grad():
            timestep = tensor(np.full([1], float(t) / 1000, np.float32))
            pred = model(hidden_states=latents, timestep=timestep, return_dict=False, **inp)[0]
            return sched.step(pred, t, latents, return_dict=False)[0]

    print("READY", flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "step":
            start = time.perf_counter()
            step()
            print(f"TIME {time.perf_counter() - start}", flush=True)
        elif cmd == "save":
            np.save(arg, to_np(step()))
            print("SAVED", flush=True)
        else:
            break
    return 0


class Worker:
    def __init__(self, name: str, python: str, env: dict, folder: Path, inputs: Path):
        self.name = name
        self.proc = subprocess.Popen(
            [python, __file__, "--worker", name.split("/")[0], str(folder), str(inputs)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._expect("READY")

    def _expect(self, word: str) -> str:
        for line in self.proc.stdout:
            if line.startswith(word):
                return line[len(word) :].strip()
        raise SystemExit(f"worker {self.name} ended (exit {self.proc.wait()})")

    def ask(self, command: str, answer: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._expect(answer)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait()


def measure(ref_python: str, repeats: int, n_img: int, n_txt: int) -> dict:
    base_env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    base_env.pop("PPFLUX_MALLOC_TUNE", None)
    variants = {
        "diffusers": (ref_python, base_env),
        "ppflux": (sys.executable, base_env),
        "ppflux/no-malloc-tune": (sys.executable, dict(base_env, PPFLUX_MALLOC_TUNE="0")),
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = make_model(tmp)
        inputs = make_inputs(tmp / "inputs.npz", CONFIG, n_img, n_txt)
        workers = {}
        try:
            for name, (python, env) in variants.items():
                workers[name] = Worker(name, python, env, folder, inputs)
            outputs = {}
            for name, w in workers.items():  # warm-up step, and the outputs to compare
                w.ask(f"save {tmp / (name.replace('/', '_') + '.npy')}", "SAVED")
                outputs[name] = np.load(tmp / (name.replace("/", "_") + ".npy"))
            times = {name: [] for name in workers}
            for _ in range(repeats):  # interleaved, so a load change hits every variant
                for name, w in workers.items():
                    times[name].append(float(w.ask("step", "TIME")))
        finally:
            for w in workers.values():
                w.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "image_tokens": n_img,
        "text_tokens": n_txt,
        "s_per_step": {k: round(v, 3) for k, v in med.items()},
        "all_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "ppflux_over_diffusers": round(med["ppflux"] / med["diffusers"], 3),
        "ppflux_no_malloc_tune_over_diffusers": round(
            med["ppflux/no-malloc-tune"] / med["diffusers"], 3
        ),
        "max_abs_diff_step_output": float(np.abs(outputs["ppflux"] - outputs["diffusers"]).max()),
        "repeats": repeats,
    }


def _versions(ref_python: str) -> dict:
    import paddle

    ref = subprocess.run(
        [
            ref_python,
            "-c",
            "import diffusers, torch; print(diffusers.__version__, torch.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    import ppflux

    return {"ppflux": ppflux.__version__, "paddle": paddle.__version__, "diffusers": ref[0]} | {
        "torch": ref[1]
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ref-python", default=sys.executable, help="python with diffusers")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-tokens", type=int, default=IMAGE_TOKENS)
    parser.add_argument("--text-tokens", type=int, default=TEXT_TOKENS)
    parser.add_argument("--record", action="store_true", help="write results/speed.json")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker)
    load_before = os.getloadavg()[0]
    row = measure(args.ref_python, args.repeats, args.image_tokens, args.text_tokens)
    result = {
        "benchmark": "s/step, transformer forward + Euler step, fp32 CPU, 1 thread, "
        "one worker process per variant, interleaved",
        "config": CONFIG,
        "rows": [row],
        "versions": _versions(args.ref_python),
        "machine": {
            "cpu": _cpu_name(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(result, indent=2))
    out = HERE / "results" / ("speed.json" if args.record else "speed.local.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(HERE.parent)}", file=sys.stderr)
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
