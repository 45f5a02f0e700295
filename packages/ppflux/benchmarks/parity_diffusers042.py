"""Parity against the newest reference stack (diffusers 0.42 / transformers 5), which cannot
share a venv with ppdiffusers 0.29 (huggingface_hub >= 1 vs < 0.26), so the two sides exchange
files: ``--make`` runs in a venv with torch 2.13 + diffusers 0.42 + transformers 5 and writes a
tiny pipeline folder plus reference outputs; ``--check`` runs in the ppflux venv and compares.

    REF=/path/to/venv-with-diffusers-0.42/bin/python
    $REF benchmarks/parity_diffusers042.py --make /tmp/p042
    python benchmarks/parity_diffusers042.py --check /tmp/p042   # writes results/parity_042.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))
PROMPT = "a photo of a red cat on the moon"


def _tf_inputs():
    rng = np.random.default_rng(0)
    n_img, n_txt = 16, 8
    ids = np.zeros((n_img, 3), np.float32)
    ids[:, 1] = np.arange(n_img) // 4
    ids[:, 2] = np.arange(n_img) % 4
    return dict(hidden_states=rng.standard_normal((2, n_img, 64)).astype(np.float32),
                encoder_hidden_states=rng.standard_normal((2, n_txt, 32)).astype(np.float32),
                pooled_projections=rng.standard_normal((2, 32)).astype(np.float32),
                timestep=np.array([0.75, 0.3], np.float32), img_ids=ids,
                txt_ids=np.zeros((n_txt, 3), np.float32),
                guidance=np.array([3.5, 1.0], np.float32))


def make(root: Path):
    import diffusers
    import reference
    import torch
    import transformers
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    pipe_dir = reference.build_pipeline_folder(root, True)
    pipe = FluxPipeline.from_pretrained(pipe_dir)
    out = {}
    with torch.no_grad():
        out["transformer"] = pipe.transformer(
            **{k: torch.tensor(v) for k, v in _tf_inputs().items()}, return_dict=False)[0].numpy()
        lat = np.random.default_rng(0).standard_normal((1, 16, 64)).astype(np.float32)
        out["image"] = pipe(PROMPT, height=64, width=64, num_inference_steps=2,
                            latents=torch.tensor(lat), output_type="np",
                            max_sequence_length=48).images
    sched = FlowMatchEulerDiscreteScheduler(**reference.DEV_SCHEDULER)
    sched.set_timesteps(sigmas=np.linspace(1, 1 / 28, 28), mu=0.9)
    out["sigmas"] = sched.sigmas.numpy()
    out["timesteps"] = sched.timesteps.numpy()
    np.savez(root / "reference.npz", **out)
    (root / "versions.json").write_text(json.dumps({
        "diffusers": diffusers.__version__, "transformers": transformers.__version__,
        "torch": torch.__version__}))
    print(f"wrote {root}")


def check(root: Path):
    import paddle
    from ppflux import FlowMatchEulerDiscreteScheduler, FluxPipeline

    ref = np.load(root / "reference.npz")
    pipe = FluxPipeline.from_pretrained(root / "pipe")
    res = {}
    with paddle.no_grad():
        got = pipe.transformer(**{k: paddle.to_tensor(v) for k, v in _tf_inputs().items()},
                               return_dict=False)[0].numpy()
    res["transformer dev output"] = float(np.abs(got - ref["transformer"]).max())
    lat = np.random.default_rng(0).standard_normal((1, 16, 64)).astype(np.float32)
    img = pipe(PROMPT, height=64, width=64, num_inference_steps=2, latents=lat,
               output_type="np", max_sequence_length=48).images
    res["FluxPipeline 2 steps, image"] = float(np.abs(img - ref["image"]).max())
    import reference

    sched = FlowMatchEulerDiscreteScheduler(**reference.DEV_SCHEDULER)
    sched.set_timesteps(sigmas=np.linspace(1, 1 / 28, 28), mu=0.9)
    res["scheduler sigmas (28 steps)"] = float(np.abs(sched.sigmas.numpy() - ref["sigmas"]).max())
    res["scheduler timesteps"] = float(np.abs(sched.timesteps.numpy() - ref["timesteps"]).max())
    result = {"reference": json.loads((root / "versions.json").read_text()), "max_abs_diff": res}
    (HERE / "results" / "parity_042.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--make", type=Path)
    g.add_argument("--check", type=Path)
    a = p.parse_args()
    make(a.make) if a.make else check(a.check)
