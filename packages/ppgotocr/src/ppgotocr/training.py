"""Supervised fine-tuning aligned with the original GOT-OCR2.0 ``train_GOT.py``.

* Data: a JSON list of ``{"image": file | [files] | folder, "conversations": [{"from": "human",
  "value": "<image>\\nOCR: "}, {"from": "gpt", "value": "..."}]}``; optional ``"crop": true``
  tiles the image like inference crop mode. ``<image>`` becomes ``<img>`` + ``<imgpad>`` x
  256 x views + ``</img>``.
* Template: the MPT conversation with the un-indented system line; system and user turns are
  masked out of the labels (-100) exactly as the original ``preprocess_mpt`` does; right padding
  with ``<|endoftext|>``, ``attention_mask = ids != pad``.
* Loss: mean token cross-entropy of float32 logits, shifted by one.
* Trainable by default (as the original, whose vision tower — including ``net_2``/``net_3`` —
  runs under ``set_grad_enabled(False)``): ``mm_projector_vary`` + the whole language model.
  ``freeze_lm_model`` trains only the projector and the token embeddings (the original's
  meaning; PaddleMIX inverts it). ``train_vision`` is an explicit switch to train the tower.
* AdamW, warmup + cosine/linear/constant schedule, accumulation and global-norm clipping follow
  torch / transformers' Trainer formulas; state is keyed by parameter names so resuming is exact.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .optim import AdamW, clip_grad_norm, lr_lambda  # noqa: F401  (re-exported)
from .processing import (
    ROLE_ASSISTANT,
    ROLE_USER,
    SEP,
    SYSTEM_TRAIN,
    InputError,
    dynamic_preprocess,
    load_image,
    normalize,
)
from .training_args import TrainArgs, add_train_arguments  # noqa: F401  (re-exported)

IGNORE_INDEX = -100


# --------------------------------------------------------------------------- data
def _views(sample, index, image_root: Path, image_size: int):
    img = sample.get("image")
    if img is None:
        raise InputError(f"sample {index}: no 'image' field")
    files = img if isinstance(img, list) else [img]
    paths = []
    for f in files:
        p = image_root / f
        if p.is_dir():
            paths.extend(sorted(p.glob("*.png")))
        else:
            paths.append(p)
    if not paths:
        raise InputError(f"sample {index}: no images found for {img!r}")
    views = []
    for p in paths:
        try:
            views.append(load_image(p))
        except InputError as exc:
            raise InputError(f"sample {index}: {exc}") from None
    if sample.get("crop"):
        if len(views) != 1:
            raise InputError(f"sample {index}: 'crop' needs exactly one image")
        views = dynamic_preprocess(views[0], image_size=image_size)
    return views


def conversation_text(conversations, index, image_block: str) -> str:
    if not isinstance(conversations, list) or not conversations:
        raise InputError(f"sample {index}: 'conversations' must be a non-empty list")
    roles = {
        "human": ROLE_USER,
        "user": ROLE_USER,
        "gpt": ROLE_ASSISTANT,
        "assistant": ROLE_ASSISTANT,
    }
    text = SYSTEM_TRAIN + SEP
    n_images = 0
    for turn_i, turn in enumerate(conversations):
        if (
            not isinstance(turn, dict)
            or turn.get("from") not in roles
            or not isinstance(turn.get("value"), str)
        ):
            raise InputError(
                f"sample {index}: turn {turn_i} needs 'from' (human/gpt) and a string 'value'"
            )
        expected = ROLE_USER if turn_i % 2 == 0 else ROLE_ASSISTANT
        if roles[turn["from"]] != expected:
            raise InputError(
                f"sample {index}: turn {turn_i} should be from "
                f"{'human' if expected == ROLE_USER else 'gpt'}"
            )
        value = turn["value"]
        n_images += value.count("<image>")
        value = value.replace("<image>", image_block)
        text += roles[turn["from"]] + value + SEP
    if n_images != 1:
        raise InputError(
            f"sample {index}: needs exactly one <image> placeholder in the "
            f"conversation, found {n_images}"
        )
    return text


def mask_labels(text: str, tokenizer, pad_id: int, max_length: int, index=None):
    """input_ids and labels as the original preprocess_mpt builds them."""
    ids = tokenizer.encode(text)[:max_length]
    labels = list(ids)
    total_len = sum(1 for t in ids if t != pad_id)
    sep = SEP + ROLE_ASSISTANT
    rounds = text.split(SEP)
    re_rounds = [SEP.join(rounds[:3])]
    for i in range(3, len(rounds), 2):
        re_rounds.append(SEP.join(rounds[i : i + 2]))
    cur = 0
    sep_len = len(tokenizer.encode(SEP))
    for rou in re_rounds:
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        parts[0] += sep
        round_len = len(tokenizer.encode(rou)) + sep_len
        instruction_len = len(tokenizer.encode(parts[0]))
        labels[cur : cur + instruction_len] = [IGNORE_INDEX] * len(
            labels[cur : cur + instruction_len]
        )
        cur += round_len
    labels[cur:] = [IGNORE_INDEX] * len(labels[cur:])
    if cur < max_length and cur != total_len:
        print(f"WARNING: sample {index}: tokenization mismatch {cur} vs {total_len}; ignored")
        labels = [IGNORE_INDEX] * len(labels)
    return ids, labels


class SFTDataset:
    def __init__(self, data_path, image_root, tokenizer, config, max_length: int = 8192):
        data_path = Path(data_path)
        try:
            samples = json.loads(Path(data_path).read_text())
        except FileNotFoundError:
            raise InputError(f"{data_path}: no such file") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{data_path}: malformed JSON: {exc}") from None
        if not isinstance(samples, list) or not samples:
            raise InputError(f"{data_path}: expected a non-empty JSON list of samples")
        self.items = []
        size = config.vision.image_size
        for i, s in enumerate(samples):
            if not isinstance(s, dict):
                raise InputError(f"{data_path}: sample {i} is not an object")
            views = _views(s, i, Path(image_root), size)
            block = "<img>" + "<imgpad>" * (config.image_seq_length * len(views)) + "</img>"
            text = conversation_text(s.get("conversations"), i, block)
            ids, labels = mask_labels(text, tokenizer, config.pad_token_id, max_length, i)
            n_img = ids.count(config.image_token_id)
            if n_img != config.image_seq_length * len(views):
                raise InputError(f"sample {i}: max_length {max_length} truncates the image tokens")
            pixels = np.stack([normalize(v, size) for v in views])
            self.items.append((ids, labels, pixels))

    def __len__(self):
        return len(self.items)


def collate(items, pad_id):
    width = max(len(i[0]) for i in items)
    ids = np.full((len(items), width), pad_id, np.int64)
    labels = np.full((len(items), width), IGNORE_INDEX, np.int64)
    for r, (a, b, _) in enumerate(items):
        ids[r, : len(a)] = a
        labels[r, : len(b)] = b
    mask = (ids != pad_id).astype(np.int64)
    pixels = np.concatenate([i[2] for i in items])
    return ids, labels, mask, pixels


# --------------------------------------------------------------------------- model side
def trainable_names(model, freeze_lm_model=False, train_vision=False) -> list[str]:
    names = []
    for name, _ in model.named_parameters():
        vision = name.startswith("vision_tower.") or name.startswith("multi_modal_projector.conv_")
        if vision:
            if train_vision:
                names.append(name)
        elif freeze_lm_model:
            if (
                name.startswith("multi_modal_projector.")
                or name == "language_model.embed_tokens.weight"
            ):
                names.append(name)
        else:
            names.append(name)
    return names


def _sft_loss_class():
    from ._paddle import require_paddle

    paddle = require_paddle()
    F = paddle.nn.functional

    class SFTLoss(paddle.nn.Layer):
        """The training forward as one layer (so ``paddle.DataParallel`` can wrap it)."""

        def __init__(self, model, train_vision: bool = False):
            super().__init__()
            self.model = model
            self.train_vision = train_vision

        def forward(self, input_ids, labels, attention_mask, pixel_values):
            """Summed token cross-entropy of one micro-batch.

            Args:
                input_ids: int64 ``[b, s]`` (right padded).
                labels: int64 ``[b, s]``, ``-100`` where nothing is learned.
                attention_mask: int64 ``[b, s]``, 1 for real tokens.
                pixel_values: float32 ``[views, 3, S, S]`` of all samples in row order.

            Returns:
                A scalar: the sum of the float32 cross-entropy over the learned tokens. Divide
                by the (global) number of learned tokens for the mean.
            """
            model = self.model
            if self.train_vision:
                feats = model.get_image_features(pixel_values)
            else:
                with paddle.no_grad():  # the original's vision_tower_high (incl. net_2/net_3)
                    proj = model.multi_modal_projector
                    v = model.vision_tower(pixel_values)
                    v = proj.conv_upsampler2(proj.conv_upsampler1(v))
                    v = v.flatten(2).transpose([0, 2, 1])
                feats = model.multi_modal_projector.multimodal_projector(v.detach())
            logits, _ = model(input_ids, image_features=feats, attention_mask=attention_mask)
            logits = logits[:, :-1].reshape([-1, logits.shape[-1]])
            target = labels[:, 1:].reshape([-1])
            # paddle's reduction="mean" divides by every position, ignored ones included
            # (3.3.1): the caller divides the sum by the number of learned tokens instead
            per_token = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")
            return per_token.sum()

    return SFTLoss


def compute_loss(model, ids, labels, mask, pixels, train_vision=False):
    """Mean token cross-entropy of one micro-batch (torch's ``reduction="mean"``)."""
    import paddle

    module = _sft_loss_class()(model, train_vision)
    total = module(
        paddle.to_tensor(ids),
        paddle.to_tensor(labels),
        paddle.to_tensor(mask),
        paddle.to_tensor(pixels),
    )
    count = int((labels[:, 1:] != IGNORE_INDEX).sum())
    return total / max(count, 1)


class Trainer:
    """SFT loop; under ``paddle.distributed.launch`` each rank trains its share of every global
    batch (``batch_size`` per rank) and gradients are averaged by ``paddle.DataParallel``."""

    def __init__(
        self,
        model,
        tokenizer,
        dataset: SFTDataset,
        args: TrainArgs,
        output_dir=None,
        tokenizer_dir=None,
        rank: int = 0,
        world: int = 1,
    ):
        from .distributed import GlobalBatchSampler

        self.model, self.tokenizer, self.dataset, self.args = model, tokenizer, dataset, args
        self.output_dir = Path(output_dir) if output_dir else None
        self.tokenizer_dir = tokenizer_dir
        self.rank, self.world = rank, world
        names = set(trainable_names(model, args.freeze_lm_model, args.train_vision))
        self.params = {}
        for n, p in model.named_parameters():
            p.stop_gradient = n not in names
            if n in names:
                self.params[n] = p
        model.language_model.gradient_checkpointing = args.gradient_checkpointing
        self.loss_module = _sft_loss_class()(model, args.train_vision)
        if world > 1:
            import paddle

            self.forward = paddle.DataParallel(self.loss_module)
        else:
            self.forward = self.loss_module
        # transformers' Trainer: no decay for biases and LayerNorm weights
        no_decay = {n for n in self.params if n.endswith(".bias") or "layer_norm" in n}
        self.optimizer = AdamW(self.params, args, no_decay)
        self.sampler = GlobalBatchSampler(len(dataset), args.batch_size, args.seed, rank, world)
        per_epoch = self.sampler.micro_batches_per_epoch()
        updates_per_epoch = max(1, per_epoch // args.grad_accum)
        self.total_steps = args.max_steps if args.max_steps > 0 else updates_per_epoch * args.epochs
        self.warmup = args.warmup_steps or math.ceil(self.total_steps * args.warmup_ratio)
        self.step = 0
        self.losses = []
        self.step_seconds: list[float] = []  # wall time of each update in this run

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def batches(self):
        """This rank's micro-batches, in the sampler's seeded order. A rank left without
        samples (the last, short global batch) gets one sample with every label masked."""
        pad = self.model.config.pad_token_id
        for indices in self.sampler:
            if indices:
                yield collate([self.dataset.items[j] for j in indices], pad)
            else:
                ids, labels, pixels = self.dataset.items[0]
                yield collate([(ids, [IGNORE_INDEX] * len(labels), pixels)], pad)

    def lr_at(self, step: int) -> float:
        return self.args.lr * lr_lambda(step, self.warmup, self.total_steps, self.args.scheduler)

    def train_step(self, micro_batches) -> float:
        """One optimizer update over ``grad_accum`` micro-batches. Returns the mean loss.

        Each micro-batch's loss is its summed token cross-entropy divided by the number of
        learned tokens of the *global* micro-batch (all ranks), times the world size because
        DataParallel averages gradients: N processes give the gradient of one process that
        sees the whole global batch. Gradients are synchronised once, on the last micro-batch.
        """
        import contextlib

        import paddle

        from .distributed import all_reduce_sum

        for p in self.params.values():
            p.clear_gradient(set_to_zero=False)
        total = 0.0
        last = len(micro_batches) - 1
        for i, (ids, labels, mask, pixels) in enumerate(micro_batches):
            local = float((labels[:, 1:] != IGNORE_INDEX).sum())
            count = max(float(all_reduce_sum([local], self.world)[0]), 1.0)
            sync = self.world == 1 or i == last
            with contextlib.nullcontext() if sync else self.forward.no_sync():
                loss_sum = self.forward(
                    paddle.to_tensor(ids),
                    paddle.to_tensor(labels),
                    paddle.to_tensor(mask),
                    paddle.to_tensor(pixels),
                )
                (loss_sum * (self.world / count / self.args.grad_accum)).backward()
            total += float(all_reduce_sum([float(loss_sum)], self.world)[0]) / count
        self.grad_norm = clip_grad_norm(self.params, self.args.max_grad_norm)
        self.optimizer.step(self.lr_at(self.step))
        self.step += 1
        return total / len(micro_batches)

    def train(self, progress=True):
        self.model.train()
        it = self.batches()
        for _ in range(self.step * self.args.grad_accum):  # resume: skip consumed batches
            next(it)
        bar = None
        if progress and self.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step")
        import time

        while self.step < self.total_steps:
            started = time.perf_counter()
            loss = self.train_step([next(it) for _ in range(self.args.grad_accum)])
            self.step_seconds.append(time.perf_counter() - started)
            self.losses.append(loss)
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{self.lr_at(self.step - 1):.2e}")
                bar.update(1)
            if self.output_dir and self.args.save_steps and self.step % self.args.save_steps == 0:
                self.save_checkpoint(self.output_dir / f"checkpoint-{self.step}")
        if bar is not None:
            bar.close()
        self.model.eval()
        return self.losses

    # ------------------------------------------------------------------ checkpoints
    def _extra_files(self):
        if not self.tokenizer_dir:
            return []
        return [
            Path(self.tokenizer_dir, f)
            for f in ("tokenizer.json", "tokenizer_config.json")
            if Path(self.tokenizer_dir, f).is_file()
        ]

    def _write_model(self, folder: Path) -> None:
        from ._safetensors import save_arrays

        state = {k: v.numpy() for k, v in self.model.state_dict().items()}
        save_arrays(folder / "model.safetensors", state, {"format": "np"})
        (folder / "config.json").write_text(
            json.dumps(self.model.config.to_dict(), indent=2) + "\n"
        )
        for f in self._extra_files():
            shutil.copyfile(f, folder / f.name)

    def save_model(self, folder, overwrite: bool = False) -> Path:
        """The model as a ppgotocr folder (rank 0 only; the folder appears when complete)."""
        from ._atomic import atomic_dir

        if self.is_main:
            with atomic_dir(folder, overwrite=overwrite) as tmp:
                self._write_model(tmp)
        return Path(folder)

    def save_checkpoint(self, folder) -> Path:
        """Weights, optimizer moments and trainer state, written by rank 0 as one folder that
        replaces an older one of the same name only once it is complete."""
        from ._atomic import atomic_dir
        from ._safetensors import save_arrays

        if not self.is_main:
            return Path(folder)
        state = {
            "step": self.step,
            "adam_t": self.optimizer.t,
            "args": asdict(self.args),
            "losses": self.losses,
            "global_batch": self.sampler.global_batch,
            "world_size": self.world,
            "step_seconds": self.step_seconds,
        }
        with atomic_dir(folder, overwrite=True) as tmp:
            self._write_model(tmp)
            save_arrays(tmp / "optimizer.safetensors", self.optimizer.state_arrays())
            (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
        return Path(folder)

    def load_checkpoint(self, folder) -> None:
        from ._errors import UserError, read_json_object
        from ._safetensors import SafetensorsReader
        from .convert import load_state_dict_any

        folder = Path(folder)
        state = read_json_object(folder / "trainer_state.json", "trainer state")
        for key in ("step", "adam_t", "losses"):
            if key not in state:
                raise UserError(f"'{key}' is missing", folder / "trainer_state.json")
        saved_batch = state.get("global_batch", self.sampler.global_batch)
        if saved_batch != self.sampler.global_batch:
            raise UserError(
                f"this checkpoint was trained with a global batch of {saved_batch} "
                f"samples; resuming with {self.args.batch_size} x {self.world} "
                f"process(es) = {self.sampler.global_batch} would change the data "
                "order: choose --batch-size so that batch size x processes is "
                f"{saved_batch}",
                folder,
            )
        _, weights = load_state_dict_any(folder)
        self.model.load_converted(weights)
        reader = SafetensorsReader(folder / "optimizer.safetensors")
        self.optimizer.load_arrays(
            {k: reader.read_float32(k) for k in reader.keys()}, state["adam_t"]
        )
        self.step = state["step"]
        self.losses = list(state["losses"])


# --------------------------------------------------------------------------- CLI
def _check_train_args(args) -> None:
    from ._errors import UserError

    for name in ("batch_size", "grad_accum", "epochs", "max_length"):
        if getattr(args, name) <= 0:
            raise UserError(
                f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}"
            )
    for name in ("lr", "max_grad_norm", "weight_decay", "warmup_ratio"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0:
            raise UserError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
    if args.save_steps < 0:
        raise UserError(f"--save-steps must be >= 0, got {args.save_steps}")


def main_train(args) -> int:
    from ._atomic import prepare_output
    from .distributed import check_ranks_agree, init

    _check_train_args(args)
    out = Path(args.output)
    rank, world = init()
    if rank == 0 and not args.resume:
        prepare_output(out, overwrite=args.overwrite)  # refuse before any work
    import paddle

    from .modeling_got_ocr2 import GotOcr2ForConditionalGeneration
    from .tokenizer import GotOcrTokenizer

    targs = TrainArgs(
        **{k: getattr(args, k) for k in TrainArgs.__dataclass_fields__ if hasattr(args, k)}
    )
    paddle.seed(targs.seed)
    model = GotOcr2ForConditionalGeneration.from_pretrained(args.model)
    tok = GotOcrTokenizer.from_pretrained(args.model, model.config)
    data = SFTDataset(args.data, args.images, tok, model.config, targs.max_length)
    import hashlib

    arguments = {k: v for k, v in vars(args).items() if k != "func"}
    check_ranks_agree(
        world,
        arguments=arguments,
        data=hashlib.sha256(Path(args.data).read_bytes()).hexdigest(),
        samples=len(data),
        config=model.config.to_dict(),
    )
    trainer = Trainer(
        model, tok, data, targs, out, tokenizer_dir=args.model, rank=rank, world=world
    )
    if args.resume:
        trainer.load_checkpoint(args.resume)
    if trainer.is_main:
        print(
            f"training {sum(int(np.prod(p.shape)) for p in trainer.params.values())} "
            f"parameters on {len(data)} samples for {trainer.total_steps} steps (warmup "
            f"{trainer.warmup}); {world} process(es) x batch {targs.batch_size} x "
            f"accumulation {targs.grad_accum}",
            file=sys.stderr,
        )
    losses = trainer.train()
    final = out / "final"
    trainer.save_model(final, overwrite=True)
    if trainer.is_main:
        print(f"final loss {losses[-1]:.4f}; model written to {final}", file=sys.stderr)
    return 0
