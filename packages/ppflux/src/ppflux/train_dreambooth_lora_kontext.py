"""``ppflux train-dreambooth-lora-kontext``: LoRA fine-tuning of FLUX.1 Kontext, aligned with
diffusers' ``examples/dreambooth/train_dreambooth_lora_flux_kontext.py`` (same arguments,
defaults, data handling, step and output format).

Two modes, as the script:

* text-to-image (T2I): ``--instance_data_dir`` (a folder of images) and ``--instance_prompt``,
  or ``--dataset_name`` with ``--image_column`` and optionally ``--caption_column``;
* image-to-image (I2I, Kontext's editing): ``--dataset_name`` with ``--image_column`` (the
  target), ``--cond_image_column`` (the condition image) and ``--caption_column`` (the
  instruction; rows without one use ``--instance_prompt``). The condition image is encoded by
  the VAE (no noise) and appended to the noisy target as extra tokens whose position ids carry
  1 in their first coordinate; the loss is taken on the target tokens only.

``--dataset_name`` is read with ``datasets.load_dataset`` (a local folder or a saved dataset;
no hub access here). Images are resized to their aspect-ratio bucket (``--resolution`` square,
or the nearest of ``--aspect_ratio_buckets``) and flipped (``--random_flip``, the same flip for
target and condition) once, before training; batches hold images of one bucket, are formed once
(shuffled within each bucket, incomplete batches dropped) and visited in a new random order
every epoch. ``--vae_encode_mode`` ``mode`` (default) takes the VAE posterior mean, ``sample`` a
sample.

Differences, on purpose: per-image captions stay with their images (the script encodes them
in one shuffled pass and uses them by step in later passes, and does the same with
``--cache_latents``, so captions and latents meet other images); every random draw comes from
one seeded generator saved in checkpoints (exact resume); only AdamW, fp32; one process.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import numpy as np

from .train_dreambooth_lora import (
    RandomSource,
    Trainer,
    add_arguments,
    list_images,
    open_rgb,
    run_trainer,
    to_unit_chw,
)

KONTEXT_EXTRA_TARGETS = ["proj_mlp"]  # the script's list: DreamBooth's 12 plus proj_mlp


# ----------------------------------------------------------------------------- arguments
def add_kontext_arguments(p: argparse.ArgumentParser):
    add_arguments(p, data_required=False)
    p.set_defaults(output_dir="flux-kontext-lora", lora_alpha=4)
    for action in p._actions:  # the script's defaults differ from DreamBooth's here
        if action.dest == "lora_alpha":
            action.help = "LoRA alpha (scale alpha / rank); default 4, as the script"
        elif action.dest == "lora_layers":
            action.help = "comma-separated target modules (default: DreamBooth's 12 + proj_mlp)"
    a = p.add_argument
    a(
        "--vae_encode_mode",
        default="mode",
        choices=["sample", "mode"],
        help="latents from the VAE posterior: its mean (mode, default) or a sample",
    )
    a(
        "--dataset_name",
        default=None,
        help="a dataset for datasets.load_dataset (local folder, e.g. parquet files with image "
        "columns); instead of --instance_data_dir",
    )
    a("--dataset_config_name", default=None, help="the dataset's config, if it has several")
    a("--cache_dir", default=None, help="where datasets keeps its cache of --dataset_name")
    a("--image_column", default="image", help="the dataset column of the target image")
    a(
        "--cond_image_column",
        default=None,
        help="the dataset column of the condition image: I2I (editing) fine-tuning",
    )
    a(
        "--caption_column",
        default=None,
        help="the dataset column of each image's prompt (empty: --instance_prompt)",
    )
    a(
        "--validation_image",
        default=None,
        help="condition image of the validation images (I2I)",
    )
    a(
        "--aspect_ratio_buckets",
        default=None,
        help="'h1,w1;h2,w2;...': each image goes to the bucket nearest its aspect ratio and is "
        "resized to it (multiples of 16); replaces --resolution",
    )
    a(
        "--mixed_precision",
        default=None,
        choices=["no", "fp16", "bf16"],
        help="only 'no' (fp32) is offered",
    )
    a("--dataloader_num_workers", type=int, default=0, help="accepted; images load before training")
    a("--report_to", default="tensorboard", help="accepted; every step goes to train_log.jsonl")
    a("--upcast_before_saving", action="store_true", help="accepted (weights are fp32)")


def add_parser(sub):
    p = sub.add_parser(
        "train-dreambooth-lora-kontext",
        help="Kontext LoRA training, text-to-image or image editing (diffusers' recipe)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_kontext_arguments(p)
    p.set_defaults(func=lambda args: (train(args), 0)[1])


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    add_kontext_arguments(p)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- data
def parse_buckets(text: str):
    """'h1,w1;h2,w2' -> [(h1, w1), (h2, w2)]; each side a positive multiple of 16."""
    buckets = []
    for part in text.strip().split(";"):
        m = re.match(r"^\s*(\d+)\s*,\s*(\d+)\s*$", part)
        if not m:
            raise ValueError(f"--aspect_ratio_buckets: '{part}' is not 'height,width'")
        h, w = int(m.group(1)), int(m.group(2))
        if h <= 0 or w <= 0 or h % 16 or w % 16:
            raise ValueError(
                f"--aspect_ratio_buckets: {h},{w}: sides must be positive multiples of 16"
            )
        buckets.append((h, w))
    return buckets


def nearest_bucket(height, width, buckets) -> int:
    """The bucket whose aspect ratio is nearest the image's (a tie goes to the later bucket,
    as diffusers' find_nearest_bucket)."""
    best, best_metric = 0, float("inf")
    for i, (bh, bw) in enumerate(buckets):
        metric = abs(height * bw - width * bh)
        if metric <= best_metric:
            best, best_metric = i, metric
    return best


