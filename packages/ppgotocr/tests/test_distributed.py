"""``ppgotocr train`` under ``python -m paddle.distributed.launch`` (2 processes, gloo, CPU)
against one process with the same global batch; resume on another number of processes;
ranks that disagree; recompute.

Tolerances (fp32): losses <= 1e-6 relative at every step; all trained tensors together
<= 1e-6 relative after 3 steps. The worst single tensor is printed (Adam divides by sqrt(v),
so near-zero gradients of single elements amplify float rounding).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from ppgotocr.cli import main

LOSS_TOL = 1e-6
WEIGHTS_TOL = 1e-6
TRAIN_ARGS = ["--max-steps", "3", "--save-steps", "1", "--lr", "1e-3", "--warmup-steps", "1"]


def _launch(nproc: int, script_args: list[str], cwd: Path, log_dir: Path, timeout: int = 120):
    env = dict(os.environ, PADDLE_DISTRI_BACKEND="gloo", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "paddle.distributed.launch",
        "--nproc_per_node",
        str(nproc),
        "--log_dir",
        str(log_dir),
        *script_args,
    ]
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    logs = "\n".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("workerlog.*")))
    return out.returncode, out.stdout + out.stderr + logs


def _ppgotocr_script() -> str:
    script = Path(sys.executable).parent / "ppgotocr"
    if not script.is_file():
        pytest.skip("the ppgotocr console script is not installed next to this Python")
    return str(script)


@pytest.fixture(scope="module")
def train_inputs(tiny, images, tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    samples = [
        {
            "image": images[0].name,
            "conversations": [
                {"from": "human", "value": "<image>\nOCR: "},
                {"from": "gpt", "value": "Hello world"},
            ],
        },
        {
            "image": images[1].name,
            "conversations": [
                {"from": "human", "value": "<image>\nOCR with format: "},
                {"from": "gpt", "value": "$x^2$ | a | b |"},
            ],
        },
        {
            "image": images[2].name,
            "conversations": [
                {"from": "human", "value": "<image>\nOCR: "},
                {"from": "gpt", "value": "The quick brown fox"},
            ],
        },
    ]
    (root / "data.json").write_text(json.dumps(samples))
    common = [
        "train",
        "--model",
        str(tiny["hf_dir"]),
        "--data",
        str(root / "data.json"),
        "--images",
        str(images[0].parent),
        *TRAIN_ARGS,
    ]
    return root, common


def _state(run: Path, step: int):
    folder = run / f"checkpoint-{step}"
    losses = json.loads((folder / "trainer_state.json").read_text())["losses"]
    return losses, load_file(str(folder / "model.safetensors"))


def _weights_rel(a: dict, b: dict) -> tuple[float, float, str]:
    num = sum(float(((a[k] - b[k]).astype(np.float64) ** 2).sum()) for k in a)
    den = sum(float((a[k].astype(np.float64) ** 2).sum()) for k in a)
    worst = max(
        (float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(a[k]), 1e-30)), k) for k in a
    )
    return (num / den) ** 0.5, worst[0], worst[1]


@pytest.fixture(scope="module")
def runs(train_inputs):
    """One process with batch 2 (in this process) and two processes with batch 1 each."""
    root, common = train_inputs
    assert main([*common, "--output", str(root / "one"), "--batch-size", "2"]) == 0
    code, logs = _launch(
        2,
        [_ppgotocr_script(), *common, "--output", str(root / "two"), "--batch-size", "1"],
        root,
        root / "logs",
    )
    assert code == 0, logs[-3000:]
    return root, logs


def test_two_processes_equal_one(runs):
    root, logs = runs
    assert "2 process(es) x batch 1" in logs
    losses_1, w1 = _state(root / "one", 3)
    losses_2, w2 = _state(root / "two", 3)
    assert len(losses_1) == len(losses_2) == 3
    for step, (a, b) in enumerate(zip(losses_1, losses_2), 1):
        assert abs(a - b) / abs(a) <= LOSS_TOL, (step, a, b)
    together, worst, name = _weights_rel(w1, w2)
    print(
        f"\n2 processes vs 1 after 3 steps: losses {losses_1} vs {losses_2}; all tensors "
        f"together {together:.2e} relative, worst single tensor {worst:.2e} ({name})"
    )
    assert together <= WEIGHTS_TOL
    # only rank 0 wrote: one final model, no stray temporaries
    assert sorted(p.name for p in (root / "two").iterdir()) == [
        "checkpoint-1",
        "checkpoint-2",
        "checkpoint-3",
        "final",
    ]
    # the trained model actually moved (the comparison is not between two untouched copies)
    w0 = load_file(str(root / "one" / "checkpoint-1" / "model.safetensors"))
    assert not np.array_equal(
        w0["multi_modal_projector.multimodal_projector.weight"],
        w1["multi_modal_projector.multimodal_projector.weight"],
    )


def test_resume_on_one_process_from_two(runs, train_inputs):
    root, common = train_inputs
    out = root / "two"
    assert (
        main(
            [
                *common,
                "--output",
                str(out),
                "--batch-size",
                "2",
                "--resume",
                str(out / "checkpoint-2"),
                "--save-steps",
                "3",
            ]
        )
        == 0
    )
    losses_1, w1 = _state(root / "one", 3)
    losses_r, wr = _state(out, 3)
    assert abs(losses_r[2] - losses_1[2]) / abs(losses_1[2]) <= LOSS_TOL
    assert _weights_rel(w1, wr)[0] <= WEIGHTS_TOL


def test_resume_with_another_global_batch_is_refused(runs, train_inputs, capsys):
    root, common = train_inputs
    out = root / "two"
    code = main(
        [*common, "--output", str(out), "--batch-size", "1", "--resume", str(out / "checkpoint-2")]
    )
    assert code == 2
    assert "global batch of 2" in capsys.readouterr().err


def test_ranks_that_disagree_stop_with_a_message(tmp_path):
    script = tmp_path / "disagree.py"
    script.write_text(
        "import sys\n"
        "from ppgotocr._errors import run_cli\n"
        "from ppgotocr.distributed import check_ranks_agree, init\n"
        "def main(argv):\n"
        "    rank, world = init()\n"
        "    check_ranks_agree(world, arguments={'lr': 1e-3 * (rank + 1)}, data='same')\n"
        "sys.exit(run_cli(main))\n"
    )
    code, logs = _launch(2, [str(script)], tmp_path, tmp_path / "logs")
    assert code != 0
    assert "error: the 2 processes were started with different arguments" in logs


def test_gradient_checkpointing_gives_identical_gradients(
    tiny, pipe, images, tmp_path, monkeypatch
):
    import paddle.distributed.fleet.utils as fleet_utils

    from ppgotocr.modeling_got_ocr2 import GotOcr2ForConditionalGeneration
    from ppgotocr.training import SFTDataset, TrainArgs, Trainer

    calls = []
    real = fleet_utils.recompute

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fleet_utils, "recompute", counting)

    data = tmp_path / "d.json"
    data.write_text(
        json.dumps(
            [
                {
                    "image": images[0].name,
                    "conversations": [
                        {"from": "human", "value": "<image>\nOCR: "},
                        {"from": "gpt", "value": "Hello"},
                    ],
                }
            ]
        )
    )
    grads = []
    for ckpt in (False, True):
        model = GotOcr2ForConditionalGeneration.from_pretrained(tiny["hf_dir"])
        ds = SFTDataset(data, images[0].parent, pipe.tokenizer, model.config)
        trainer = Trainer(
            model,
            pipe.tokenizer,
            ds,
            TrainArgs(max_steps=1, max_grad_norm=0.0, gradient_checkpointing=ckpt),
        )
        model.train()
        trainer.train_step([next(trainer.batches())])
        grads.append({n: p.grad.numpy() for n, p in trainer.params.items()})
    assert len(calls) == pipe.config.text.num_hidden_layers  # every decoder layer recomputed
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 20
    for name in grads[0]:
        assert np.array_equal(grads[0][name], grads[1][name]), name
