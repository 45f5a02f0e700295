"""Peak RSS of converting an original-layout FLUX checkpoint: ppflux's streaming converter
against the naive way (load every tensor, convert the dict, save it), in separate processes.

Checkpoints are synthetic, FLUX.1-dev-wide (hidden 3072, bf16), written as sparse files (header
plus a hole) so they take no disk. Depths 1+2, 2+4 and 4+8 blocks run both ways; the full
19+38-block (12B, 23.8 GB) shape runs streaming only (the naive way would need more than this
machine's 24 GiB of RAM) with all-zero outputs written as holes, so no disk is used either.

    python benchmarks/bench_memory.py [--skip-full]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

CHILD = r"""
import resource, sys, time, json
sys.path.insert(0, {tests!r})
mode, src, out = sys.argv[1:4]
t0 = time.perf_counter()
if mode == "streaming":
    from ppflux.convert import convert_original
    convert_original(src, out, progress=False, sparse_zeros=True)
else:
    import numpy as np
    from ppflux.convert import transformer_specs
    from ppflux.safetensors_io import SafeOpen, write_streaming
    with SafeOpen(src) as reader:
        config, specs = transformer_specs(reader)
        # naive: materialise every converted tensor first (what a load_file + dict-rename
        # converter does), then write
        tensors = [(n, d, s, np.array(p())) for n, d, s, p in specs]
    import os
    os.makedirs(out, exist_ok=True)
    write_streaming(out + "/diffusion_pytorch_model.safetensors",
                    [(n, d, s, (lambda a=a: a)) for n, d, s, a in tensors], sparse_zeros=True)
print(json.dumps({{"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - t0}}))
"""


def run(mode, src, out):
    code = CHILD.format(tests=str(HERE.parent / "tests"))
    res = subprocess.run(
        [sys.executable, "-c", code, mode, str(src), str(out)], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    from synthetic import flux_bfl_shapes, write_sparse_safetensors

    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument(
        "--record",
        action="store_true",
        help="update the committed results/memory.json (default: results/memory.local.json)",
    )
    args = parser.parse_args()
    rows = []
    configs = [(1, 2), (2, 4), (4, 8)] + ([] if args.skip_full else [(19, 38)])
    with tempfile.TemporaryDirectory() as tmp:
        for depth, single in configs:
            shapes = flux_bfl_shapes(hidden=3072, depth=depth, single_depth=single)
            src = write_sparse_safetensors(
                Path(tmp) / f"flux-{depth}-{single}.safetensors", shapes, "BF16"
            )
            size_gb = (os.path.getsize(src)) / 1e9
            row = {
                "double_blocks": depth,
                "single_blocks": single,
                "checkpoint_gb": round(size_gb, 2),
            }
            for mode in ("streaming", "naive"):
                if mode == "naive" and depth == 19:
                    row["naive_peak_rss_mb"] = None
                    continue
                r = run(mode, src, Path(tmp) / f"out-{mode}-{depth}")
                row[f"{mode}_peak_rss_mb"] = round(r["peak_rss_mb"])
                row[f"{mode}_seconds"] = round(r["seconds"], 1)
                import shutil

                shutil.rmtree(Path(tmp) / f"out-{mode}-{depth}", ignore_errors=True)
            if row.get("naive_peak_rss_mb"):
                row["naive_over_streaming"] = round(
                    row["naive_peak_rss_mb"] / row["streaming_peak_rss_mb"], 2
                )
            rows.append(row)
            print(json.dumps(row))
            src.unlink()
    result = {
        "benchmark": "convert original FLUX checkpoint, peak RSS",
        "rows": rows,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "self_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    out = HERE / "results" / ("memory.json" if args.record else "memory.local.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
