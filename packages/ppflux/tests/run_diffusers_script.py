"""Run diffusers' own ``train_dreambooth_lora_flux.py`` and record what ppflux needs to redo it.

    python run_diffusers_script.py SCRIPT RECORD_DIR -- <the script's arguments>

Runs the unmodified script's ``main()`` in this interpreter (torch, diffusers, transformers,
peft, accelerate, torchvision; ppflux and Paddle are not needed, so this can run in another
venv, e.g. one with today's diffusers). Nothing in the script is changed; from outside it
records, in call order:

* every random draw the training loop makes (``torch.randn``: the VAE posterior sample,
  ``torch.randn_like``: the noise, ``torch.normal`` / ``torch.rand``: the timestep density),
  taken after the LoRA adapters are added, so ppflux can replay the same draws;
* the initial LoRA weights (peft's gaussian init, torch RNG) right after ``add_adapter``;
* every sample the data loader hands over (its shuffled order, as pixel tensors);
* the instance-prompt embeddings of the script's first ``encode_prompt`` call;
* every micro-batch loss passed to ``accelerator.backward`` and every gradient norm returned
  by ``accelerator.clip_grad_norm_``.

For the Kontext script (``train_dreambooth_lora_flux_kontext.py``, recognised by its
``BucketBatchSampler``) it also records the dataset's prepared images (target and condition,
in the dataset's order), the batches the sampler forms and, for every pass over them once
training has begun (``Accelerator.init_trackers``), the batches in the order it hands them
over.

The script writes its LoRA to ``--output_dir`` as usual. RECORD_DIR gets ``record.json`` and
``record.npz``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))


def min_version(script_text: str) -> str | None:
    m = re.search(r'check_min_version\("([^"]+)"\)', script_text)
    return m.group(1) if m else None


def record_bucket_batches(module, rec, state):
    """The Kontext script's data order: prepared images, batches, per-epoch batch order."""
    import accelerate

    sampler = module.BucketBatchSampler
    real_init, real_iter = sampler.__init__, sampler.__iter__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        rec["batches"] = [[int(i) for i in b] for b in self.batches]
        rec["dataset"] = [img.numpy().copy() for img, _ in self.dataset.pixel_values]
        rec["cond_dataset"] = [img.numpy().copy() for img, _ in self.dataset.cond_pixel_values]

    def iterate(self):
        order = []
        if state.get("training"):
            rec["epochs"].append(order)
        for batch in real_iter(self):
            order.append([int(i) for i in batch])
            yield batch

    sampler.__init__, sampler.__iter__ = init, iterate

    real_trackers = accelerate.Accelerator.init_trackers

    def init_trackers(self, *args, **kwargs):
        state["training"] = True  # the script's last call before its training loop
        return real_trackers(self, *args, **kwargs)

    accelerate.Accelerator.init_trackers = init_trackers


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    script, record_dir = Path(argv[0]), Path(argv[1])
    script_args = argv[3:] if argv[2:3] == ["--"] else argv[2:]

    import torch

    torch.set_num_threads(1)
    import torchvision_shim

    torchvision_shim.import_torchvision()
    import accelerate
    import diffusers
    import numpy as np
    import transformers
    from peft.utils import get_peft_model_state_dict

    rec = {"draws": [], "samples": [], "losses": [], "grad_norms": [], "init": {}, "embeds": None}
    rec.update({"batches": None, "epochs": [], "dataset": [], "cond_dataset": []})
    state = {"on": False}

    def recording(name, real):
        def wrapped(*args, **kwargs):
            out = real(*args, **kwargs)
            if state["on"]:
                rec["draws"].append((name, out.detach().cpu().numpy().copy()))
            return out

        return wrapped

    for name in ("randn", "randn_like", "normal", "rand"):
        setattr(torch, name, recording(name, getattr(torch, name)))

    def after_add_adapter(real, prefix):
        def wrapped(self, *args, **kwargs):
            out = real(self, *args, **kwargs)
            rec["init"].update(
                {
                    f"{prefix}.{k}": v.detach().cpu().numpy().copy()
                    for k, v in get_peft_model_state_dict(self).items()
                }
            )
            state["on"] = True
            return out

        return wrapped

    from diffusers.loaders.peft import PeftAdapterMixin as DiffusersPeft
    from transformers.integrations.peft import PeftAdapterMixin as TransformersPeft

    DiffusersPeft.add_adapter = after_add_adapter(DiffusersPeft.add_adapter, "transformer")
    TransformersPeft.add_adapter = after_add_adapter(TransformersPeft.add_adapter, "text_encoder")

    real_backward = accelerate.Accelerator.backward

    def backward(self, loss, **kwargs):
        rec["losses"].append(float(loss.detach()))
        return real_backward(self, loss, **kwargs)

    accelerate.Accelerator.backward = backward

    real_clip = accelerate.Accelerator.clip_grad_norm_

    def clip_grad_norm_(self, parameters, *args, **kwargs):
        norm = real_clip(self, parameters, *args, **kwargs)
        rec["grad_norms"].append(None if norm is None else float(norm))
        return norm

    accelerate.Accelerator.clip_grad_norm_ = clip_grad_norm_

    spec = importlib.util.spec_from_file_location("train_dreambooth_lora_flux", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # runs the script's check_min_version

    real_getitem = module.DreamBoothDataset.__getitem__

    def getitem(self, index):
        example = real_getitem(self, index)
        rec["samples"].append(example["instance_images"].numpy().copy())
        return example

    module.DreamBoothDataset.__getitem__ = getitem
    if hasattr(module, "BucketBatchSampler"):
        record_bucket_batches(module, rec, state)

    real_encode = module.encode_prompt

    def encode_prompt(*args, **kwargs):
        out = real_encode(*args, **kwargs)
        if rec["embeds"] is None:
            rec["embeds"] = (
                out[0].detach().float().numpy().copy(),
                out[1].detach().float().numpy().copy(),
            )
        return out

    module.encode_prompt = encode_prompt

    args = module.parse_args(script_args)
    module.args = args  # the script's dataset reads the module-level ``args``
    module.main(args)

    record_dir.mkdir(parents=True, exist_ok=True)
    arrays = {f"draw_{i}": a for i, (_, a) in enumerate(rec["draws"])}
    arrays.update({f"sample_{i}": a for i, a in enumerate(rec["samples"])})
    arrays.update({f"init:{k}": v for k, v in rec["init"].items()})
    arrays.update({f"dataset_{i}": a for i, a in enumerate(rec["dataset"])})
    arrays.update({f"cond_dataset_{i}": a for i, a in enumerate(rec["cond_dataset"])})
    if rec["embeds"] is not None:
        arrays["prompt_embeds"], arrays["pooled_prompt_embeds"] = rec["embeds"]
    np.savez(record_dir / "record.npz", **arrays)
    (record_dir / "record.json").write_text(
        json.dumps(
            {
                "losses": rec["losses"],
                "grad_norms": rec["grad_norms"],
                "draw_kinds": [n for n, _ in rec["draws"]],
                "n_samples": len(rec["samples"]),
                "batches": rec["batches"],
                "epochs": rec["epochs"],
                "n_dataset": len(rec["dataset"]),
                "script": str(script),
                "script_min_version": min_version(script.read_text()),
                "diffusers": diffusers.__version__,
                "transformers": transformers.__version__,
                "accelerate": accelerate.__version__,
                "torch": torch.__version__,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
