"""Time to open a synthetic 10,000-op PIR model in headless Chromium: ours vs upstream netron.

Builds the model with Paddle (static graph, save_inference_model): a chain of 2,500 residual
blocks ``x = x + relu(x @ W + b)`` = 10,000 ops (matmul, add, relu, add) and 5,000 parameters.
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


def build(folder: Path, blocks: int, width: int = 16) -> int:
    import paddle

    paddle.enable_static()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        x = paddle.static.data("x", [None, width], "float32")
        h = x
        for _ in range(blocks):
            h = h + paddle.nn.functional.relu(paddle.static.nn.fc(h, width))
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    paddle.static.save_inference_model(str(folder / "model"), [x], [h], exe, program=main)
    paddle.disable_static()
    doc = json.loads((folder / "model.json").read_text())
    ops = doc["program"]["regions"][0]["blocks"][0]["ops"]
    return sum(1 for op in ops if op["#"] not in ("p", "1.data", "1.fetch"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from netron_paddle_pir.server import Viewer

    node = shutil.which("node")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        ops = build(tmp, args.blocks)
        print(f"built {ops} ops in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with Viewer() as ours, Viewer(upstream_only=True) as upstream:
            cases = [{"name": "netron-paddle-pir", "url": ours.add(tmp / "model.json")},
                     {"name": "netron 9.3.3 paddle.js", "url": upstream.add(tmp / "model.json")}]
            spec = tmp / "spec.json"
            spec.write_text(json.dumps({"chromium": chromium, "cases": cases,
                                        "rounds": args.rounds}))
            run = subprocess.run([node, str(HERE / "open_time.mjs"), str(spec)],
                                 capture_output=True, text=True, timeout=3600)
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
        "results": [{"reader": r["name"], "ms": r["ms"], "median_ms": medians[r["name"]],
                     "graph_nodes_drawn": r["nodes"], "error": r["message"]} for r in results],
        "ratio_upstream_over_ours": round(upstream_ms / ours_ms, 3),
        "netron": importlib.metadata.version("netron"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "command": "python benchmarks/bench_open_10k.py",
    }
    out = HERE / "results" / "open_10k.json"
    out.parent.mkdir(exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(report, indent=1) + "\n")
    tmp_out.replace(out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
