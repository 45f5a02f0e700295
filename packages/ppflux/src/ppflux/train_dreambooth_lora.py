"""``ppflux train-dreambooth-lora``: DreamBooth LoRA fine-tuning of FLUX.1, aligned with
diffusers' ``examples/dreambooth/train_dreambooth_lora_flux.py`` (same arguments, defaults,
loss, timestep sampling, LoRA targets and output format).

Differences, on purpose: prior preservation works (upstream concatenates ``text_ids`` along the
batch axis and crashes); every random draw goes through one seeded ``numpy`` Generator whose
state is saved in checkpoints, so resuming is exact; 8-bit Adam / Prodigy are not offered.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np

from ._distributed import sum_over_ranks
from ._optim import TorchAdamW, clip_grad_norm

logger = logging.getLogger("ppflux.train")

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
SCHEMES = ["sigma_sqrt", "logit_normal", "mode", "cosmap", "none"]


# ----------------------------------------------------------------------------- arguments
def add_arguments(p: argparse.ArgumentParser, data_required: bool = True):
    """The script's arguments; ``data_required=False`` leaves ``--instance_data_dir`` and
    ``--instance_prompt`` optional (for variants that read a dataset with captions instead)."""
    a = p.add_argument
    a(
        "--pretrained_model_name_or_path",
        required=True,
        help="FLUX pipeline folder (diffusers layout)",
    )
    a("--instance_data_dir", required=data_required, help="folder of instance images")
    a(
        "--instance_prompt",
        required=data_required,
        help="prompt with the identifier, e.g. 'photo of sks dog'",
    )
    a("--class_data_dir", default=None)
    a("--class_prompt", default=None)
    a("--with_prior_preservation", action="store_true")
    a("--prior_loss_weight", type=float, default=1.0)
    a("--num_class_images", type=int, default=100)
    a("--repeats", type=int, default=1)
    a("--max_sequence_length", type=int, default=512)
    a("--validation_prompt", default=None)
    a("--num_validation_images", type=int, default=4)
    a("--validation_epochs", type=int, default=50)
    a("--rank", type=int, default=4)
    a("--lora_alpha", type=int, default=None, help="default: equal to --rank (scale 1)")
    a("--lora_dropout", type=float, default=0.0)
    a(
        "--lora_layers",
        default=None,
        help="comma-separated target modules (default: the script's list)",
    )
    a("--output_dir", default="flux-dreambooth-lora")
    a("--seed", type=int, default=None)
    a("--resolution", type=int, default=512)
    a("--center_crop", action="store_true")
    a("--random_flip", action="store_true")
    a(
        "--cache_latents",
        action="store_true",
        help="VAE-encode every training image once before training (its crop/flip drawn then) "
        "and sample each step from the cached posterior, instead of encoding every step",
    )
    a(
        "--vae_encode_backend",
        choices=("auto", "inference", "eager"),
        default="auto",
        help="how the frozen VAE encodes training images: 'inference' exports the encoder once "
        "and runs it by Paddle Inference (CPU, float32; oneDNN from 48x48 pixels), 'eager' calls "
        "the dygraph VAE; 'auto' (default) takes 'inference' where it applies, else 'eager'",
    )
    a("--train_text_encoder", action="store_true", help="also LoRA-train CLIP (not T5)")
    a("--train_batch_size", type=int, default=4)
    a("--sample_batch_size", type=int, default=4)
    a("--num_train_epochs", type=int, default=1)
    a("--max_train_steps", type=int, default=None)
    a("--checkpointing_steps", type=int, default=500)
    a("--checkpoints_total_limit", type=int, default=None)
    a("--resume_from_checkpoint", default=None, help="a checkpoint folder or 'latest'")
    a("--gradient_accumulation_steps", type=int, default=1)
    a("--gradient_checkpointing", action="store_true")
    a("--learning_rate", type=float, default=1e-4)
    a("--guidance_scale", type=float, default=3.5)
    a("--text_encoder_lr", type=float, default=5e-6)
    a("--scale_lr", action="store_true")
    a(
        "--lr_scheduler",
        default="constant",
        choices=[
            "linear",
            "cosine",
            "cosine_with_restarts",
            "polynomial",
            "constant",
            "constant_with_warmup",
        ],
    )
    a("--lr_warmup_steps", type=int, default=500)
    a("--lr_num_cycles", type=int, default=1)
    a("--lr_power", type=float, default=1.0)
    a("--weighting_scheme", default="none", choices=SCHEMES)
    a("--logit_mean", type=float, default=0.0)
    a("--logit_std", type=float, default=1.0)
    a("--mode_scale", type=float, default=1.29)
    a("--optimizer", default="AdamW", help="AdamW (the only one offered)")
    a("--adam_beta1", type=float, default=0.9)
    a("--adam_beta2", type=float, default=0.999)
    a("--adam_weight_decay", type=float, default=1e-4)
    a("--adam_weight_decay_text_encoder", type=float, default=1e-3)
    a("--adam_epsilon", type=float, default=1e-8)
    a("--max_grad_norm", type=float, default=1.0)
    a("--logging_dir", default="logs")


def add_parser(sub):
    p = sub.add_parser(
        "train-dreambooth-lora",
        help="DreamBooth LoRA training (diffusers' recipe)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=lambda args: (train(args), 0)[1])


# ----------------------------------------------------------------------------- helpers
def get_lr_lambda(name, warmup, total, num_cycles=1, power=1.0):
    """diffusers.optimization.get_scheduler's schedules as multipliers of the base lr."""

    def constant(step):
        return 1.0

    def constant_warmup(step):
        return step / max(1.0, warmup) if step < warmup else 1.0

    def linear(step):
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    def cosine(step):
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))

    def cosine_restarts(step):
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        if progress >= 1.0:
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(num_cycles) * progress) % 1.0))))

    def polynomial(step, lr_end=1e-7, lr_init=1.0):
        if step < warmup:
            return step / max(1, warmup)
        if step > total:
            return lr_end / lr_init
        decay = (lr_init - lr_end) * (1 - (step - warmup) / (total - warmup)) ** power + lr_end
        return decay / lr_init

    return {
        "constant": constant,
        "constant_with_warmup": constant_warmup,
        "linear": linear,
        "cosine": cosine,
        "cosine_with_restarts": cosine_restarts,
        "polynomial": polynomial,
    }[name]


