"""First Block Cache and TaylorSeer on a FLUX-shaped transformer at 28 steps: speed-up and drift
from the uncached result, ppflux and diffusers side by side, same weights and inputs.

Config: the speed benchmark's transformer (FLUX.1's width: hidden 3072, 24 heads x 128, T5
width 4096; 1 double + 2 single blocks) at 256x256 (256 image tokens) with 128 text tokens,
random weights saved once in diffusers' layout; 28 denoising steps of the dev schedule (transformer + Euler step), fp32 CPU, one thread. Each
variant runs uncached, with ``FirstBlockCacheConfig(threshold)`` and with
``TaylorSeerCacheConfig(cache_interval=5, disable_cache_before_step=3)`` (diffusers' defaults,
float32 factors). Drift: max abs difference and PSNR (over the uncached latents' range) of the
final latents against the uncached run of the same library. diffusers 0.42 runs in another
interpreter (``--ref-python``, a venv with torch and diffusers >= 0.36, e.g. the one
``tests/newest/run.py --keep DIR`` leaves).

    python benchmarks/bench_cache.py --ref-python /path/to/venv/bin/python [--threshold 0.08] [--record]

Prints the JSON and writes ``benchmarks/results/cache.local.json``; ``--record`` writes the
committed ``benchmarks/results/cache.json`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_speed import CONFIG, make_model  # noqa: E402
from bench_speed import make_inputs as make_step_inputs  # noqa: E402

STEPS = 28
IMAGE_TOKENS = 256  # 256x256
TEXT_TOKENS = 128

# The same loop for both libraries; LIB is "ppflux" or "diffusers".
LOOP = r"""
import json, sys, time
import numpy as np
lib, folder, inputs, threshold, out = sys.argv[1:6]
data = dict(np.load(inputs))
steps = int(data["steps"])
if lib == "ppflux":
    import paddle
    import ppflux
    model = ppflux.FluxTransformer2DModel.from_pretrained(folder)
    Sched = ppflux.FlowMatchEulerDiscreteScheduler
    tensor = paddle.to_tensor
    no_grad = paddle.no_grad
    configs = dict(fbc=lambda: ppflux.FirstBlockCacheConfig(threshold=float(threshold)),
                   taylorseer=lambda: ppflux.TaylorSeerCacheConfig(taylor_factors_dtype="float32"))
    to_np = lambda t: t.numpy()
else:
    import torch
    torch.set_num_threads(1)
    import diffusers
    from diffusers.hooks import FirstBlockCacheConfig, TaylorSeerCacheConfig
    model = diffusers.FluxTransformer2DModel.from_pretrained(folder).eval()
    Sched = diffusers.FlowMatchEulerDiscreteScheduler
    tensor = torch.tensor
    no_grad = torch.no_grad
    configs = dict(fbc=lambda: FirstBlockCacheConfig(threshold=float(threshold)),
                   taylorseer=lambda: TaylorSeerCacheConfig(taylor_factors_dtype=torch.float32))
    to_np = lambda t: t.detach().numpy()
inp = {k: tensor(data[k]) for k in ("encoder_hidden_states", "pooled_projections", "img_ids",
                                    "txt_ids", "guidance")}
results = {}
with no_grad():  # warm-up: one forward
    model(hidden_states=tensor(data["latents"]), timestep=tensor(np.full([1], 0.5, np.float32)),
          return_dict=False, **inp)
for variant in ("uncached", "fbc", "taylorseer"):
    if variant != "uncached":
        model.enable_cache(configs[variant]())
    sched = Sched(shift=3.0, use_dynamic_shifting=True)
    sched.set_timesteps(sigmas=data["sigmas"], mu=float(data["mu"]))
    latents = tensor(data["latents"])
    start = time.perf_counter()
    with no_grad(), model.cache_context("cond"):
        for t in sched.timesteps:
            timestep = tensor(np.full([1], float(t) / 1000, np.float32))
            pred = model(hidden_states=latents, timestep=timestep, return_dict=False, **inp)[0]
            latents = sched.step(pred, t, latents, return_dict=False)[0]
    seconds = time.perf_counter() - start
    if variant != "uncached":
        model.disable_cache()
    results[variant] = {"seconds": seconds, "latents": to_np(latents).tolist()}
json.dump(results, open(out, "w"))
"""


def make_inputs(folder: Path) -> Path:
    """Random weights (saved by ppflux in diffusers' torch layout) and inputs."""
    import ppflux

    make_model(folder)
    step_inputs = dict(
        np.load(make_step_inputs(folder / "step.npz", CONFIG, IMAGE_TOKENS, TEXT_TOKENS))
    )
    inputs = folder / "inputs.npz"
    np.savez(
        inputs,
        **step_inputs,
        sigmas=np.linspace(1.0, 1 / STEPS, STEPS),
        mu=np.float64(ppflux.calculate_shift(IMAGE_TOKENS)),
        steps=np.int64(STEPS),
    )
    return inputs


def drift(cached: np.ndarray, uncached: np.ndarray) -> dict:
    err = float(np.abs(cached - uncached).max())
    mse = float(np.mean((cached - uncached) ** 2))
    span = float(uncached.max() - uncached.min())
    psnr = float("inf") if mse == 0 else 10 * np.log10(span**2 / mse)
    return {"max_abs": err, "psnr_db": psnr}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ref-python",
        required=True,
        type=Path,
        help="python of a venv with torch and diffusers >= 0.36",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.08, help="First Block Cache threshold (default: 0.08)"
    )
    parser.add_argument("--record", action="store_true", help="write results/cache.json")
    args = parser.parse_args()
    args.out = HERE / "results" / ("cache.json" if args.record else "cache.local.json")
    load_before = os.getloadavg()[0]
    if not args.ref_python.is_file():
        parser.error(f"--ref-python {args.ref_python}: no such interpreter")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = make_inputs(tmp)
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        for lib, python in (("diffusers", str(args.ref_python)), ("ppflux", sys.executable)):
            out = tmp / f"{lib}.json"
            proc = subprocess.run(
                [
                    python,
                    "-c",
                    LOOP,
                    lib,
                    str(tmp / "transformer"),
                    str(inputs),
                    str(args.threshold),
                    str(out),
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            if proc.returncode:
                raise SystemExit(f"{lib} run failed:\n{proc.stderr[-3000:]}")
            res = json.loads(out.read_text())
            base = np.asarray(res["uncached"]["latents"])
            rows[lib] = {
                "uncached_s": res["uncached"]["seconds"],
                **{
                    v: {
                        "seconds": res[v]["seconds"],
                        "speedup": res["uncached"]["seconds"] / res[v]["seconds"],
                        **drift(np.asarray(res[v]["latents"]), base),
                    }
                    for v in ("fbc", "taylorseer")
                },
            }
            print(lib, json.dumps(rows[lib], indent=1))
    result = {
        "benchmark": f"{STEPS} steps, FLUX.1-width transformer (1+2 blocks, hidden 3072), "
        f"{IMAGE_TOKENS} image tokens, {TEXT_TOKENS} text tokens, fp32 CPU, 1 thread",
        "first_block_cache_threshold": args.threshold,
        "taylorseer": "cache_interval 5, disable_cache_before_step 3, order 1, float32 factors",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "results": rows,
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
