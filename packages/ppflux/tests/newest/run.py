"""Parity of ppflux against the newest diffusers / transformers, in one command.

ppdiffusers 0.29 needs huggingface_hub < 0.26 and transformers 5 / diffusers 0.42 need >= 1,
so the two sides cannot share a venv. This script (run with the ppflux venv's python):

1. makes a throw-away reference venv with ``tests/newest/constraints.txt`` (torch 2.13.0 CPU,
   diffusers, transformers 5), unless ``--ref-python`` names an existing one;
2. runs ``make_reference.py`` there: tiny random components built and saved by the newest
   libraries, plus their outputs (transformer dev/schnell, ControlNet plain/union, scheduler,
   text-to-image / img2img / inpaint / ControlNet / multi-union-ControlNet pipelines);
3. runs ``pytest tests/newest`` in this interpreter, which loads those folders with ppflux
   and compares (tolerances in ``cases.py``);
4. removes the folder it made for the run (made with ``tempfile.mkdtemp``; inside a nox
   session venv it is made in that venv's folder). ``--keep DIR`` works in ``DIR`` instead and
   deletes nothing: the script never deletes a folder it did not make itself.

    python tests/newest/run.py [--ref-python PATH] [--keep DIR] [--out results.json] [-- PYTEST ARGS]

Prints the wall time of each phase. The nox session ``test-ppflux-newest`` runs exactly this.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE_PACKAGES = [
    "torch==2.13.0",
    "diffusers",
    "transformers",
    "sentencepiece",
    "safetensors",
    "numpy",
    "Pillow",
    "protobuf",
    "peft",  # diffusers' load_lora_weights (the control-LoRA cases)
]


def _phase(label, started):
    elapsed = time.perf_counter() - started
    print(f"[parity-newest] {label}: {elapsed:.1f} s", flush=True)
    return elapsed


def make_reference_venv(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-compile",
            "-c",
            str(HERE / "constraints.txt"),
            *REFERENCE_PACKAGES,
        ],
        check=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    return python


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--ref-python", type=Path, help="python of an existing venv with the reference stack"
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--out", type=Path, help="write the measured differences here (JSON)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    # only a folder this run made with mkdtemp is ever deleted; a --keep folder is the user's
    made = None
    if args.keep:
        work = args.keep
        work.mkdir(parents=True, exist_ok=True)
    else:
        # inside a nox session venv: beside it (the disk the session already uses)
        parent = sys.prefix if ".nox" in Path(sys.prefix).parts else None
        made = work = Path(tempfile.mkdtemp(prefix="ppflux-parity-newest-", dir=parent))
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    total = time.perf_counter()
    try:
        python = args.ref_python
        if python is None:
            started = time.perf_counter()
            python = make_reference_venv(work / "venv")
            _phase("reference venv (torch, diffusers, transformers)", started)
        started = time.perf_counter()
        subprocess.run(
            [str(python), str(HERE / "make_reference.py"), str(work / "ref")], check=True, env=env
        )
        _phase("reference outputs", started)
        started = time.perf_counter()
        env["PPFLUX_NEWEST_DIR"] = str(work / "ref")
        if args.out:
            env["PPFLUX_PARITY_OUT"] = str(args.out.resolve())
        # --confcutdir: tests/conftest.py (torch, the in-process reference) is not for this run
        code = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(HERE),
                "-ra",
                "--confcutdir",
                str(HERE),
                "-p",
                "no:cacheprovider",
                *args.pytest_args,
            ],
            env=env,
        ).returncode
        _phase("ppflux checks", started)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    _phase("total (without the ppflux venv)", total)
    return code


if __name__ == "__main__":
    sys.exit(main())
