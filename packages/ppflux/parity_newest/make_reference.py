"""Reference side of the newest-stack parity run: torch + the newest diffusers / transformers.

Builds the tiny random components with diffusers / transformers 5 (``tests/reference.py``
builders), saves them in the diffusers layout, runs every case of ``cases.py`` and writes
``reference.npz`` + ``index.json`` + ``versions.json`` into OUT. Runs in its own venv
(``constraints.txt`` next to this file); ``run.py`` drives both sides.

    python parity_newest/make_reference.py OUT
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests"), str(HERE.parent / "src")]

import cases  # noqa: E402


def _patch_randomness():
    """Each pipeline's own noise draw and VAE posterior sample -> cases.noise / the mode."""
    import diffusers.pipelines.flux.pipeline_flux_controlnet as d_cn
    import diffusers.pipelines.flux.pipeline_flux_img2img as d_i2i
    import diffusers.pipelines.flux.pipeline_flux_inpaint as d_inp
    import torch

    def randn(shape, generator=None, device=None, dtype=None, layout=None):
        return torch.tensor(cases.noise(shape)).to(dtype or torch.float32)

    def mode(encoder_output, generator=None, sample_mode="sample"):
        return encoder_output.latent_dist.mode()

    for module in (d_i2i, d_inp, d_cn):
        module.randn_tensor = randn
        module.retrieve_latents = mode


def main(out: Path) -> None:
    import diffusers
    import reference
    import torch
    import transformers

    torch.set_num_threads(1)
    for lib in (diffusers, transformers):
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    pipe_dir = reference.build_pipeline_folder(out, True)
    reference.make_transformer(False, seed=7).save_pretrained(out / "schnell")
    reference.make_controlnet(True, seed=1).save_pretrained(out / "canny")
    reference.make_controlnet(True, seed=2, num_mode=3).save_pretrained(out / "union")
    results: dict[str, np.ndarray] = {}

    def as_torch(inputs):
        return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}

    with torch.no_grad():
        for name, (folder, inputs) in cases.model_cases().items():
            if "ControlNet" in name:
                model = diffusers.FluxControlNetModel.from_pretrained(out / folder).eval()
                blocks, singles = model(**as_torch(inputs), return_dict=False)
                for i, t in enumerate(list(blocks) + list(singles)):
                    results[f"{name}/{i}"] = t.numpy()
            else:
                model = diffusers.FluxTransformer2DModel.from_pretrained(out / folder).eval()
                results[name] = model(**as_torch(inputs), return_dict=False)[0].numpy()

    for name, (overrides, kwargs) in cases.SCHEDULER_CASES.items():
        sched = diffusers.FlowMatchEulerDiscreteScheduler(**{**reference.DEV_SCHEDULER,
                                                             **overrides})
        sched.set_timesteps(**kwargs)
        results[f"scheduler {name}/sigmas"] = sched.sigmas.numpy()
        results[f"scheduler {name}/timesteps"] = sched.timesteps.numpy()

    _patch_randomness()
    controlnets = {n: diffusers.FluxControlNetModel.from_pretrained(out / n).eval()
                   for n in ("canny", "union")}
    for name, (cls_name, cn, kwargs, lat) in cases.pipeline_cases().items():
        extra = {}
        if isinstance(cn, list):
            extra["controlnet"] = diffusers.FluxMultiControlNetModel([controlnets[n] for n in cn])
        elif cn:
            extra["controlnet"] = controlnets[cn]
        pipe = getattr(diffusers, cls_name).from_pretrained(pipe_dir, **extra)
        pipe.set_progress_bar_config(disable=True)
        if lat is not None:
            kwargs = dict(kwargs, latents=torch.tensor(lat))
        with torch.no_grad():
            results[name] = pipe(cases.PROMPT, **kwargs).images

    index = {name: f"a{i}" for i, name in enumerate(results)}
    np.savez(out / "reference.npz", **{index[n]: v for n, v in results.items()})
    (out / "index.json").write_text(json.dumps(index, indent=1))
    (out / "versions.json").write_text(json.dumps({
        "diffusers": diffusers.__version__, "transformers": transformers.__version__,
        "torch": torch.__version__, "numpy": np.__version__}))
    print(f"reference: {len(results)} arrays from diffusers {diffusers.__version__}, "
          f"transformers {transformers.__version__}, torch {torch.__version__} "
          f"in {time.perf_counter() - started:.1f} s -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
