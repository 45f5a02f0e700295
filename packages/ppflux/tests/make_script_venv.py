"""Make the venv that runs diffusers' Kontext training script for test_train_script_kontext.py.

    python tests/make_script_venv.py [--out DIR]

The Kontext script exists from diffusers 0.35 on, and diffusers >= 0.35 needs a newer
huggingface_hub than ppdiffusers 0.29 accepts, so the script runs in its own venv (torch,
torchvision, diffusers, transformers, peft, accelerate, datasets; no Paddle), pinned by
``tests/script_venv_constraints.txt``. Default DIR: ``<this interpreter's prefix>/script-venv``
(inside a nox session venv, it is kept and reused until nox replaces the session venv); an
existing venv made with the same constraints is reused. Prints its interpreter. Does nothing,
saying so, when no diffusers source is given (PPFLUX_DIFFUSERS_GIT / PPFLUX_DIFFUSERS_SRC),
since the tests that need it skip then.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONSTRAINTS = HERE / "script_venv_constraints.txt"
PACKAGES = [
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "sentencepiece",
    "protobuf",
]


def default_dir() -> Path:
    return Path(sys.prefix) / "script-venv"


def make(folder: Path) -> Path:
    python = folder / "bin" / "python"
    stamp = folder / "constraints.txt"
    if python.is_file() and stamp.is_file() and stamp.read_text() == CONSTRAINTS.read_text():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]
        + ["-c", str(CONSTRAINTS), *PACKAGES],
        check=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    shutil.copyfile(CONSTRAINTS, stamp)  # written last: a killed install is redone
    return python


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="the venv folder")
    args = parser.parse_args(argv)
    if not (os.environ.get("PPFLUX_DIFFUSERS_GIT") or os.environ.get("PPFLUX_DIFFUSERS_SRC")):
        print("no PPFLUX_DIFFUSERS_GIT / PPFLUX_DIFFUSERS_SRC: the script tests skip, no venv made")
        return 0
    print(make(args.out or default_dir()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