def to_pixels(image, size, flip: bool):
    """Resize to exactly ``size`` (h, w), bilinear, optionally mirror -> [-1, 1], CHW."""
    from PIL import Image

    h, w = size
    image = image.resize((w, h), Image.BILINEAR)
    if flip:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return to_unit_chw(image)


@dataclasses.dataclass
class Example:
    name: str  # where it came from, for messages
    image: object  # PIL image or path
    cond: object = None
    caption: str | None = None


def read_dataset(args) -> list[Example]:
    """The rows of ``--dataset_name``'s train split, columns checked as the script does."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - a dependency of ppflux
        raise ValueError("--dataset_name needs the 'datasets' package") from exc
    try:
        ds = datasets.load_dataset(
            args.dataset_name, args.dataset_config_name, cache_dir=args.cache_dir
        )
    except Exception as exc:  # datasets raises many types for missing or bad data
        raise ValueError(f"--dataset_name {args.dataset_name}: cannot load ({exc})") from exc
    if "train" not in ds:
        raise ValueError(f"--dataset_name {args.dataset_name}: no 'train' split ({list(ds)})")
    train = ds["train"]
    columns = train.column_names
    for flag, column in (
        ("--image_column", args.image_column),
        ("--cond_image_column", args.cond_image_column),
        ("--caption_column", args.caption_column),
    ):
        if column is not None and column not in columns:
            raise ValueError(
                f"--dataset_name {args.dataset_name}: {flag} '{column}' not found in the "
                f"dataset's columns ({', '.join(columns)})"
            )
    rows = []
    for i in range(len(train)):
        row = train[i]
        rows.append(
            Example(
                name=f"{args.dataset_name} row {i}",
                image=row[args.image_column],
                cond=row[args.cond_image_column] if args.cond_image_column else None,
                caption=row[args.caption_column] if args.caption_column else None,
            )
        )
    if not rows:
        raise ValueError(f"--dataset_name {args.dataset_name}: the train split is empty")
    return rows


# ----------------------------------------------------------------------------- training
class KontextTrainer(Trainer):
    """The DreamBooth trainer with the Kontext script's data, batches and step; ``random``,
    ``initial_lora``, ``instance_embeddings`` and ``dtype`` as :class:`Trainer`'s;
    ``prompt_embeddings`` maps caption -> (prompt_embeds, pooled) to use instead of encoding."""

    def __init__(
        self,
        args,
        random=None,
        initial_lora=None,
        instance_embeddings=None,
        dtype="float32",
        prompt_embeddings=None,
    ):
        self.prompt_embeddings = prompt_embeddings or {}
        super().__init__(args, random, initial_lora, instance_embeddings, dtype)

    @property
    def pipeline_class(self):
        from .pipelines.pipeline_flux_kontext import FluxKontextPipeline

        return FluxKontextPipeline

    @property
    def default_target_modules(self):
        from .lora import DEFAULT_TARGET_MODULES

        return DEFAULT_TARGET_MODULES + KONTEXT_EXTRA_TARGETS

    # -- arguments and data
    def _validate_args(self):
        self._check_arguments()
        a = self.args
        if (a.dataset_name is None) == (a.instance_data_dir is None):
            raise ValueError("give one of --dataset_name and --instance_data_dir")
        if a.cond_image_column is not None:
            if a.dataset_name is None:
                raise ValueError("--cond_image_column needs --dataset_name (image pairs)")
            if a.with_prior_preservation:
                raise ValueError("--with_prior_preservation is not offered with I2I training")
            if a.train_text_encoder:
                raise ValueError(
                    "--train_text_encoder is not offered with --cond_image_column (as the script)"
                )
        if a.caption_column is not None and a.dataset_name is None:
            raise ValueError("--caption_column needs --dataset_name")
        if a.validation_image is not None:
            if a.cond_image_column is None:
                raise ValueError("--validation_image is for I2I training (--cond_image_column)")
            if not Path(a.validation_image).is_file():
                raise ValueError(f"--validation_image {a.validation_image}: no such file")
        if a.mixed_precision not in (None, "no"):
            raise ValueError(f"--mixed_precision {a.mixed_precision}: only fp32 is offered")
        self.buckets = (
            parse_buckets(a.aspect_ratio_buckets)
            if a.aspect_ratio_buckets
            else [(a.resolution, a.resolution)]
        )
        if a.with_prior_preservation and len(self.buckets) > 1:
            raise ValueError("--with_prior_preservation needs a single bucket (--resolution)")
        if a.dataset_name is not None:
            rows = read_dataset(a)
        else:
            rows = [
                Example(name=str(f), image=f)
                for f in list_images(a.instance_data_dir, "--instance_data_dir")
            ]
        self.examples = [r for r in rows for _ in range(a.repeats)]
        self.has_cond = a.cond_image_column is not None
        self.has_captions = a.caption_column is not None
        for ex in self.examples:
            if self.has_cond and ex.cond is None:
                raise ValueError(f"{ex.name}: no condition image ({a.cond_image_column})")
            if not (ex.caption or a.instance_prompt):
                raise ValueError(f"{ex.name}: no caption and no --instance_prompt")
        self.instance_files = self.examples  # counted by the base trainer
        self._prepare_images()
        self._form_batches()

    def _prepare_images(self):
        """Bucket, resize and flip every image once (the flip drawn per image, in order)."""
        a = self.args
        self.pixels, self.cond_pixels, self.bucket_of = [], [], []
        for ex in self.examples:
            image = open_rgb(ex.image, ex.name)
            cond = (
                open_rgb(ex.cond, f"{ex.name} ({a.cond_image_column})") if self.has_cond else None
            )
            w, h = image.size
            bucket = nearest_bucket(h, w, self.buckets)
            flip = bool(a.random_flip and self.random.flip())
            self.pixels.append(to_pixels(image, self.buckets[bucket], flip))
            if cond is not None:
                self.cond_pixels.append(to_pixels(cond, self.buckets[bucket], flip))
            self.bucket_of.append(bucket)
        self.class_size = self.buckets[self.bucket_of[-1]]

    def _form_batches(self):
        """Per bucket: its images shuffled and cut into batches, incomplete ones dropped."""
        size = self.global_batch_size
        self.bucket_batches = []
        for bucket in range(len(self.buckets)):
            members = [i for i, b in enumerate(self.bucket_of) if b == bucket]
            if not members:
                continue
            members = [members[j] for j in self.random.permutation(len(members))]
            for first in range(0, len(members) - size + 1, size):
                self.bucket_batches.append(members[first : first + size])
        if not self.bucket_batches:
            raise ValueError(
                f"no bucket holds --train_batch_size ({size}) images: incomplete batches are "
                "dropped, as the script does"
            )

    def _check_ranks_agree(self):
        if self.world > 1:
            raise ValueError("train-dreambooth-lora-kontext runs in one process")

    def _num_batches(self):
        return len(self.bucket_batches)

    def _epoch_order(self):
        return self.random.permutation(len(self.bucket_batches))

    def _batches(self, order, start=0):
        for k in order[start:]:
            yield self._micro_batch(self.bucket_batches[int(k)])

    def _micro_batch(self, idx):
        batch = super()._micro_batch(idx)
        batch.images = [idx[r] for r in batch.rows if r < len(idx)]
        batch.cond_pixels = batch.cond_mean = batch.cond_std = None
        if self.has_cond:
            if self.cond_cache is not None:
                batch.cond_mean = self.paddle.concat([self.cond_cache[i][0] for i in batch.images])
                batch.cond_std = self.paddle.concat([self.cond_cache[i][1] for i in batch.images])
            else:
                batch.cond_pixels = np.stack([self.cond_pixels[i] for i in batch.images])
        return batch

    def _load(self, key):
        if key[0] == "instance":
            return self.pixels[key[1]]
        path = self.class_files[key[1]]
        return to_pixels(open_rgb(path, str(path)), self.class_size, False)

    cond_cache = None

    def cache_latents(self):
        super().cache_latents()
        if self.has_cond:
            paddle = self.paddle
            cache = {}
            for i, pixels in enumerate(self.cond_pixels):
                with paddle.no_grad():
                    dist = self.encode_pixels(paddle.to_tensor(pixels[None]).astype(self.dtype))
                cache[i] = (dist.mean.detach(), dist.std.detach())
            self.cond_cache = cache

    # -- the step
    def _encoded(self, batch):
        """Scaled latents of ``batch``'s pixels (or cached posterior) by --vae_encode_mode."""
        if self.args.vae_encode_mode == "sample":
            return super()._latents(batch)
        paddle, vae = self.paddle, self.pipe.vae
        with paddle.no_grad():
            if batch.pixels is None:
                mean = batch.mean
            else:
                mean = self.encode_pixels(paddle.to_tensor(batch.pixels).astype(self.dtype)).mean
            return (mean - vae.config.shift_factor) * vae.config.scaling_factor

    def _latents(self, batch):
        latents = self._encoded(batch)
        if self.has_cond:  # the script encodes the target first, then the condition
            cond = dataclasses.replace(
                batch, pixels=batch.cond_pixels, mean=batch.cond_mean, std=batch.cond_std
            )
            batch.cond_latents = self._encoded(cond)
        return latents

    def _model_tokens(self, packed, image_ids, batch):
        if not self.has_cond:
            return packed, image_ids
        from .pipelines.pipeline_flux import pack_latents, prepare_latent_image_ids

        paddle = self.paddle
        cond = batch.cond_latents
        b, c, h, w = cond.shape
        ids = prepare_latent_image_ids(h // 2, w // 2)
        ids[:, 0] = 1.0  # condition tokens: first id coordinate 1
        return (
            paddle.concat([packed, pack_latents(cond, b, c, h, w).astype(packed.dtype)], axis=1),
            paddle.concat([image_ids, ids], axis=0),
        )

    def setup(self):
        super().setup()
        self.caption_cache = {}
        if self.has_captions:
            paddle = self.paddle
            with paddle.no_grad():
                for ex in self.examples:
                    prompt = ex.caption or self.args.instance_prompt
                    if prompt in self.caption_cache:
                        continue
                    if prompt in self.prompt_embeddings:
                        pe, pooled = (
                            paddle.to_tensor(np.asarray(x)).astype(self.dtype)
                            for x in self.prompt_embeddings[prompt]
                        )
                        enc = (pe, pooled, paddle.zeros([pe.shape[1], 3]))
                    else:
                        enc = self.pipe.encode_prompt(
                            prompt, max_sequence_length=self.args.max_sequence_length
                        )
                    self.caption_cache[prompt] = enc

    def _text(self, n_inst, n_total, batch=None):
        if not self.has_captions:
            return super()._text(n_inst, n_total, batch)
        paddle, a = self.paddle, self.args
        prompts = [self.examples[i].caption or a.instance_prompt for i in batch.images]
        pes, pools = [], []
        for prompt in prompts:
            pe, pooled, text_ids = self.caption_cache[prompt]
            pes.append(pe)
            pools.append(self._clip_pooled(prompt) if a.train_text_encoder else pooled)
        if self.cls is not None:
            cpe, cpooled, _ = self.cls
            if a.train_text_encoder:
                cpooled = self._clip_pooled(a.class_prompt)
            pes.append(cpe.tile([n_total - n_inst, 1, 1]))
            pools.append(cpooled.tile([n_total - n_inst, 1]))
        return paddle.concat(pes), paddle.concat(pools), text_ids

    def _validation_inputs(self):
        if self.args.validation_image is None:
            return {}
        return {"image": open_rgb(self.args.validation_image, self.args.validation_image)}


def train(
    args,
    random: RandomSource | None = None,
    initial_lora: dict | None = None,
    instance_embeddings=None,
    dtype: str = "float32",
    prompt_embeddings: dict | None = None,
):
    return run_trainer(
        KontextTrainer(args, random, initial_lora, instance_embeddings, dtype, prompt_embeddings)
    )