def density_for_timestep_sampling(scheme, draws, logit_mean=0.0, logit_std=1.0, mode_scale=1.29):
    """u in [0, 1) from raw draws (standard normal for logit_normal, uniform otherwise)."""
    draws = np.asarray(draws, np.float32)
    if scheme == "logit_normal":
        return 1 / (1 + np.exp(-(logit_mean + logit_std * draws)))
    if scheme == "mode":
        return 1 - draws - mode_scale * (np.cos(math.pi * draws / 2) ** 2 - 1 + draws)
    return draws


def loss_weighting(scheme, sigmas):
    if scheme == "sigma_sqrt":
        return sigmas**-2.0
    if scheme == "cosmap":
        return 2 / (math.pi * (1 - 2 * sigmas + 2 * sigmas**2))
    return sigmas * 0 + 1


class RandomSource:
    """Every random draw of training: one seeded numpy Generator (saved in checkpoints)."""

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def permutation(self, n):
        return self.rng.permutation(n)

    def timestep_draws(self, scheme, n):
        if scheme == "logit_normal":
            return self.rng.standard_normal(n).astype(np.float32)
        return self.rng.random(n).astype(np.float32)

    def normal(self, shape):
        return self.rng.standard_normal(shape).astype(np.float32)

    def crop_offset(self, max_top, max_left):
        return int(self.rng.integers(0, max_top + 1)), int(self.rng.integers(0, max_left + 1))

    def flip(self):
        return bool(self.rng.random() < 0.5)

    def state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state


