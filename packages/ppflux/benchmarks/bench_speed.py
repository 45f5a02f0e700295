"""Seconds per denoising step (transformer forward + scheduler step), ppflux vs diffusers,
same weights, same inputs, same process, CPU fp32, one thread each.

Config: 4 double + 8 single blocks, hidden 512 (8 heads x 64), T5 dim 512, 128 text tokens;
256x256 (256 image tokens) and 512x512 (1024 image tokens). Reports the median of --repeats
runs after one warm-up, and the ratio ppflux / diffusers (< 1 means ppflux is faster).

One run measures two variants, each in its own process (MKL reads its dispatch setting once):

* ``before``: ppflux 0.1.0's state: MKL's default code path (``PPFLUX_MKL_AMD_FIX=0``),
  RMSNorm through ``pow(2)``, Paddle's own CPU ``scaled_dot_product_attention``;
* ``mkl+square``: ``MKL_DEBUG_CPU_TYPE=5`` on AMD CPUs (Paddle's bundled MKL otherwise runs its
  generic kernels there) and RMSNorm through ``square``, Paddle's attention;
* ``after``: what ppflux does now: the above plus attention one head at a time on CPU.

On an Intel CPU the MKL part of the two variants is the same (the setting is AMD-only).

    python benchmarks/bench_speed.py [--repeats 5]
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent

CONFIG = dict(
    patch_size=1,
    in_channels=64,
    num_layers=4,
    num_single_layers=8,
    attention_head_dim=64,
    num_attention_heads=8,
    joint_attention_dim=512,
    pooled_projection_dim=256,
    guidance_embeds=True,
    axes_dims_rope=[8, 28, 28],
)
TEXT_TOKENS = 128


def build_steps(ref, mine, x, e, pooled, ids, txt):
    import numpy as np
    import paddle
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler as RefSched
    from ppflux import FlowMatchEulerDiscreteScheduler

    sched_cfg = dict(shift=3.0, use_dynamic_shifting=True)
    ref_sched, my_sched = RefSched(**sched_cfg), FlowMatchEulerDiscreteScheduler(**sched_cfg)

    def torch_step():
        ref_sched.set_timesteps(sigmas=np.linspace(1, 0.5, 2), mu=1.0)
        t = ref_sched.timesteps[0]
        with torch.no_grad():
            out = ref(
                hidden_states=torch.tensor(x),
                encoder_hidden_states=torch.tensor(e),
                pooled_projections=torch.tensor(pooled),
                timestep=(t / 1000)[None],
                img_ids=torch.tensor(ids),
                txt_ids=torch.tensor(txt),
                guidance=torch.tensor([3.5]),
                return_dict=False,
            )[0]
        return ref_sched.step(out, t, torch.tensor(x)).prev_sample

    def paddle_step():
        my_sched.set_timesteps(sigmas=np.linspace(1, 0.5, 2), mu=1.0)
        t = my_sched.timesteps[0]
        with paddle.no_grad():
            out = mine(
                hidden_states=paddle.to_tensor(x),
                encoder_hidden_states=paddle.to_tensor(e),
                pooled_projections=paddle.to_tensor(pooled),
                timestep=paddle.full([1], float(t) / 1000),
                img_ids=paddle.to_tensor(ids),
                txt_ids=paddle.to_tensor(txt),
                guidance=paddle.to_tensor([3.5]),
                return_dict=False,
            )[0]
        return my_sched.step(out, t, paddle.to_tensor(x)).prev_sample

    return torch_step, paddle_step


VARIANTS = {
    "before": {
        "PPFLUX_MKL_AMD_FIX": "0",
        "PPFLUX_BENCH_RMSNORM": "pow",
        "PPFLUX_BENCH_ATTENTION": "paddle",
    },
    "mkl+square": {
        "PPFLUX_MKL_AMD_FIX": "1",
        "PPFLUX_BENCH_RMSNORM": "square",
        "PPFLUX_BENCH_ATTENTION": "paddle",
    },
    "after": {
        "PPFLUX_MKL_AMD_FIX": "1",
        "PPFLUX_BENCH_RMSNORM": "square",
        "PPFLUX_BENCH_ATTENTION": "per-head",
    },
}


def _rmsnorm_pow_forward(self, x):
    """ppflux 0.1.0's RMSNorm (pow(2)), for the ``before`` variant only."""
    dtype = x.dtype
    x32 = x.astype("float32")
    variance = x32.pow(2).mean(-1, keepdim=True)
    import paddle

    x = x32 * paddle.rsqrt(variance + self.eps)
    if self.weight is not None:
        x = x.astype(self.weight.dtype) * self.weight
    return x.astype(dtype)


