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
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

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
    roles = {"human": ROLE_USER, "user": ROLE_USER, "gpt": ROLE_ASSISTANT, "assistant": ROLE_ASSISTANT}
    text = SYSTEM_TRAIN + SEP
    n_images = 0
    for turn_i, turn in enumerate(conversations):
        if not isinstance(turn, dict) or turn.get("from") not in roles or not isinstance(turn.get("value"), str):
            raise InputError(f"sample {index}: turn {turn_i} needs 'from' (human/gpt) and a string 'value'")
        expected = ROLE_USER if turn_i % 2 == 0 else ROLE_ASSISTANT
        if roles[turn["from"]] != expected:
            raise InputError(f"sample {index}: turn {turn_i} should be from "
                             f"{'human' if expected == ROLE_USER else 'gpt'}")
        value = turn["value"]
        n_images += value.count("<image>")
        value = value.replace("<image>", image_block)
        text += roles[turn["from"]] + value + SEP
    if n_images != 1:
        raise InputError(f"sample {index}: needs exactly one <image> placeholder in the "
                         f"conversation, found {n_images}")
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
        re_rounds.append(SEP.join(rounds[i:i + 2]))
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
        labels[cur:cur + instruction_len] = [IGNORE_INDEX] * len(labels[cur:cur + instruction_len])
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
        ids[r, :len(a)] = a
        labels[r, :len(b)] = b
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
            if name.startswith("multi_modal_projector.") or name == "language_model.embed_tokens.weight":
                names.append(name)
        else:
            names.append(name)
    return names


def compute_loss(model, ids, labels, mask, pixels, train_vision=False):
    import paddle
    import paddle.nn.functional as F

    px = paddle.to_tensor(pixels)
    if train_vision:
        feats = model.get_image_features(px)
    else:
        with paddle.no_grad():  # the original's vision_tower_high (incl. net_2/net_3) has no grad
            proj = model.multi_modal_projector
            v = proj.conv_upsampler2(proj.conv_upsampler1(model.vision_tower(px)))
            v = v.flatten(2).transpose([0, 2, 1])
        feats = proj.multimodal_projector(v.detach())
    logits, _ = model(paddle.to_tensor(ids), image_features=feats,
                      attention_mask=paddle.to_tensor(mask))
    logits = logits[:, :-1].reshape([-1, logits.shape[-1]])
    target = paddle.to_tensor(labels[:, 1:].reshape(-1))
    # paddle's reduction="mean" divides by every position, ignored ones included (3.3.1):
    # sum and divide by the number of learned tokens, which is torch's mean
    per_token = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")
    count = int((labels[:, 1:] != IGNORE_INDEX).sum())
    return per_token.sum() / max(count, 1)


@dataclass
class TrainArgs:
    lr: float = 2e-5
    warmup_ratio: float = 0.001
    warmup_steps: int = 0
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    batch_size: int = 1
    grad_accum: int = 1
    epochs: int = 1
    max_steps: int = -1
    save_steps: int = 0
    seed: int = 42
    max_length: int = 8192
    freeze_lm_model: bool = False
    train_vision: bool = False


def lr_lambda(step: int, warmup: int, total: int, kind: str) -> float:
    """transformers' get_{cosine,linear,constant}_schedule_with_warmup."""
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "linear":
        return max(0.0, 1.0 - progress)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