# ----------------------------------------------------------------------------- data
def list_images(folder, what):
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{what} {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise ValueError(f"{what} {folder}: no images ({', '.join(sorted(IMAGE_EXTS))}) found")
    return files


def open_rgb(image, what):
    """A PIL image (or a path to one), EXIF-rotated, in RGB."""
    from PIL import Image, ImageOps

    try:
        if not isinstance(image, Image.Image):
            with Image.open(image) as im:
                im.load()
                image = im
        return ImageOps.exif_transpose(image).convert("RGB")
    except Exception as exc:  # PIL raises many types for broken files
        raise ValueError(f"{what}: unreadable image ({exc})") from exc


def to_unit_chw(image):
    """An RGB PIL image as float32 in [-1, 1], channels first."""
    arr = np.asarray(image, np.float32) / 255.0
    return ((arr - 0.5) / 0.5).transpose(2, 0, 1).copy()


def load_image(path, resolution, center_crop, random_flip, rand: RandomSource):
    """torchvision's Resize(res, bilinear) -> Center/RandomCrop -> flip -> [-1, 1], CHW."""
    from PIL import Image

    im = open_rgb(path, path)
    w, h = im.size
    if min(w, h) < 1:
        raise ValueError(f"{path}: empty image")
    if w <= h:
        new_w, new_h = resolution, int(resolution * h / w)
    else:
        new_h, new_w = resolution, int(resolution * w / h)
    im = im.resize((new_w, new_h), Image.BILINEAR)
    if center_crop:
        top = int(round((new_h - resolution) / 2.0))
        left = int(round((new_w - resolution) / 2.0))
    else:
        top, left = rand.crop_offset(new_h - resolution, new_w - resolution)
    im = im.crop((left, top, left + resolution, top + resolution))
    if random_flip and rand.flip():
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return to_unit_chw(im)


# ----------------------------------------------------------------------------- training
@dataclasses.dataclass
class _MicroBatch:
    """One rank's part of a global micro-batch: its ``rows`` of the global batch (instance
    rows first, then the matching class rows), ``total`` rows over all ranks, ``n_inst``
    instance images here and ``weight``, this rank's share of the global instance images."""

    rows: list
    total: int
    n_inst: int
    weight: float
    pixels: np.ndarray | None = None  # [rows, 3, H, W]
    mean: object = None  # --cache_latents: posterior mean and std of the rows
    std: object = None


def _TrainedModules(modules):
    """A layer holding the trained modules, for ``paddle.DataParallel``: its forward runs a
    loss closure (which calls them), so the reducer sees the loss the gradients come from."""
    import paddle

    class TrainedModules(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.trained = paddle.nn.LayerList(modules)

        def forward(self, loss_fn):
            return loss_fn()

    return TrainedModules()


class Trainer:
    """The training loop; ``random`` can be replaced (tests inject the reference's draws)."""

    def __init__(
        self,
        args,
        random: RandomSource | None = None,
        initial_lora: dict | None = None,
        instance_embeddings=None,
        dtype: str = "float32",
    ):
        from ._compat import require_paddle

        self.paddle = require_paddle()
        self.args = args
        # "float64" runs the trainable path (VAE, transformer, CLIP, LoRA, optimiser) in double
        # precision; the parity tests use it to separate the recipe from fp32 rounding
        self.dtype = dtype
        # (prompt_embeds, pooled) arrays to use instead of encoding --instance_prompt
        self.instance_embeddings = instance_embeddings
        self.random = random or RandomSource(args.seed)
        self.latent_cache = None
        # under paddle.distributed.launch: this process's rank and the number of processes
        self.rank, self.world = 0, 1
        self.initial_lora = initial_lora
        self._validate_args()

    # the pipeline class loaded from --pretrained_model_name_or_path and the default LoRA targets
    # (None: lora.DEFAULT_TARGET_MODULES); variants of the script change them
    pipeline_class = None
    default_target_modules = None

    def _validate_args(self):
        self._check_arguments()
        a = self.args
        self.instance_files = list_images(a.instance_data_dir, "--instance_data_dir") * a.repeats

    def _check_arguments(self):
        a = self.args
        if a.optimizer.lower() != "adamw":
            raise ValueError(f"--optimizer {a.optimizer}: only AdamW is offered")
        if a.resolution % 16:
            raise ValueError(f"--resolution {a.resolution} must be a multiple of 16")
        if a.with_prior_preservation and (not a.class_data_dir or not a.class_prompt):
            raise ValueError("--with_prior_preservation needs --class_data_dir and --class_prompt")
        if a.max_sequence_length > 512:
            raise ValueError("--max_sequence_length cannot be greater than 512")
        if a.gradient_accumulation_steps < 1 or a.train_batch_size < 1:
            raise ValueError("--gradient_accumulation_steps and --train_batch_size must be >= 1")

    # -- setup
    def setup(self):
        from . import _distributed
        from .lora import DEFAULT_TARGET_MODULES, TEXT_ENCODER_TARGET_MODULES, inject_adapter
        from .pipelines.pipeline_flux import FluxPipeline

        paddle, a = self.paddle, self.args
        self.rank, self.world = _distributed.init()
        self._check_ranks_agree()
        if a.seed is not None:
            paddle.seed(a.seed)
        self.pipe = (self.pipeline_class or FluxPipeline).from_pretrained(
            a.pretrained_model_name_or_path
        )
        if a.with_prior_preservation:
            self._ensure_class_images()
            self.class_files = list_images(a.class_data_dir, "--class_data_dir")[
                : a.num_class_images
            ]
            _distributed.check_ranks_agree(
                self.world, class_images=_distributed.file_digests(self.class_files)
            )
        self.transformer = self.pipe.transformer
        for m in (
            self.transformer,
            self.pipe.vae,
            self.pipe.text_encoder,
            self.pipe.text_encoder_2,
        ):
            for p in m.parameters():
                p.stop_gradient = True
        targets = (
            [t.strip() for t in a.lora_layers.split(",")]
            if a.lora_layers
            else (self.default_target_modules or DEFAULT_TARGET_MODULES)
        )
        alpha = a.lora_alpha if a.lora_alpha is not None else a.rank
        inject_adapter(
            self.transformer, "default", a.rank, alpha, targets, a.lora_dropout, seed=a.seed
        )
        if a.train_text_encoder:
            inject_adapter(
                self.pipe.text_encoder,
                "default",
                a.rank,
                alpha,
                TEXT_ENCODER_TARGET_MODULES,
                a.lora_dropout,
                seed=a.seed,
            )
        if self.dtype != "float32":
            for m in (self.transformer, self.pipe.vae) + (
                (self.pipe.text_encoder,) if a.train_text_encoder else ()
            ):
                m.to(dtype=self.dtype)
        from ._vae_encode import VaeEncoder

        self.vae_encoder = VaeEncoder(self.pipe.vae, a.vae_encode_backend, self.dtype, a.resolution)
        if self.initial_lora:
            self._set_lora(self.initial_lora)
        if self.instance_embeddings is not None:
            pe, pooled = (
                paddle.to_tensor(np.asarray(x)).astype(self.dtype) for x in self.instance_embeddings
            )
            self.inst = (pe, pooled, paddle.zeros([pe.shape[1], 3]))
        if a.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.transformer.train()
        self.lora_params = self._lora_params(self.transformer)
        self.te_params = self._lora_params(self.pipe.text_encoder) if a.train_text_encoder else []
        for p in self.lora_params + self.te_params:
            p.stop_gradient = False
        # as the script: with --train_text_encoder it sets requires_grad on CLIP's embeddings
        # (for gradient checkpointing) and clips over all CLIP parameters, so those gradients,
        # never zeroed by the optimiser (they are not in it), count in the clipping norm
        self.te_embedding_params = (
            list(self.pipe.text_encoder.text_model.embeddings.parameters())
            if a.train_text_encoder
            else []
        )
        for p in self.te_embedding_params:
            p.stop_gradient = False
        # text embeddings once (frozen encoders): instance and class prompts
        with paddle.no_grad():
            if self.instance_embeddings is None and a.instance_prompt is None:
                self.inst = None  # every image has its own prompt (a variant's captions)
            elif self.instance_embeddings is None:
                self.inst = self.pipe.encode_prompt(
                    a.instance_prompt, max_sequence_length=a.max_sequence_length
                )
            self.cls = (
                self.pipe.encode_prompt(a.class_prompt, max_sequence_length=a.max_sequence_length)
                if a.with_prior_preservation
                else None
            )
        n_batches = self._num_batches()
        self.updates_per_epoch = math.ceil(n_batches / a.gradient_accumulation_steps)
        if a.max_train_steps is None:
            a.max_train_steps = a.num_train_epochs * self.updates_per_epoch
        self.num_epochs = math.ceil(a.max_train_steps / self.updates_per_epoch)
        lr = a.learning_rate
        if a.scale_lr:
            lr = lr * a.gradient_accumulation_steps * self.global_batch_size
        self.base_lr = lr
        self.lr_lambda = get_lr_lambda(
            a.lr_scheduler, a.lr_warmup_steps, a.max_train_steps, a.lr_num_cycles, a.lr_power
        )
        groups = [(self.lora_params, 1.0, a.adam_weight_decay)]
        if self.te_params:
            groups.append(
                (self.te_params, a.text_encoder_lr / lr, a.adam_weight_decay_text_encoder)
            )
        self.optimizer = TorchAdamW(
            paddle, groups, lr * self.lr_lambda(0), (a.adam_beta1, a.adam_beta2), a.adam_epsilon
        )
        sched = self.pipe.scheduler
        self.train_sigmas = sched._sigmas_np.astype(np.float32)
        self.train_timesteps = (self.train_sigmas * sched.config.num_train_timesteps).astype(
            np.float32
        )
        self.global_step = 0
        self.first_epoch = 0
        self.history = []
        # with several processes, paddle.DataParallel averages the trained parameters'
        # gradients over the ranks (once per update: no_sync during accumulation)
        self.loss_module = None
        if self.world > 1:
            trained = [self.transformer] + (
                [self.pipe.text_encoder] if a.train_text_encoder else []
            )
            self.loss_module = paddle.DataParallel(_TrainedModules(trained))

    @property
    def is_main(self) -> bool:
        """Rank 0 (or the only process): the one that writes logs, checkpoints and outputs."""
        return self.rank == 0

    @property
    def global_batch_size(self) -> int:
        """Instance images per micro-batch over all processes (``--train_batch_size`` each)."""
        return self.args.train_batch_size * self.world

    def _num_batches(self) -> int:
        """Global micro-batches per epoch."""
        return math.ceil(len(self.instance_files) / self.global_batch_size)

    def _epoch_order(self):
        """The order of an epoch (drawn once per epoch): here a permutation of the images."""
        return self.random.permutation(len(self.instance_files))

    def _check_ranks_agree(self):
        from . import _distributed

        if self.world <= 1:
            return
        a = self.args
        folder = Path(a.pretrained_model_name_or_path)
        configs = sorted(folder.glob("*.json")) + sorted(folder.glob("*/*.json"))
        _distributed.check_ranks_agree(
            self.world,
            arguments={k: v for k, v in vars(a).items() if k != "func"},
            instance_images=_distributed.file_digests(self.instance_files),
            model_configs=[(str(p.relative_to(folder)), p.read_text()) for p in configs],
        )

    def _lora_params(self, model):
        from .lora import lora_layers

        params = []
        for _, layer in sorted(lora_layers(model).items()):
            params += [layer.lora_A["default"].weight, layer.lora_B["default"].weight]
        return params

    def _set_lora(self, state: dict):
        """state: diffusers-format keys (torch layout) -> the 'default' adapter."""
        from .lora import lora_layers

        for comp, model in (
            ("transformer", self.transformer),
            ("text_encoder", self.pipe.text_encoder),
        ):
            for name, layer in lora_layers(model).items():
                for part in ("A", "B"):
                    key = f"{comp}.{name}.lora_{part}.weight"
                    if key not in state and name.startswith("text_model."):
                        # transformers 5 names CLIP's modules without the text_model. prefix
                        key = f"{comp}.{name[len('text_model.') :]}.lora_{part}.weight"
                    if key in state:
                        weight = getattr(layer, f"lora_{part}")["default"].weight
                        weight.set_value(
                            self.paddle.to_tensor(np.ascontiguousarray(state[key].T)).astype(
                                weight.dtype
                            )
                        )

    def _ensure_class_images(self):
        from ._distributed import barrier

        a = self.args
        folder = Path(a.class_data_dir)
        barrier(self.world)  # every rank counts the images before rank 0 adds any
        if self.is_main:
            folder.mkdir(parents=True, exist_ok=True)
        have = (
            [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS]
            if folder.is_dir()
            else []
        )
        barrier(self.world)
        missing = a.num_class_images - len(have)
        if missing <= 0:
            return
        if self.is_main:
            logger.info("generating %d class images for prior preservation", missing)
        for i in range(missing):
            # every rank draws every seed (the ranks' random streams stay equal) and
            # generates its share of the images
            seed = int(self.random.rng.integers(2**31))
            if i % self.world != self.rank:
                continue
            img = self.pipe(
                prompt=a.class_prompt,
                height=a.resolution,
                width=a.resolution,
                num_inference_steps=28,
                guidance_scale=a.guidance_scale,
                generator=seed,
                max_sequence_length=a.max_sequence_length,
            ).images[0]
            img.save(folder / f"class-{len(have) + i:05d}.png")
        barrier(self.world)

    # -- one step
    def _batches(self, order, start=0):
        """This rank's share of each global micro-batch, from the ``start``-th on.

        A global micro-batch is ``--train_batch_size`` x processes instance images of the
        epoch's order (plus as many class images with prior preservation); rank ``r`` trains
        the ``r``-th of near-equal consecutive parts. Every rank loads the whole global batch,
        so that the random transforms (crop, flip) are drawn as one process draws them.
        """
        size = self.global_batch_size
        for first in range(start * size, len(order), size):
            yield self._micro_batch([int(i) for i in order[first : first + size]])

    def _micro_batch(self, idx):
        """This rank's :class:`_MicroBatch` of the global micro-batch of instance images
        ``idx`` (and, with prior preservation, as many class images)."""
        from ._distributed import shard

        a = self.args
        keys = [("instance", i) for i in idx]
        if a.with_prior_preservation:
            keys += [("class", i % len(self.class_files)) for i in idx]
        mine = shard(len(idx), self.rank, self.world)
        # a rank left without images (short last batch) runs one with weight 0, so that
        # it still joins the gradient average
        weight = len(mine) / len(idx)
        part = mine if len(mine) else np.array([0])
        rows = list(part) + ([len(idx) + int(j) for j in part] if a.with_prior_preservation else [])
        batch = _MicroBatch(rows=rows, total=len(keys), n_inst=len(part), weight=weight)
        if self.latent_cache is not None:
            paddle = self.paddle
            batch.mean = paddle.concat([self.latent_cache[keys[r]][0] for r in rows])
            batch.std = paddle.concat([self.latent_cache[keys[r]][1] for r in rows])
        else:
            pixels = [self._load(k) for k in keys]
            batch.pixels = np.stack([pixels[r] for r in rows])
        return batch

    def _load(self, key):
        a = self.args
        files = self.instance_files if key[0] == "instance" else self.class_files
        return load_image(files[key[1]], a.resolution, a.center_crop, a.random_flip, self.random)

    def cache_latents(self):
        """Encode every instance (and class) image once: the VAE posterior's mean and std per
        image, in the model dtype. Transforms (crop, flip) are drawn here, once per image."""
        from tqdm.auto import tqdm

        paddle = self.paddle
        keys = [("instance", i) for i in range(len(self.instance_files))]
        if self.args.with_prior_preservation:
            keys += [("class", i) for i in range(len(self.class_files))]
        cache = {}
        for key in tqdm(keys, desc="caching latents", unit="image", disable=not self.is_main):
            pixels = paddle.to_tensor(self._load(key)[None]).astype(self.dtype)
            with paddle.no_grad():
                dist = self.encode_pixels(pixels)
            cache[key] = (dist.mean.detach(), dist.std.detach())
        self.latent_cache = cache

    def encode_pixels(self, pixels):
        """``vae.encode(pixels).latent_dist``, by the backend --vae_encode_backend chose."""
        return self.vae_encoder.latent_dist(pixels)

    def _text(self, n_inst, n_total, batch=None):
        paddle = self.paddle
        pe, pooled, text_ids = self.inst
        if self.args.train_text_encoder:
            pooled = self._clip_pooled(self.args.instance_prompt)
        pes = [pe.tile([n_inst, 1, 1])]
        pools = [pooled.tile([n_inst, 1])]
        if self.cls is not None:
            cpe, cpooled, _ = self.cls
            if self.args.train_text_encoder:
                cpooled = self._clip_pooled(self.args.class_prompt)
            pes.append(cpe.tile([n_total - n_inst, 1, 1]))
            pools.append(cpooled.tile([n_total - n_inst, 1]))
        # text_ids stay (L, 3): every sample has the same token layout (upstream's bug was to
        # concatenate them along the batch axis)
        return paddle.concat(pes), paddle.concat(pools), text_ids

    def _clip_pooled(self, prompt):
        """CLIP pooled embedding with gradients (text-encoder LoRA training)."""
        tok = self.pipe.tokenizer
        ids = tok(
            [prompt],
            padding="max_length",
            max_length=self.pipe.tokenizer_max_length,
            truncation=True,
            return_tensors="np",
        )["input_ids"]
        encoder = self.pipe.text_encoder
        encoder.train()
        return encoder(
            self.paddle.to_tensor(np.asarray(ids), dtype="int64"), return_dict=True
        ).pooler_output

    def _draw_rows(self, draws, batch):
        """This rank's rows of draws made for the whole global micro-batch."""
        return np.ascontiguousarray(draws[batch.rows])

    def compute_loss(self, batch):
        """This rank's loss on its rows of a micro-batch (a :class:`_MicroBatch`). The random
        draws (posterior sample, noise, timesteps) are made for the global micro-batch, in one
        process's order, and each rank keeps its rows."""
        from .pipelines.pipeline_flux import pack_latents, prepare_latent_image_ids, unpack_latents

        paddle, a, dtype = self.paddle, self.args, self.dtype
        n_inst = batch.n_inst
        latents = self._latents(batch)
        shape = [batch.total] + list(latents.shape[1:])
        b, c, h, w = latents.shape
        noise = self._draw_rows(self.random.normal(shape), batch)
        noise = paddle.to_tensor(noise).astype(dtype)
        u = density_for_timestep_sampling(
            a.weighting_scheme,
            self._draw_rows(self.random.timestep_draws(a.weighting_scheme, batch.total), batch),
            a.logit_mean,
            a.logit_std,
            a.mode_scale,
        )
        indices = (u * len(self.train_timesteps)).astype(np.int64)
        timesteps = self.train_timesteps[indices]
        sigmas_np = self.train_sigmas[indices].reshape(b, 1, 1, 1)
        # the script casts the looked-up sigmas to the model dtype first
        sigmas_np = sigmas_np.astype(dtype)
        sigmas = paddle.to_tensor(sigmas_np)
        noisy = (1.0 - sigmas) * latents + sigmas * noise
        packed = pack_latents(noisy, b, c, h, w)
        image_ids = prepare_latent_image_ids(h // 2, w // 2)
        guidance = (
            paddle.full([b], a.guidance_scale, dtype="float32")
            if self.transformer.config.guidance_embeds
            else None
        )
        pe, pooled, text_ids = self._text(n_inst, b, batch)
        hidden, image_ids = self._model_tokens(packed, image_ids, batch)
        pred = self.transformer(
            hidden_states=hidden,
            timestep=paddle.to_tensor(timesteps) / 1000,
            guidance=guidance,
            pooled_projections=pooled,
            encoder_hidden_states=pe,
            txt_ids=text_ids,
            img_ids=image_ids,
            return_dict=False,
        )[0]
        if hidden.shape[1] != packed.shape[1]:  # extra (condition) tokens: predict the image's
            pred = pred[:, : packed.shape[1]]
        vsf = self.pipe.vae_scale_factor
        pred = unpack_latents(pred, h * vsf, w * vsf, vsf)
        weighting = paddle.to_tensor(
            loss_weighting(a.weighting_scheme, sigmas_np).astype(np.float32)
        )
        target = noise - latents
        # the script takes the loss in fp32 whatever the model dtype (weighting.float() *
        # (pred.float() - target.float()) ** 2)
        # square, not ** 2: torch's ** 2 is x * x, and Paddle's CPU pow kernel took 80 us on a
        # 128x128 image's latents against 10 us (the same float32 values); the [B, 1, 1, 1]
        # weighting multiplied through the model's elementwise rule (expanded first on the CPU,
        # where Paddle broadcasts it along the middle axes on a slow path; the same values);
        # no casts of float32 tensors to float32
        from .models.transformer_flux import _cast, _mul

        sq = paddle.square(_cast(pred, paddle.float32) - _cast(target, paddle.float32))
        per = _mul(sq, weighting).reshape([b, -1]).mean(1)
        if a.with_prior_preservation:
            loss = per[:n_inst].mean() + a.prior_loss_weight * per[n_inst:].mean()
        else:
            loss = per.mean()
        return loss

    def _latents(self, batch):
        """The batch's scaled VAE latents: a posterior sample (one normal draw for the global
        micro-batch, this rank's rows kept)."""
        paddle, dtype = self.paddle, self.dtype
        vae = self.pipe.vae
        with paddle.no_grad():
            if batch.pixels is None:  # --cache_latents
                mean, std = batch.mean, batch.std
            else:
                dist = self.encode_pixels(paddle.to_tensor(batch.pixels).astype(dtype))
                mean, std = dist.mean, dist.std
            shape = [batch.total] + list(mean.shape[1:])
            eps = self._draw_rows(self.random.normal(shape), batch)
            latents = mean + std * paddle.to_tensor(eps).astype(dtype)
            return (latents - vae.config.shift_factor) * vae.config.scaling_factor

    def _model_tokens(self, packed, image_ids, batch):
        """The transformer's image tokens and their ids; variants append condition tokens
        (the prediction is cut back to the first ``packed`` tokens)."""
        return packed, image_ids

    def _clip_grads(self):
        """torch.nn.utils.clip_grad_norm_: coef = max / (norm + 1e-6), applied if < 1."""
        params = self.lora_params + self.te_params + self.te_embedding_params
        return clip_grad_norm(self.paddle, params, self.args.max_grad_norm)

    # -- checkpoints
    def save_checkpoint(self, folder: Path, epoch: int, order, next_batch: int):
        """Rank 0 writes (every rank holds the same LoRA, optimiser and random state)."""
        from .lora import lora_state_dict

        if not self.is_main:
            return
        from .safetensors_io import save_numpy

        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        state = lora_state_dict(self.transformer, "default", "transformer")
        if self.args.train_text_encoder:
            state.update(lora_state_dict(self.pipe.text_encoder, "default", "text_encoder"))
        save_numpy(tmp / "lora_state.safetensors", state)
        np.savez(tmp / "optimizer.npz", **self.optimizer.state_dict())
        (tmp / "trainer_state.json").write_text(
            json.dumps(
                {
                    "global_step": self.global_step,
                    "epoch": epoch,
                    "order": [int(i) for i in order],
                    "next_batch": next_batch,
                    # the epoch's order and the random state are the same for any number of
                    # processes with this many instance images per global micro-batch
                    "global_batch_size": self.global_batch_size,
                    "processes": self.world,
                    "rng": self.random.state(),
                    "history": self.history,
                    "lr": self.optimizer.get_lr(),
                },
                default=int,
            )
        )
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        limit = self.args.checkpoints_total_limit
        if limit:
            ckpts = sorted(
                folder.parent.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])
            )
            for old in ckpts[:-limit]:
                shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self, folder: Path):
        from .safetensors_io import SafeOpen

        with SafeOpen(folder / "lora_state.safetensors") as r:
            state = {k: r.get(k) for k in r.keys()}
        # lora_state_dict baked alpha/r into B; undo it
        scale = (self.args.lora_alpha or self.args.rank) / self.args.rank
        state = {k: (v / np.float32(scale) if ".lora_B." in k else v) for k, v in state.items()}
        self._set_lora(state)
        self.optimizer.set_state_dict(dict(np.load(folder / "optimizer.npz")))
        meta = json.loads((folder / "trainer_state.json").read_text())
        saved = meta.get("global_batch_size", self.args.train_batch_size)
        if saved != self.global_batch_size:
            raise ValueError(
                f"{folder}: written with a global batch of {saved} images per micro-batch "
                f"({meta.get('processes', 1)} process(es)); this run has {self.world} x "
                f"--train_batch_size {self.args.train_batch_size} = {self.global_batch_size}. "
                f"Resume with --train_batch_size x processes = {saved}"
            )
        self.global_step = meta["global_step"]
        self.random.set_state(meta["rng"])
        self.history = meta["history"]
        self.optimizer.set_lr(meta["lr"])
        return meta

    # -- main loop
    def run(self):
        from tqdm.auto import tqdm

        a = self.args
        out = Path(a.output_dir)
        if self.is_main:
            out.mkdir(parents=True, exist_ok=True)
        resume = None
        if a.cache_latents and self.latent_cache is None:
            # before a checkpoint restores the random state: a resumed run caches with the
            # same draws as the run it continues
            self.cache_latents()
        if a.resume_from_checkpoint:
            ckpt = Path(a.resume_from_checkpoint)
            if a.resume_from_checkpoint == "latest":
                found = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
                ckpt = found[-1] if found else None
            if ckpt is None or not (Path(ckpt) / "trainer_state.json").is_file():
                raise ValueError(
                    f"--resume_from_checkpoint {a.resume_from_checkpoint}: no checkpoint found"
                )
            resume = self.load_checkpoint(Path(ckpt))
        bar = tqdm(
            total=a.max_train_steps,
            initial=self.global_step,
            desc="training",
            unit="step",
            disable=not self.is_main,
        )
        accum = a.gradient_accumulation_steps
        n_batches = self._num_batches()
        start_epoch = resume["epoch"] if resume else 0
        log_file = open(out / "train_log.jsonl", "a") if self.is_main else contextlib.nullcontext()
        with log_file as log:
            for epoch in range(start_epoch, self.num_epochs):
                if resume and epoch == start_epoch:
                    order, start = np.asarray(resume["order"]), resume["next_batch"]
                else:
                    order, start = self._epoch_order(), 0
                micro = []
                for i, batch in enumerate(self._batches(order, start), start=start):
                    last = len(micro) + 1 == accum or i + 1 == n_batches
                    loss = self._forward_backward(batch, accum, sync=last)
                    micro.append(loss)
                    if not last:
                        continue
                    # the global micro-batch losses (each rank's share, weighted)
                    micro = [float(x) for x in sum_over_ranks(micro, self.world)]
                    grad_norm = self._clip_grads()
                    self.optimizer.step()
                    self.optimizer.clear_grad()
                    self.global_step += 1
                    entry = {
                        "step": self.global_step,
                        "loss": micro[-1],
                        "losses": micro,
                        "lr": self.optimizer.get_lr(),
                        "grad_norm": grad_norm,
                    }
                    self.history.append(entry)
                    if log is not None:
                        log.write(json.dumps(entry) + "\n")
                        log.flush()
                    self.optimizer.set_lr(self.base_lr * self.lr_lambda(self.global_step))
                    micro = []
                    bar.set_postfix(loss=f"{entry['loss']:.4f}", lr=f"{entry['lr']:.2e}")
                    bar.update()
                    if a.checkpointing_steps and self.global_step % a.checkpointing_steps == 0:
                        self.save_checkpoint(
                            out / f"checkpoint-{self.global_step}",
                            epoch=epoch,
                            order=order,
                            next_batch=i + 1,
                        )
                    if self.global_step >= a.max_train_steps:
                        break
                if self.is_main and a.validation_prompt and (epoch + 1) % a.validation_epochs == 0:
                    self.validate(out, epoch)
                if self.global_step >= a.max_train_steps:
                    break
        bar.close()
        return self.history

    def _forward_backward(self, batch, accum, sync):
        """Loss and gradients of this rank's part of one micro-batch; returns the loss times
        the rank's share (the global loss is the sum over ranks). ``paddle.DataParallel``
        averages gradients over ranks, so each rank's loss is scaled by ``weight x ranks``:
        the average is then the gradient of the global micro-batch's mean loss. Gradients are
        synchronised only on the last micro-batch of an update (``sync``)."""
        scale = batch.weight * self.world
        if self.loss_module is None:
            loss = self.compute_loss(batch)
            (loss * scale / accum).backward()
        else:
            with contextlib.nullcontext() if sync else self.loss_module.no_sync():
                loss = self.loss_module(lambda: self.compute_loss(batch))
                (loss * scale / accum).backward()
        return float(loss) * batch.weight

    def validate(self, out: Path, epoch: int):
        a = self.args
        self.transformer.eval()
        folder = out / "validation"
        folder.mkdir(exist_ok=True)
        for i in range(a.num_validation_images):
            img = self.pipe(
                prompt=a.validation_prompt,
                **self._validation_inputs(),
                height=a.resolution,
                width=a.resolution,
                guidance_scale=a.guidance_scale,
                generator=(a.seed or 0) + i,
                max_sequence_length=a.max_sequence_length,
            ).images[0]
            img.save(folder / f"epoch{epoch:04d}-{i}.png")
        self.transformer.train()

    def _validation_inputs(self) -> dict:
        """Further pipeline arguments of the validation images (a variant's input image)."""
        return {}

    def save(self):
        """The trained LoRA (and training_config.json), written by rank 0; None elsewhere."""
        from .lora import lora_state_dict, save_lora_weights

        if not self.is_main:
            return None
        a = self.args
        out = Path(a.output_dir)
        te = (
            lora_state_dict(self.pipe.text_encoder, "default", "text_encoder")
            if a.train_text_encoder
            else None
        )
        path = save_lora_weights(
            out, lora_state_dict(self.transformer, "default", "transformer"), te
        )
        config = {k: v for k, v in vars(a).items() if k != "func"}
        (out / "training_config.json").write_text(json.dumps(config, indent=2, default=str))
        return path


def train(
    args,
    random: RandomSource | None = None,
    initial_lora: dict | None = None,
    instance_embeddings=None,
    dtype: str = "float32",
):
    return run_trainer(Trainer(args, random, initial_lora, instance_embeddings, dtype))


def run_trainer(trainer: Trainer):
    """Set up, train and save; rank 0 prints where the LoRA went. Returns the trainer."""
    args = trainer.args
    trainer.setup()
    trainer.run()
    path = trainer.save()
    # every rank waits for rank 0's output, so that no process tears the process group down
    # while another still uses it
    from ._distributed import barrier

    barrier(trainer.world)
    if path is None:  # not rank 0
        return trainer
    print(
        f"wrote {path} (diffusers format; load with pipe.load_lora_weights) and "
        f"{Path(args.output_dir) / 'training_config.json'}"
    )
    return trainer


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)
