"""Conversion throughput (MB/s) and peak RSS on a synthetic sharded checkpoint.

    python benchmarks/bench_convert.py --gb 4 --shards 4

Writes a random Llama-shaped fp16 checkpoint of about ``--gb`` GB in ``--shards`` shards with
an index (streamed, never held in memory), then runs ``x2paddle-llm convert`` in a child
process and reports its wall time, MB/s and peak RSS (``ru_maxrss`` of the child), next to the
size of the largest tensor (what peak memory should stay near).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_record_flag, write_result  # noqa: E402

from x2paddle_llm._safetensors import PlannedTensor, StreamingWriter  # noqa: E402
from x2paddle_llm.config import normalize_hf_config  # noqa: E402
from x2paddle_llm.schema import expected_tensors  # noqa: E402

# The converter runs in a fresh process that reports its own high-water mark (VmHWM belongs
# to the process's address space, which exec resets; ru_maxrss of children does not).
CHILD = """
import sys
from x2paddle_llm.cli import main
rc = main(["convert", sys.argv[1], sys.argv[2], "--dtype", sys.argv[3], "--quiet"])
assert rc == 0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(hwm)
"""


def synthetic_config(gb: float) -> dict:
    hidden, inter, vocab = 2048, 5632, 32000
    per_layer = 2 * (hidden * hidden * 2 + hidden * 256 * 2 + 3 * hidden * inter)  # fp16 bytes
    fixed = 2 * 2 * vocab * hidden
    layers = max(1, round((gb * 1e9 - fixed) / per_layer))
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "head_dim": 128,
        "vocab_size": vocab,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "dtype": "float16",
    }


def write_checkpoint(folder: Path, raw: dict, shards: int) -> int:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(raw))
    specs = list(expected_tensors(normalize_hf_config(raw)).values())
    total = sum(int(np.prod(s.hf_shape)) * 2 for s in specs)
    groups: list[list] = [[] for _ in range(shards)]
    budget, acc, g = total / shards, 0, 0
    for s in specs:
        if acc >= budget * (g + 1) and g < shards - 1:
            g += 1
        groups[g].append(s)
        acc += int(np.prod(s.shape)) * 2
    rng = np.random.default_rng(0)
    weight_map = {}
    for i, group in enumerate(groups):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        plan = [PlannedTensor(s.hf_name, "F16", s.hf_shape) for s in group]
        with StreamingWriter(folder / name, plan) as w:
            for s in group:
                w.write(
                    s.hf_name, rng.standard_normal(s.hf_shape, dtype=np.float32).astype(np.float16)
                )
                weight_map[s.hf_name] = name
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    return total


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--gb",
        type=float,
        default=1.0,
        help="checkpoint size in GB (default 1; the issue's figure is 4)",
    )
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--dtype", default="keep", help="--dtype passed to convert")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--write-only", type=Path, default=None, help=argparse.SUPPRESS)
    add_record_flag(ap)
    args = ap.parse_args()
    if (
        args.write_only
    ):  # child process: keeps the parent small, so ru_maxrss of children is the converter's
        write_checkpoint(args.write_only, synthetic_config(args.gb), args.shards)
        return
    work = Path(tempfile.mkdtemp(prefix="x2pllm_bench_", dir=args.workdir))
    try:
        raw = synthetic_config(args.gb)
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--gb",
                str(args.gb),
                "--shards",
                str(args.shards),
                "--write-only",
                str(work / "hf"),
            ],
            check=True,
        )
        total = sum(p.stat().st_size for p in (work / "hf").glob("*.safetensors"))
        print(
            f"synthetic checkpoint: {total / 1e9:.2f} GB, {raw['num_hidden_layers']} layers, "
            f"{time.perf_counter() - t0:.1f} s to write"
        )
        largest = max(
            int(np.prod(s.hf_shape)) * 2
            for s in expected_tensors(normalize_hf_config(raw)).values()
        )
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(work / "hf"), str(work / "out"), args.dtype],
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        print(done.stdout.strip().splitlines()[0])
        peak_kb = int(done.stdout.strip().splitlines()[-1])
        report = json.loads((work / "out" / "conversion_report.json").read_text())
        write_result(
            f"convert_{args.gb:g}gb",
            {
                "command": f"python benchmarks/bench_convert.py --gb {args.gb:g} --shards {args.shards}",
                "checkpoint_gb": round(total / 1e9, 3),
                "shards": args.shards,
                "tensors": report["tensors_mapped"],
                "largest_tensor_mb": round(largest / 1e6, 1),
                "wall_seconds_including_interpreter": round(seconds, 2),
                "convert_seconds": report["seconds"],
                "mb_per_s": report["mb_per_s"],
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "peak_rss_limit_mb": 1536,
                "peak_rss_ok": peak_kb / 1024 < 1536,
            },
            record=args.record,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