def measure(repeats: int) -> list[dict]:
    import numpy as np
    import ppflux  # noqa: F401  (sets the MKL dispatch before paddle's first call)
    import torch
    from diffusers import FluxTransformer2DModel as Ref
    from ppflux import FluxTransformer2DModel
    from ppflux.models import transformer_flux

    if os.environ.get("PPFLUX_BENCH_RMSNORM") == "pow":
        transformer_flux.RMSNorm.forward = _rmsnorm_pow_forward
    if os.environ.get("PPFLUX_BENCH_ATTENTION") == "paddle":  # 0.1.0: Paddle's own SDPA
        import paddle.nn.functional as F

        transformer_flux.scaled_dot_product_attention = F.scaled_dot_product_attention
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ref = Ref(**CONFIG).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ref.save_pretrained(tmp)
        mine = FluxTransformer2DModel.from_pretrained(tmp)
    rows = []
    for size in (256, 512):
        side = size // 16
        n_img = side * side
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, n_img, 64)).astype(np.float32)
        e = rng.standard_normal((1, TEXT_TOKENS, 512)).astype(np.float32)
        pooled = rng.standard_normal((1, 256)).astype(np.float32)
        ids = np.zeros((n_img, 3), np.float32)
        ids[:, 1] = np.arange(n_img) // side
        ids[:, 2] = np.arange(n_img) % side
        txt = np.zeros((TEXT_TOKENS, 3), np.float32)
        torch_step, paddle_step = build_steps(ref, mine, x, e, pooled, ids, txt)
        a, b = torch_step().numpy(), paddle_step().numpy()  # warm-up + sanity
        diff = float(np.abs(a - b).max())
        times = {"diffusers": [], "ppflux": []}
        for _ in range(repeats):  # interleaved, so load changes hit both
            for name, fn in (("diffusers", torch_step), ("ppflux", paddle_step)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        row = {
            "resolution": size,
            "image_tokens": n_img,
            "text_tokens": TEXT_TOKENS,
            "diffusers_s_per_step": round(med["diffusers"], 4),
            "ppflux_s_per_step": round(med["ppflux"], 4),
            "ppflux_over_diffusers": round(med["ppflux"] / med["diffusers"], 3),
            "max_abs_diff_step_output": diff,
            "repeats": repeats,
            "MKL_DEBUG_CPU_TYPE": os.environ.get("MKL_DEBUG_CPU_TYPE"),
            "rmsnorm": os.environ.get("PPFLUX_BENCH_RMSNORM", "square"),
            "attention": os.environ.get("PPFLUX_BENCH_ATTENTION", "per-head"),
        }
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # child process: one variant, rows as JSON on stdout
        print("ROWS " + json.dumps(measure(args.repeats)), flush=True)
        return 0
    rows = []
    for variant, env in VARIANTS.items():
        child_env = {k: v for k, v in os.environ.items() if k != "MKL_DEBUG_CPU_TYPE"}
        child_env.update(env)
        out = subprocess.run(
            [sys.executable, __file__, "--variant", variant, "--repeats", str(args.repeats)],
            env=child_env,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        for row in json.loads(out.split("ROWS ", 1)[1]):
            row["variant"] = variant
            rows.append(row)
            print(json.dumps(row), flush=True)
    import paddle
    import torch

    result = {
        "benchmark": "s/step, transformer forward + Euler step, fp32 CPU, 1 thread",
        "config": CONFIG,
        "variants": VARIANTS,
        "rows": rows,
        "versions": {
            "paddle": paddle.__version__,
            "torch": torch.__version__,
            "diffusers": __import__("diffusers").__version__,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg": os.getloadavg(),
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = HERE / "results" / "speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
