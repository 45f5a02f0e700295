"""Supervised fine-tuning (placeholder until the trainer lands)."""

from __future__ import annotations


def add_train_arguments(p) -> None:
    p.add_argument("--data", required=False)


def main_train(args) -> int:
    raise SystemExit("ppgotocr train: not implemented yet")
