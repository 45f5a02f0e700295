"""``ppflux train-dreambooth-lora`` under ``python -m paddle.distributed.launch`` (2 processes,
gloo, CPU) against one process with the same global batch; resume on another number of
processes; ranks that disagree.

The run covers what can make ranks drift apart: random crops and flips (drawn while loading),
gradient accumulation (``no_sync`` on the first micro-batch of each update), a short last
micro-batch that leaves rank 1 without an image, and CLIP LoRA (``--train_text_encoder``)
next to the transformer LoRA. Tolerances (fp32): losses <= 1e-6 relative at every micro-batch,
all LoRA tensors together <= 1e-6 relative after 3 steps; the worst single tensor is printed
(Adam divides each update by sqrt(v), so single elements with near-zero gradients amplify
fp32 rounding of the gradient average; see test_train.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_train import _args, _images

LOSS_TOL = 1e-6
WEIGHTS_TOL = 1e-6
COMMON = dict(
    max_train_steps=3,
    gradient_accumulation_steps=2,
    checkpointing_steps=1,
    learning_rate=1e-3,
    weighting_scheme="logit_normal",
    random_flip=True,
    train_text_encoder=True,
    text_encoder_lr=5e-4,
)


def _argv(args) -> list[str]:
    """The command line that ``parse_args`` turned into ``args``."""
    out = []
    for k, v in vars(args).items():
        if v is None or v is False:
            continue
        out += [f"--{k}"] + ([] if v is True else [str(v)])
    return out


def _launch(nproc: int, argv: list[str], cwd: Path, timeout: int = 150):
    env = dict(os.environ, PADDLE_DISTRI_BACKEND="gloo", OMP_NUM_THREADS="1")
    log_dir = cwd / f"logs-{len(list(cwd.glob('logs-*')))}"
    cmd = [
        sys.executable,
        "-m",
        "paddle.distributed.launch",
        "--nproc_per_node",
        str(nproc),
        "--log_dir",
        str(log_dir),
        *argv,
    ]
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    logs = {p.name: p.read_text(errors="replace") for p in sorted(log_dir.glob("workerlog.*"))}
    return res.returncode, res.stdout + res.stderr + "\n".join(logs.values()), logs


def _ppflux_script() -> str:
    script = Path(sys.executable).parent / "ppflux"
    if not script.is_file():
        pytest.skip("the ppflux console script is not installed next to this Python")
    return str(script)


def _lora(folder: Path) -> dict:
    from ppflux.safetensors_io import SafeOpen

    with SafeOpen(folder / "pytorch_lora_weights.safetensors") as r:
        return {k: r.get(k) for k in r.keys()}


def _losses(folder: Path) -> list[float]:
    lines = (folder / "train_log.jsonl").read_text().splitlines()
    return [x for line in lines for x in json.loads(line)["losses"]]


def _rel(a: dict, b: dict) -> tuple[float, float, str]:
    """(all tensors together, worst single tensor, its key), relative L2."""
    num = sum(float(((a[k] - b[k]).astype(np.float64) ** 2).sum()) for k in b)
    den = sum(float((b[k].astype(np.float64) ** 2).sum()) for k in b)
    worst = max(
        (float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-30)), k) for k in b
    )
    return (num / den) ** 0.5, worst[0], worst[1]


@pytest.fixture(scope="module")
def runs(dev_pipe_dir, tmp_path_factory):
    """One process with 2 images per micro-batch (in this process) and two processes with 1
    each; 3 instance images, so every second micro-batch leaves rank 1 without one."""
    from ppflux.train_dreambooth_lora import train

    root = tmp_path_factory.mktemp("dist")
    data = _images(root / "data", n=3)
    one = _args(dev_pipe_dir, data, root / "one", train_batch_size=2, **COMMON)
    one.center_crop = False
    train(one)
    two = _args(dev_pipe_dir, data, root / "two", train_batch_size=1, **COMMON)
    two.center_crop = False
    code, text, logs = _launch(2, [_ppflux_script(), "train-dreambooth-lora", *_argv(two)], root)
    assert code == 0, text[-4000:]
    return root, data, logs


def test_two_processes_equal_one(runs, parity):
    root, _, logs = runs
    ones, twos = _losses(root / "one"), _losses(root / "two")
    assert len(ones) == len(twos) == 6  # 3 updates x 2 micro-batches, logged once
    loss_rel = max(abs(a - b) / abs(a) for a, b in zip(ones, twos))
    w1, w2 = _lora(root / "one"), _lora(root / "two")
    assert sorted(w1) == sorted(w2) and any(k.startswith("text_encoder.") for k in w1)
    together, worst, key = _rel(w2, w1)
    print(
        f"\n2 processes vs 1, 3 steps: losses {loss_rel:.2e} relative (worst micro-batch); "
        f"LoRA all tensors together {together:.2e}, worst single tensor {worst:.2e} ({key})"
    )
    parity("2 processes vs 1: losses (relative, worst micro-batch)", loss_rel, LOSS_TOL)
    parity("2 processes vs 1: LoRA after 3 steps (relative, all)", together, WEIGHTS_TOL)
    parity("2 processes vs 1: LoRA after 3 steps (relative, worst tensor)", worst, None)
    assert loss_rel <= LOSS_TOL, (ones, twos)
    assert together <= WEIGHTS_TOL
    # the comparison is not between two untouched copies: every LoRA-B moved from zero
    assert all(np.abs(w1[k]).max() > 0 for k in w1 if "lora_B" in k)
    # only rank 0 wrote: one log, one LoRA, its checkpoints; the progress bar on rank 0 only
    assert sorted(p.name for p in (root / "two").iterdir()) == [
        "checkpoint-1",
        "checkpoint-2",
        "checkpoint-3",
        "pytorch_lora_weights.safetensors",
        "train_log.jsonl",
        "training_config.json",
    ]
    assert "training:" in logs["workerlog.0"] and "training:" not in logs["workerlog.1"]


def test_resume_on_one_process_from_two(runs, dev_pipe_dir):
    from ppflux.train_dreambooth_lora import train

    root, data, _ = runs
    out = root / "resumed"
    args = _args(
        dev_pipe_dir,
        data,
        out,
        train_batch_size=2,
        resume_from_checkpoint=str(root / "two" / "checkpoint-2"),
        **COMMON,
    )
    args.center_crop = False
    train(args)
    resumed, w1 = _lora(out), _lora(root / "one")
    assert _rel(resumed, w1)[0] <= WEIGHTS_TOL
    last = _losses(out)  # only the third update ran here
    assert len(last) == 2
    assert max(abs(a - b) / abs(a) for a, b in zip(_losses(root / "one")[4:], last)) <= LOSS_TOL


def test_resume_with_another_global_batch_is_refused(runs, dev_pipe_dir):
    from ppflux.train_dreambooth_lora import train

    root, data, _ = runs
    args = _args(
        dev_pipe_dir,
        data,
        root / "refused",
        train_batch_size=1,
        resume_from_checkpoint=str(root / "two" / "checkpoint-2"),
        **COMMON,
    )
    with pytest.raises(ValueError, match="global batch of 2 images per micro-batch"):
        train(args)


def test_ranks_that_disagree_stop_with_a_message(tmp_path):
    script = tmp_path / "disagree.py"
    script.write_text(
        "import sys\n"
        "from ppflux._errors import run_cli\n"
        "from ppflux._distributed import check_ranks_agree, init\n"
        "def main(argv):\n"
        "    rank, world = init()\n"
        "    check_ranks_agree(world, arguments={'rank': 4}, instance_images=[('a.png', rank)])\n"
        "sys.exit(run_cli(main))\n"
    )
    code, text, _ = _launch(2, [str(script)], tmp_path, timeout=60)
    assert code != 0
    assert (
        "error: the 2 processes were started with different instance_images "
        "(rank 1 differs from rank 0)" in text
    ), text[-3000:]
