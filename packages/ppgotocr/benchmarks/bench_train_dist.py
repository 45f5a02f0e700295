"""Training throughput on 1 and 2 processes (``paddle.distributed.launch``, gloo on CPU).

Builds the tiny random GOT of ``ppgotocr make-tiny`` (256 px input, 2-layer decoder), 16
rendered text lines, and trains ``STEPS`` updates with batch 2 per process (so 2 processes
see twice the samples per update), vision tower frozen as the original does. Reports the
median seconds per update (first 3 excluded) from the trainer's own timing, steps/s and
samples/s, and the scaling factor of samples/s. Prints the result and writes
``benchmarks/results/train_dist.local.json``; ``--record`` writes the committed
``train_dist.json`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import add_record_flag, load_average, write_result  # noqa: E402

STEPS = int(os.environ.get("PPGOTOCR_BENCH_STEPS", "20"))
BATCH = 2


def make_data(root: Path) -> Path:
    from PIL import Image, ImageDraw

    samples = []
    for i in range(16):
        text = f"Line {i}: invoice {100 + i} total {i * 3.5:.2f}"
        img = Image.new("RGB", (256, 128), "white")
        ImageDraw.Draw(img).text((8, 50), text, fill="black")
        img.save(root / f"l{i}.png")
        samples.append(
            {
                "image": f"l{i}.png",
                "conversations": [
                    {"from": "human", "value": "<image>\nOCR: "},
                    {"from": "gpt", "value": text},
                ],
            }
        )
    (root / "data.json").write_text(json.dumps(samples))
    return root / "data.json"


def run(nproc: int, root: Path) -> dict:
    out = root / f"run{nproc}"
    args = [
        "train",
        "--model",
        str(root / "tiny"),
        "--data",
        str(root / "data.json"),
        "--images",
        str(root),
        "--output",
        str(out),
        "--batch-size",
        str(BATCH),
        "--max-steps",
        str(STEPS),
        "--save-steps",
        str(STEPS),
        "--lr",
        "1e-4",
    ]
    script = str(Path(sys.executable).parent / "ppgotocr")
    env = dict(os.environ, PADDLE_DISTRI_BACKEND="gloo")
    if nproc == 1:
        cmd = [script, *args]
    else:
        cmd = [
            sys.executable,
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            str(nproc),
            "--log_dir",
            str(root / f"logs{nproc}"),
            script,
            *args,
        ]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    state = json.loads((out / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    per_step = statistics.median(state["step_seconds"][3:])
    return {
        "processes": nproc,
        "median_s_per_step": round(per_step, 4),
        "steps_per_s": round(1 / per_step, 2),
        "samples_per_s": round(nproc * BATCH / per_step, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_record_flag(ap)
    args = ap.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(
            [str(Path(sys.executable).parent / "ppgotocr"), "make-tiny", str(root / "tiny")],
            check=True,
            capture_output=True,
        )
        make_data(root)
        rows = [run(1, root), run(2, root)]
    result = {
        "rows": rows,
        "samples_per_s_scaling_2_over_1": round(
            rows[1]["samples_per_s"] / rows[0]["samples_per_s"], 3
        ),
        "load_average_1min_before_after": [load_before, load_average()],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpus": os.cpu_count(),
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
        f"python benchmarks/bench_train_dist.py",
        "ppgotocr_version": __import__("ppgotocr").__version__,
    }
    print(json.dumps(result, indent=2))
    print(f"wrote {write_result('train_dist', result, args.record).name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
