"""Seconds per denoising step (transformer forward + scheduler step), ppflux vs diffusers,
same weights, same inputs, same process, CPU fp32, one thread each.

Config: 4 double + 8 single blocks, hidden 512 (8 heads x 64), T5 dim 512, 128 text tokens;
256x256 (256 image tokens) and 512x512 (1024 image tokens). Reports the median of --repeats
runs after one warm-up, and the ratio ppflux / diffusers (< 1 means ppflux is faster).

    python benchmarks/bench_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent

CONFIG = dict(patch_size=1, in_channels=64, num_layers=4, num_single_layers=8,
              attention_head_dim=64, num_attention_heads=8, joint_attention_dim=512,
              pooled_projection_dim=256, guidance_embeds=True, axes_dims_rope=[8, 28, 28])
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
            out = ref(hidden_states=torch.tensor(x), encoder_hidden_states=torch.tensor(e),
                      pooled_projections=torch.tensor(pooled), timestep=(t / 1000)[None],
                      img_ids=torch.tensor(ids), txt_ids=torch.tensor(txt),
                      guidance=torch.tensor([3.5]), return_dict=False)[0]
        return ref_sched.step(out, t, torch.tensor(x)).prev_sample

    def paddle_step():
        my_sched.set_timesteps(sigmas=np.linspace(1, 0.5, 2), mu=1.0)
        t = my_sched.timesteps[0]
        with paddle.no_grad():
            out = mine(hidden_states=paddle.to_tensor(x), encoder_hidden_states=paddle.to_tensor(e),
                       pooled_projections=paddle.to_tensor(pooled),
                       timestep=paddle.full([1], float(t) / 1000), img_ids=paddle.to_tensor(ids),
                       txt_ids=paddle.to_tensor(txt), guidance=paddle.to_tensor([3.5]),
                       return_dict=False)[0]
        return my_sched.step(out, t, paddle.to_tensor(x)).prev_sample

    return torch_step, paddle_step


def main():
    import numpy as np
    import paddle
    import torch
    from diffusers import FluxTransformer2DModel as Ref
    from ppflux import FluxTransformer2DModel

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
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
        for _ in range(args.repeats):  # interleaved, so load changes hit both
            for name, fn in (("diffusers", torch_step), ("ppflux", paddle_step)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        row = {"resolution": size, "image_tokens": n_img, "text_tokens": TEXT_TOKENS,
               "diffusers_s_per_step": round(med["diffusers"], 4),
               "ppflux_s_per_step": round(med["ppflux"], 4),
               "ppflux_over_diffusers": round(med["ppflux"] / med["diffusers"], 3),
               "max_abs_diff_step_output": diff, "repeats": args.repeats}
        rows.append(row)
        print(json.dumps(row))
    result = {"benchmark": "s/step, transformer forward + Euler step, fp32 CPU, 1 thread",
              "config": CONFIG, "rows": rows,
              "versions": {"paddle": paddle.__version__, "torch": torch.__version__,
                           "diffusers": __import__("diffusers").__version__},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_avg": os.getloadavg()},
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = HERE / "results" / "speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