class AdamW:
    """torch.optim.AdamW's update (decoupled decay, bias corrections), state keyed by name."""

    def __init__(self, params: dict, args: TrainArgs, no_decay: set):
        import paddle

        self.params, self.args, self.no_decay = params, args, no_decay
        self.t = 0
        self.m = {n: paddle.zeros_like(p) for n, p in params.items()}
        self.v = {n: paddle.zeros_like(p) for n, p in params.items()}

    def step(self, lr: float) -> None:
        import paddle

        a = self.args
        self.t += 1
        bc1 = 1 - a.adam_beta1**self.t
        bc2_sqrt = math.sqrt(1 - a.adam_beta2**self.t)
        with paddle.no_grad():
            for n, p in self.params.items():
                g = p.grad
                if g is None:
                    continue
                if a.weight_decay and n not in self.no_decay:
                    p.set_value(p * (1 - lr * a.weight_decay))
                self.m[n] = self.m[n] * a.adam_beta1 + g * (1 - a.adam_beta1)
                self.v[n] = self.v[n] * a.adam_beta2 + g * g * (1 - a.adam_beta2)
                denom = self.v[n].sqrt() / bc2_sqrt + a.adam_eps
                p.set_value(p - (lr / bc1) * (self.m[n] / denom))

    def state_arrays(self) -> dict:
        out = {f"m.{n}": t.numpy() for n, t in self.m.items()}
        out.update({f"v.{n}": t.numpy() for n, t in self.v.items()})
        return out

    def load_arrays(self, arrays: dict, t: int) -> None:
        import paddle

        self.t = t
        for n in self.params:
            self.m[n] = paddle.to_tensor(arrays[f"m.{n}"])
            self.v[n] = paddle.to_tensor(arrays[f"v.{n}"])


def clip_grad_norm(params: dict, max_norm: float) -> float:
    """torch.nn.utils.clip_grad_norm_ (coef = max / (norm + 1e-6), clamped at 1)."""
    import paddle

    grads = [p.grad for p in params.values() if p.grad is not None]
    if not grads:
        return 0.0
    total = paddle.sqrt(paddle.add_n([paddle.sum(g.astype("float32") ** 2) for g in grads]))
    total_f = float(total)
    if max_norm and max_norm > 0:
        coef = min(1.0, max_norm / (total_f + 1e-6))
        if coef < 1.0:
            for p in params.values():
                if p.grad is not None:
                    p.grad.set_value(p.grad * coef)
    return total_f


