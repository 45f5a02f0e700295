"""Kontext LoRA training vs a torch reference of diffusers' train_dreambooth_lora_flux_kontext.py.

The reference below is that script's data handling and training step written against diffusers'
and peft's own objects (FluxPipeline's static _pack_latents / _prepare_latent_image_ids /
_unpack_latents, which FluxKontextPipeline shares; training_utils' timestep density and loss
weighting; get_scheduler; torch AdamW and clip_grad_norm_; peft LoraConfig with the script's
13 targets and lora_alpha 4). As the script: images resized to their bucket and flipped once
before training, batches formed once per bucket (shuffled, incomplete ones dropped) and visited
in a new order every epoch; the condition image's latents (VAE mode or sample, no noise) are
appended as extra tokens whose ids have 1 in the first coordinate, the loss is on the target
tokens. Both sides take their draws from the same seeded numpy source in the script's order and
start from the same (torch-initialised) LoRA; prompt embeddings are the reference's (as in
test_train.py). Tolerances are test_train.py's, for the reasons given there.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train import (  # noqa: F401  (fixture)
    _check_three_steps,
    _images,
    lora_differences,
    script_density,
    torch_timestep_features,
)

from ppflux.lora import DEFAULT_TARGET_MODULES
from ppflux.train_dreambooth_lora import RandomSource
from ppflux.train_dreambooth_lora_kontext import parse_args, train

RES = 32
SIZES = ((48, 40), (40, 56), (64, 64), (56, 32), (32, 48))


def _pil(seed, size):
    w, h = size
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr)


def make_pairs_dataset(folder: Path, n=3, captions=None, cond=True, sizes=SIZES):
    """A local dataset (parquet, image columns) of n target/condition pairs with captions;
    returns the rows as (target, condition or None, caption)."""
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    targets = [_pil(i, sizes[i % len(sizes)]) for i in range(n)]
    conds = [_pil(100 + i, sizes[(i + 1) % len(sizes)]) for i in range(n)]
    captions = captions or ["make it sks" for _ in range(n)]
    data = {"target": targets, "text": captions}
    features = {"target": datasets.Image(), "text": datasets.Value("string")}
    if cond:
        data["source"] = conds
        features["source"] = datasets.Image()
    ds = datasets.Dataset.from_dict(data, features=datasets.Features(features))
    ds.to_parquet(str(folder / "train.parquet"))
    return [(t, c if cond else None, p) for t, c, p in zip(targets, conds, captions)]


def _args(pipe_dir, out, data=None, dataset=None, **kw):
    argv = ["--pretrained_model_name_or_path", str(pipe_dir), "--output_dir", str(out)]
    if dataset is not None:
        argv += ["--dataset_name", str(dataset), "--image_column", "target"]
        argv += ["--cache_dir", str(Path(out).parent / "datasets-cache")]
    if data is not None:
        argv += ["--instance_data_dir", str(data)]
    argv += ["--resolution", str(RES), "--max_sequence_length", "16", "--seed", "0"]
    argv += ["--train_batch_size", "1", "--checkpointing_steps", "1000"]
    for k, v in kw.items():
        argv += [f"--{k}"] + ([] if v is True else [str(v)])
    return parse_args(argv)


def _nearest(h, w, buckets):
    best, metric = 0, float("inf")
    for i, (bh, bw) in enumerate(buckets):
        m = abs(h * bw - w * bh)
        if m <= metric:
            best, metric = i, m
    return best


def _prep(image, size, flip):
    """The script's paired_transform on PIL: Resize((h, w)) bilinear (the crop is then the
    whole image), flip, ToTensor, Normalize(0.5, 0.5)."""
    h, w = size
    image = image.convert("RGB").resize((w, h), Image.BILINEAR)
    if flip:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return (np.asarray(image, np.float32) / 255.0 - 0.5) / 0.5


def reference_train(pipe_dir, args, rows, steps, dtype=torch.float32):
    """rows: (target PIL, condition PIL or None, prompt). Returns (micro-batch losses, final
    LoRA, initial LoRA, {prompt: (prompt_embeds, pooled)})."""
    import diffusers.training_utils as tu
    from diffusers import FluxPipeline
    from diffusers.optimization import get_scheduler
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(0)
    pipe = FluxPipeline.from_pretrained(pipe_dir)
    transformer, vae = pipe.transformer, pipe.vae
    for m in (transformer, vae, pipe.text_encoder, pipe.text_encoder_2):
        m.requires_grad_(False)
    transformer.add_adapter(
        LoraConfig(
            r=args.rank,
            lora_alpha=args.lora_alpha,
            init_lora_weights="gaussian",
            target_modules=DEFAULT_TARGET_MODULES + ["proj_mlp"],
        )
    )
    init = {
        f"transformer.{k}": v.detach().numpy().copy()
        for k, v in get_peft_model_state_dict(transformer).items()
    }
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": params, "lr": args.learning_rate}],
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
    )
    lr_scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=args.lr_warmup_steps,
        num_training_steps=steps,
    )
    sched = copy.deepcopy(pipe.scheduler)
    embeds = {}
    with torch.no_grad():
        for _, _, prompt in rows:
            if prompt not in embeds:
                pe, pooled, text_ids = pipe.encode_prompt(
                    prompt, prompt_2=None, max_sequence_length=args.max_sequence_length
                )
                embeds[prompt] = (pe, pooled)
    recorded = {k: (v[0].numpy(), v[1].numpy()) for k, v in embeds.items()}
    for m in (transformer, vae):
        m.to(dtype)
    embeds = {k: (v[0].to(dtype), v[1].to(dtype)) for k, v in embeds.items()}
    rand = RandomSource(args.seed)
    buckets = [(args.resolution, args.resolution)]
    if args.aspect_ratio_buckets:
        buckets = [
            tuple(int(x) for x in b.split(",")) for b in args.aspect_ratio_buckets.split(";")
        ]
    # the dataset: every image to its bucket, flipped once
    pixels, conds, bucket_of = [], [], []
    for target, cond, _ in rows:
        bucket = _nearest(target.height, target.width, buckets)
        flip = args.random_flip and rand.flip()
        pixels.append(_prep(target, buckets[bucket], flip))
        conds.append(None if cond is None else _prep(cond, buckets[bucket], flip))
        bucket_of.append(bucket)
    # the bucket batch sampler: shuffled within each bucket once, drop_last
    batches = []
    for bucket in range(len(buckets)):
        members = [i for i, b in enumerate(bucket_of) if b == bucket]
        if not members:
            continue
        members = [members[j] for j in rand.permutation(len(members))]
        size = args.train_batch_size
        batches += [members[f : f + size] for f in range(0, len(members) - size + 1, size)]
    vsf = pipe.vae_scale_factor

    def get_sigmas(timesteps, n_dim=4):
        idx = [(sched.timesteps == t).nonzero().item() for t in timesteps]
        sigma = sched.sigmas[idx].flatten()
        while sigma.ndim < n_dim:
            sigma = sigma.unsqueeze(-1)
        return sigma

    def encode(px):
        dist = vae.encode(torch.tensor(np.stack(px)).permute(0, 3, 1, 2).to(dtype)).latent_dist
        if args.vae_encode_mode == "sample":
            x = dist.mean + dist.std * torch.tensor(rand.normal(dist.mean.shape)).to(dtype)
        else:
            x = dist.mode()
        return (x - vae.config.shift_factor) * vae.config.scaling_factor

    losses, micro, done = [], 0, 0
    transformer.train()
    has_cond = rows[0][1] is not None
    while done < steps:
        order = rand.permutation(len(batches))
        for n, k in enumerate(order):
            idx = batches[k]
            with torch.no_grad():
                model_input = encode([pixels[i] for i in idx])
                if has_cond:
                    cond_input = encode([conds[i] for i in idx])
            b, c, h, w = model_input.shape
            ids = FluxPipeline._prepare_latent_image_ids(b, h // 2, w // 2, "cpu", torch.float32)
            if has_cond:
                cond_ids = FluxPipeline._prepare_latent_image_ids(
                    b, cond_input.shape[2] // 2, cond_input.shape[3] // 2, "cpu", torch.float32
                )
                cond_ids[..., 0] = 1
                ids = torch.cat([ids, cond_ids], dim=0)
            noise = torch.tensor(rand.normal([b, c, h, w])).to(dtype)
            u = script_density(rand, args, b)
            indices = (u * sched.config.num_train_timesteps).long()
            timesteps = sched.timesteps[indices]
            sigmas = get_sigmas(timesteps).to(dtype)
            noisy = (1.0 - sigmas) * model_input + sigmas * noise
            packed = FluxPipeline._pack_latents(noisy, b, c, h, w)
            n_tokens = packed.shape[1]
            if has_cond:
                packed = torch.cat(
                    [packed, FluxPipeline._pack_latents(cond_input, b, c, *cond_input.shape[2:])],
                    dim=1,
                )
            prompts = [rows[i][2] for i in idx]
            pred = transformer(
                hidden_states=packed,
                timestep=timesteps / 1000,
                guidance=torch.tensor([args.guidance_scale]).expand(b),
                pooled_projections=torch.cat([embeds[p][1] for p in prompts]),
                encoder_hidden_states=torch.cat([embeds[p][0] for p in prompts]),
                txt_ids=text_ids,
                img_ids=ids,
                return_dict=False,
            )[0]
            pred = FluxPipeline._unpack_latents(pred[:, :n_tokens], h * vsf, w * vsf, vsf)
            weighting = tu.compute_loss_weighting_for_sd3(args.weighting_scheme, sigmas)
            target = noise - model_input
            loss = torch.mean(
                (weighting.float() * (pred.float() - target.float()) ** 2).reshape(b, -1), 1
            ).mean()
            (loss / args.gradient_accumulation_steps).backward()
            losses.append(loss.item())
            micro += 1
            if micro == args.gradient_accumulation_steps or n + 1 == len(order):
                torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
                micro, done = 0, done + 1
                if done == steps:
                    break
    final = {
        f"transformer.{k}": v.detach().numpy().copy()
        for k, v in get_peft_model_state_dict(transformer).items()
    }
    return losses, final, init, recorded


def _run_both(pipe_dir, tmp_path, dtype=torch.float32, t2i=False, n=3, **kw):
    if t2i:
        folder = _images(tmp_path / "data", n=n)
        rows = [(Image.open(p), None, "photo of sks dog") for p in sorted(folder.glob("*.png"))]
        args = _args(pipe_dir, tmp_path / "out", data=folder, instance_prompt="photo of sks dog",
                     max_train_steps=3, lr_warmup_steps=1, learning_rate=1e-3, **kw)  # fmt: skip
    else:
        rows = make_pairs_dataset(tmp_path / "pairs", n=n)
        args = _args(pipe_dir, tmp_path / "out", dataset=tmp_path / "pairs",
                     cond_image_column="source", caption_column="text", max_train_steps=3,
                     lr_warmup_steps=1, learning_rate=1e-3, **kw)  # fmt: skip
    ref_losses, ref_final, init, embeds = reference_train(pipe_dir, args, rows, 3, dtype=dtype)
    prompt = rows[0][2]
    trainer = train(
        args,
        random=RandomSource(0),
        initial_lora=init,
        instance_embeddings=embeds[prompt] if t2i else None,
        prompt_embeddings=None if t2i else embeds,
        dtype=str(dtype).replace("torch.", ""),
    )
    loss_rel, overall, worst, key, mine = lora_differences(
        trainer, ref_losses, ref_final, tmp_path / "out"
    )
    assert any(".proj_mlp." in k for k in mine)  # the script's 13th target
    return loss_rel, overall, worst, key


CASES = {
    # I2I: condition tokens, VAE mode, per-row captions
    "i2i-logit_normal-accum2": dict(weighting_scheme="logit_normal", gradient_accumulation_steps=2),
    # I2I, VAE sample (two posterior draws per step), batches of 2 from 5 pairs (one dropped)
    "i2i-sample-cosmap-batch2-linear": dict(
        n=5,
        vae_encode_mode="sample",
        weighting_scheme="cosmap",
        train_batch_size=2,
        lr_scheduler="linear",
    ),
    # T2I from a folder, two aspect-ratio buckets
    "t2i-buckets-none": dict(t2i=True, n=4, aspect_ratio_buckets="32,32;32,48;48,32"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_three_steps_match_reference(dev_pipe_dir, tmp_path, case, parity):
    loss_rel, overall, worst, key = _run_both(dev_pipe_dir, tmp_path, **CASES[case])
    _check_three_steps(parity, f"train kontext {case}", loss_rel, overall, worst, key)


@pytest.mark.usefixtures("torch_timestep_features")
def test_three_steps_match_reference_float64(dev_pipe_dir, tmp_path, parity):
    loss_rel, overall, worst, key = _run_both(
        dev_pipe_dir, tmp_path, torch.float64, **CASES["i2i-sample-cosmap-batch2-linear"]
    )
    name = "train kontext float64 i2i-sample-cosmap-batch2-linear"
    parity(f"{name}: losses (relative)", loss_rel, 1e-5)
    parity(f"{name}: LoRA after 3 steps (relative, worst tensor)", worst, 1e-5)
    assert loss_rel < 1e-5
    assert worst < 1e-5, (worst, key)


def test_output_loads_in_diffusers_and_validation_runs(dev_pipe_dir, tmp_path):
    from diffusers import FluxPipeline as Ref

    make_pairs_dataset(tmp_path / "pairs", n=2)
    _pil(7, (40, 40)).save(tmp_path / "val.png")
    args = _args(dev_pipe_dir, tmp_path / "out", dataset=tmp_path / "pairs",
                 cond_image_column="source", caption_column="text", max_train_steps=2,
                 cache_latents=True, random_flip=True, validation_prompt="make it sks",
                 validation_image=tmp_path / "val.png", num_validation_images=1,
                 validation_epochs=1)  # fmt: skip
    trainer = train(args)
    assert all(np.isfinite(e["loss"]) for e in trainer.history)
    assert sorted(p.name for p in (tmp_path / "out" / "validation").iterdir())
    ref = Ref.from_pretrained(dev_pipe_dir)
    ref.load_lora_weights(tmp_path / "out", weight_name="pytorch_lora_weights.safetensors")
    assert any("proj_mlp.lora" in k for k, _ in ref.transformer.named_parameters())


def test_bad_input(dev_pipe_dir, tmp_path):
    make_pairs_dataset(tmp_path / "pairs", n=2)
    pairs = tmp_path / "pairs"

    def refused(match, **kw):
        with pytest.raises(ValueError, match=match):
            train(_args(dev_pipe_dir, tmp_path / "o", **kw))
        assert not (tmp_path / "o" / "pytorch_lora_weights.safetensors").exists()

    refused(r"--cond_image_column 'edit' not found in the dataset's columns \(",
            dataset=pairs, cond_image_column="edit", caption_column="text")  # fmt: skip
    refused(r"--image_column 'image' not found", dataset=pairs,
            cond_image_column="source", caption_column="text", image_column="image")  # fmt: skip
    refused("--caption_column 'prompt' not found", dataset=pairs, caption_column="prompt")
    refused("no caption and no --instance_prompt", dataset=pairs)
    refused("--cond_image_column needs --dataset_name", data=_images(tmp_path / "d", n=1),
            instance_prompt="x", cond_image_column="source")  # fmt: skip
    refused("give one of --dataset_name and --instance_data_dir", instance_prompt="x")
    refused("--with_prior_preservation is not offered with I2I", dataset=pairs,
            cond_image_column="source", caption_column="text", with_prior_preservation=True,
            class_data_dir=tmp_path / "c", class_prompt="x")  # fmt: skip
    refused("--train_text_encoder is not offered with --cond_image_column", dataset=pairs,
            cond_image_column="source", caption_column="text", train_text_encoder=True)  # fmt: skip
    refused("no bucket holds --train_batch_size", dataset=pairs, cond_image_column="source",
            caption_column="text", train_batch_size=4)  # fmt: skip
    refused("multiples of 16", dataset=pairs, caption_column="text",
            aspect_ratio_buckets="32,40")  # fmt: skip
    refused("cannot load", dataset=tmp_path / "missing", caption_column="text")
    refused("--validation_image .*: no such file", dataset=pairs, cond_image_column="source",
            caption_column="text", validation_image=tmp_path / "nope.png")  # fmt: skip
    refused("only fp32", dataset=pairs, caption_column="text", mixed_precision="bf16")


def test_help_explains_without_paddle():
    code = (
        "import sys\nfrom ppflux.cli import main\n"
        "try:\n    main(['train-dreambooth-lora-kontext', '--help'])\n"
        "except SystemExit as exc:\n    print('EXIT', exc.code)\n"
        "print('HEAVY', sorted(m for m in ('paddle', 'torch') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    out = proc.stdout
    assert "EXIT 0" in out and "HEAVY []" in out, proc.stderr[-2000:]
    for flag in ("--cond_image_column", "--vae_encode_mode", "--aspect_ratio_buckets",
                 "--caption_column", "condition image"):  # fmt: skip
        assert flag in out


def test_resume_is_exact(dev_pipe_dir, tmp_path):
    """Batches formed at start-up, each epoch's batch order and the draws all resume: 4 steps
    in one run equal 2 + 2 steps resumed from the checkpoint (I2I, VAE sample)."""
    make_pairs_dataset(tmp_path / "pairs", n=3)
    common = dict(
        dataset=tmp_path / "pairs",
        cond_image_column="source",
        caption_column="text",
        vae_encode_mode="sample",
        weighting_scheme="logit_normal",
    )
    train(_args(dev_pipe_dir, tmp_path / "full", max_train_steps=4, **common))
    train(_args(dev_pipe_dir, tmp_path / "split", max_train_steps=2, checkpointing_steps=2,
                **common))  # fmt: skip
    train(_args(dev_pipe_dir, tmp_path / "split", max_train_steps=4, checkpointing_steps=2,
                resume_from_checkpoint="latest", **common))  # fmt: skip
    from ppflux.safetensors_io import SafeOpen

    with (
        SafeOpen(tmp_path / "full" / "pytorch_lora_weights.safetensors") as a,
        SafeOpen(tmp_path / "split" / "pytorch_lora_weights.safetensors") as b,
    ):
        assert sorted(a.keys()) == sorted(b.keys())
        for k in a.keys():
            np.testing.assert_array_equal(a.get(k), b.get(k))


def test_prior_preservation_text_to_image(dev_pipe_dir, tmp_path):
    """T2I with prior preservation (the script stacks text ids along the batch and stops):
    class images fill the class rows, the run finishes with finite losses."""
    data = _images(tmp_path / "data", n=2)
    classes = _images(tmp_path / "class", n=2, sizes=((32, 32),))
    args = _args(dev_pipe_dir, tmp_path / "out", data=data, instance_prompt="photo of sks dog",
                 max_train_steps=2, with_prior_preservation=True, class_data_dir=classes,
                 class_prompt="photo of a dog", num_class_images=2)  # fmt: skip
    trainer = train(args)
    assert len(trainer.history) == 2
    assert all(np.isfinite(e["loss"]) for e in trainer.history)
    assert (tmp_path / "out" / "pytorch_lora_weights.safetensors").is_file()
