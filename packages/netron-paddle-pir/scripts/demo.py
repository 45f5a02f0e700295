"""Demo: build three small Paddle models (MLP, control flow, trainable=False), show what the
reader makes of them, and serve them with the launcher for a few seconds (no browser opened)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from netron_paddle_pir.corpus import build
from netron_paddle_pir.server import Viewer

HERE = Path(__file__).resolve().parent


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        build(corpus, only=["mlp", "control_flow", "static_untrainable"], quiet=True)
        models = [
            corpus / "mlp" / "model.json",
            corpus / "control_flow" / "model.json",
            corpus / "static_untrainable" / "model.json",
        ]
        node = shutil.which("node")
        for model in models:
            if node:
                subprocess.run([node, str(HERE / "summary.mjs"), str(model)], check=True)
            else:
                print(f"(node not installed: skipping the reader summary of {model})")
        with Viewer() as viewer:
            for model in models:
                url = viewer.add(model)
                with urllib.request.urlopen(url, timeout=10) as response:
                    status = response.status
                print(f"serving {model.parent.name}/{model.name} at {url} (HTTP {status})")
            time.sleep(1)
        print("A user runs: netron-paddle-pir path/to/model.json  (Ctrl-C stops)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
