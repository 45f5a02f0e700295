"""Training arguments: the dataclass and the command-line flags (imports nothing heavy, so
``ppgotocr train --help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass


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
    gradient_checkpointing: bool = False


def add_train_arguments(p) -> None:
    p.add_argument("--model", required=True, help="model folder (any supported layout)")
    p.add_argument("--data", required=True, help="conversations JSON (original GOT format)")
    p.add_argument("--images", required=True, help="folder the 'image' paths are relative to")
    p.add_argument("--output", required=True, help="output folder: checkpoint-N/ and final/")
    d = TrainArgs()
    p.add_argument(
        "--lr", type=float, default=d.lr, help="peak learning rate (default %(default)s)"
    )
    p.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio, help="default %(default)s")
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=d.warmup_steps,
        help="overrides --warmup-ratio when > 0 (default %(default)s)",
    )
    p.add_argument(
        "--scheduler",
        choices=["cosine", "linear", "constant"],
        default=d.scheduler,
        help="default %(default)s",
    )
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="default %(default)s")
    p.add_argument(
        "--max-grad-norm",
        type=float,
        default=d.max_grad_norm,
        help="default %(default)s; 0 turns clipping off",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="samples per micro-batch and process (default %(default)s)",
    )
    p.add_argument("--grad-accum", type=int, default=d.grad_accum, help="default %(default)s")
    p.add_argument("--epochs", type=int, default=d.epochs, help="default %(default)s")
    p.add_argument(
        "--max-steps",
        type=int,
        default=d.max_steps,
        help="optimizer updates; overrides --epochs when > 0 (default %(default)s)",
    )
    p.add_argument(
        "--save-steps",
        type=int,
        default=d.save_steps,
        help="checkpoint every N updates; 0: only the final model (default %(default)s)",
    )
    p.add_argument("--max-length", type=int, default=d.max_length, help="default %(default)s")
    p.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    p.add_argument(
        "--freeze-lm-model",
        action="store_true",
        help="train only the projector and token embeddings (the original's meaning)",
    )
    p.add_argument(
        "--train-vision",
        action="store_true",
        help="also train the vision tower + net_2/net_3 (the original never does)",
    )
    p.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute decoder layers in the backward pass (less memory, same gradients)",
    )
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue from output/checkpoint-N")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="allow an existing, non-empty --output (its final/ is replaced at the end)",
    )
