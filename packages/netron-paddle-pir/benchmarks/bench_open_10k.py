"""Time to open a synthetic 10,000-op PIR model in headless Chromium: ours vs upstream netron.

Writes the model with benchmarks/synthetic.py (Paddle's save_inference_model takes many minutes
on 10,000 ops): 2,500 residual blocks ``x = x + relu(x @ W + b)`` = 10,000 ops (matmul, add, relu,
add) and 5,000 parameters; Paddle deserializes it first to prove it is a valid program.
Then opens it through the launcher twice per round (our reader; netron's own paddle.js), rounds
interleaved, in one Chromium, and writes benchmarks/results/open_10k.json.

    python benchmarks/bench_open_10k.py [--blocks 2500] [--rounds 3]

Needs paddle, node, chromium and tests/browser/node_modules (tests/setup_browser.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=2500, help="residual blocks (default: 2500)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds (default: 2)")
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the discarded first open of each, saves time on big models (default: off)",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the committed benchmarks/results/open_10k.json (default: off, the result "
        "goes to benchmarks/results/open_10k.local.json)",
    )
    args = parser.parse_args(argv)
    from netron_paddle_pir.server import Viewer

    if not (HERE.parent / "tests" / "browser" / "node_modules" / "playwright-core").is_dir():
        # The bench session does not run the test setup: install chromium/playwright-core here.
        subprocess.run(["bash", str(HERE.parent / "tests" / "setup_browser.sh")], check=True)
    node = shutil.which("node")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        ops = synthetic.write(tmp, args.blocks)
        loaded = synthetic.validate(tmp)
        assert loaded == ops + 2 + 2 * args.blocks, (loaded, ops)
        print(
            f"wrote {ops} ops in {time.perf_counter() - started:.1f} s; paddle loads "
            f"{loaded} ops (parameters, data, fetch included)",
            file=sys.stderr,
        )
        with Viewer() as ours, Viewer(upstream_only=True) as upstream:
            cases = [
                {"name": "netron-paddle-pir", "url": ours.add(tmp / "model.json")},
                {"name": "netron 9.3.3 paddle.js", "url": upstream.add(tmp / "model.json")},
            ]
            spec = tmp / "spec.json"
            spec.write_text(
                json.dumps(
                    {
                        "chromium": chromium,
                        "cases": cases,
                        "rounds": args.rounds,
                        "warmup": not args.no_warmup,
                    }
                )
            )
            run = subprocess.run(
                [node, str(HERE / "open_time.mjs"), str(spec)],
                capture_output=True,
                text=True,
                timeout=3600,
            )
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                return 1
            results = json.loads(run.stdout)
    import importlib.metadata

    medians = {r["name"]: statistics.median(r["ms"]) for r in results}
    ours_ms, upstream_ms = medians["netron-paddle-pir"], medians["netron 9.3.3 paddle.js"]
    report = {
        "benchmark": "open a synthetic PIR model in headless Chromium until the graph is drawn",
        "ops": ops,
        "parameters": args.blocks * 2,
        "rounds": args.rounds,
        "warmup": not args.no_warmup,
        "results": [
            {
                "reader": r["name"],
                "ms": r["ms"],
                "median_ms": medians[r["name"]],
                "graph_nodes_drawn": r["nodes"],
                "error": r["message"],
            }
            for r in results
        ],
        "ratio_upstream_over_ours": round(upstream_ms / ours_ms, 3),
        "netron": importlib.metadata.version("netron"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": "python benchmarks/bench_open_10k.py",
    }
    out = HERE / "results" / ("open_10k.json" if args.record else "open_10k.local.json")
    out.parent.mkdir(exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(report, indent=1) + "\n")
    tmp_out.replace(out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