class Trainer:
    def __init__(self, model, tokenizer, dataset: SFTDataset, args: TrainArgs, output_dir=None,
                 tokenizer_dir=None):
        self.model, self.tokenizer, self.dataset, self.args = model, tokenizer, dataset, args
        self.output_dir = Path(output_dir) if output_dir else None
        self.tokenizer_dir = tokenizer_dir
        names = set(trainable_names(model, args.freeze_lm_model, args.train_vision))
        self.params = {}
        for n, p in model.named_parameters():
            p.stop_gradient = n not in names
            if n in names:
                self.params[n] = p
        # transformers' Trainer: no decay for biases and LayerNorm weights
        no_decay = {n for n in self.params if n.endswith(".bias") or "layer_norm" in n}
        self.optimizer = AdamW(self.params, args, no_decay)
        per_epoch = math.ceil(len(dataset) / args.batch_size)
        updates_per_epoch = max(1, per_epoch // args.grad_accum)
        self.total_steps = args.max_steps if args.max_steps > 0 else updates_per_epoch * args.epochs
        self.warmup = args.warmup_steps or math.ceil(self.total_steps * args.warmup_ratio)
        self.step = 0
        self.losses = []

    def batches(self):
        """Deterministic order: epoch e shuffles with seed + e."""
        a = self.args
        epoch = 0
        while True:
            order = np.random.RandomState(a.seed + epoch).permutation(len(self.dataset))
            for i in range(0, len(order), a.batch_size):
                yield collate([self.dataset.items[j] for j in order[i:i + a.batch_size]],
                              self.model.config.pad_token_id)
            epoch += 1

    def lr_at(self, step: int) -> float:
        return self.args.lr * lr_lambda(step, self.warmup, self.total_steps, self.args.scheduler)

    def train_step(self, micro_batches) -> float:
        """One optimizer update over ``grad_accum`` micro-batches. Returns the mean loss."""
        for p in self.params.values():
            p.clear_gradient(set_to_zero=False)
        total = 0.0
        for ids, labels, mask, pixels in micro_batches:
            loss = compute_loss(self.model, ids, labels, mask, pixels, self.args.train_vision)
            (loss / self.args.grad_accum).backward()
            total += float(loss)
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
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step")
        while self.step < self.total_steps:
            loss = self.train_step([next(it) for _ in range(self.args.grad_accum)])
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
        return [Path(self.tokenizer_dir, f) for f in ("tokenizer.json", "tokenizer_config.json")
                if Path(self.tokenizer_dir, f).is_file()]

    def save_model(self, folder) -> Path:
        from .convert import write_safetensors_atomic

        tensors = ((k, v.numpy()) for k, v in self.model.state_dict().items())
        return write_safetensors_atomic(folder, tensors, self.model.config, self._extra_files())

    def save_checkpoint(self, folder) -> Path:
        from safetensors.numpy import save_file

        folder = Path(folder)
        if folder.exists():
            shutil.rmtree(folder)
        self.save_model(folder)
        save_file(self.optimizer.state_arrays(), str(folder / "optimizer.safetensors"))
        state = {"step": self.step, "adam_t": self.optimizer.t, "args": asdict(self.args),
                 "losses": self.losses}
        tmp = folder / "trainer_state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, folder / "trainer_state.json")
        return folder

    def load_checkpoint(self, folder) -> None:
        from safetensors.numpy import load_file

        from .convert import load_state_dict_any

        folder = Path(folder)
        state = json.loads((folder / "trainer_state.json").read_text())
        _, weights = load_state_dict_any(folder)
        self.model.load_converted(weights)
        self.optimizer.load_arrays(load_file(str(folder / "optimizer.safetensors")), state["adam_t"])
        self.step = state["step"]
        self.losses = list(state["losses"])


# --------------------------------------------------------------------------- CLI
def add_train_arguments(p) -> None:
    p.add_argument("--model", required=True, help="model folder (any supported layout)")
    p.add_argument("--data", required=True, help="conversations JSON (original GOT format)")
    p.add_argument("--images", required=True, help="folder the 'image' paths are relative to")
    p.add_argument("--output", required=True, help="output folder: checkpoint-N/ and final/")
    d = TrainArgs()
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--scheduler", choices=["cosine", "linear", "constant"], default=d.scheduler)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--grad-accum", type=int, default=d.grad_accum)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--save-steps", type=int, default=d.save_steps, help="0: only the final model")
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--freeze-lm-model", action="store_true",
                   help="train only the projector and token embeddings (the original's meaning)")
    p.add_argument("--train-vision", action="store_true",
                   help="also train the vision tower + net_2/net_3 (the original never does)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue from output/checkpoint-N")


def main_train(args) -> int:
    import paddle

    from .modeling_got_ocr2 import GotOcr2ForConditionalGeneration
    from .tokenizer import GotOcrTokenizer

    targs = TrainArgs(**{k: getattr(args, k) for k in TrainArgs.__dataclass_fields__
                         if hasattr(args, k)})
    paddle.seed(targs.seed)
    model = GotOcr2ForConditionalGeneration.from_pretrained(args.model)
    tok = GotOcrTokenizer.from_pretrained(args.model, model.config)
    data = SFTDataset(args.data, args.images, tok, model.config, targs.max_length)
    out = Path(args.output)
    trainer = Trainer(model, tok, data, targs, out, tokenizer_dir=args.model)
    if args.resume:
        trainer.load_checkpoint(args.resume)
    print(f"training {sum(int(np.prod(p.shape)) for p in trainer.params.values())} parameters on "
          f"{len(data)} samples for {trainer.total_steps} steps (warmup {trainer.warmup})")
    losses = trainer.train()
    final = out / "final"
    if final.exists():
        shutil.rmtree(final)
    trainer.save_model(final)
    print(f"final loss {losses[-1]:.4f}; model written to {final}")
    return 0
