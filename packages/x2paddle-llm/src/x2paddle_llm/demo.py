"""End-to-end demo on an embedded default: a tiny random Qwen2 built with transformers.

    python -m x2paddle_llm.demo [--out DIR]     (needs torch + transformers: the ``test`` extra)

No hub access is possible here, so the "checkpoint" is a tiny random model saved in the real
Hugging Face layout; every step after that is what a user runs on a real folder.  The folder
(``--out``, default ``x2paddle-llm-demo``) stays, and every command printed can be copied and
run as printed.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m x2paddle_llm.demo")
    parser.add_argument(
        "--out", type=Path, default=Path("x2paddle-llm-demo"), help="folder the demo leaves behind"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    from ._errors import run_cli
    from .cli import main as cli
    from .tiny import make_tiny

    root = args.out
    print(
        f"== building a tiny random Qwen2 checkpoint with transformers in {root}/hf (no hub access here)"
    )
    rc = run_cli(lambda _: make_tiny(root / "hf", "qwen2", overwrite=args.overwrite) and 0, [])
    if rc:
        return rc
    over = ["--overwrite"] if args.overwrite else []
    steps = [
        ["convert", str(root / "hf"), str(root / "paddle"), "--quiet", *over],
        ["verify", str(root / "hf"), str(root / "paddle"), "--max-new-tokens", "16"],
        [
            "generate",
            str(root / "paddle"),
            "--prompt",
            "w5 w6 w7 w8",
            "--max-new-tokens",
            "12",
            "--no-eos",
        ],
        [
            "generate",
            str(root / "paddle"),
            "--prompt",
            "w5 w6",
            "--prompt",
            "w9 w10 w11 w12 w13",
            "--max-new-tokens",
            "8",
            "--do-sample",
            "--top-p",
            "0.9",
            "--temperature",
            "0.8",
            "--seed",
            "0",
        ],
        [
            "generate",
            str(root / "paddle"),
            "--chat",
            "--prompt",
            "w7 w8 w9",
            "--max-new-tokens",
            "8",
        ],
        ["export", str(root / "paddle"), str(root / "inference"), *over],
        [
            "generate",
            str(root / "inference"),
            "--inference",
            "--prompt",
            "w5 w6 w7 w8",
            "--max-new-tokens",
            "12",
            "--no-eos",
            "--json",
        ],
    ]
    for step in steps:
        print(f"\n$ x2paddle-llm {shlex.join(step)}", flush=True)
        rc = cli(step)
        if rc != 0:
            return rc
    print(f"\nThe folders stay in {root}/ (hf, paddle, inference): run the commands above on them.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
