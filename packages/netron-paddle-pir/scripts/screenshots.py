"""Regenerate the README screenshots (docs/*.png) with headless Chromium through the launcher.

    python scripts/screenshots.py [--corpus FOLDER]

Opens corpus models (built with Paddle into FOLDER, or a temporary folder, when missing) the way
the browser tests do: a BERT-style encoder as it opens and with its module node entered, the
conv + batch-norm CNN with a conv2d selected, and the control-flow model with an if region
opened. Needs Paddle, node, chromium and tests/setup_browser.sh.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
DOCS = PACKAGE / "docs"
MODELS = ["bert_1_pre", "cnn_bn", "control_flow"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="folder with the corpus models (default: build them into a temporary folder)",
    )
    args = parser.parse_args(argv)
    from netron_paddle_pir.corpus import build, load_spec
    from netron_paddle_pir.server import Viewer

    entries = [
        e
        for e in load_spec(PACKAGE / "tests" / "models.json")
        if e["target"].split("/")[0] in MODELS
    ]
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.corpus or Path(scratch)
        missing = [e for e in entries if not (folder / e["target"]).exists()]
        if missing:
            build(folder, quiet=True, entries=missing)
        shots = Path(scratch) / "shots"
        shots.mkdir()
        with Viewer() as viewer:
            url = {name: viewer.add(folder / name / "model.json") for name in MODELS}
            cases = [
                {
                    "name": "bert",
                    "url": url["bert_1_pre"],
                    "module": {"screenshot": str(shots / "screenshot-module-inside.png")},
                    "screenshot": str(shots / "screenshot-modules.png"),
                },
                {
                    "name": "cnn",
                    "url": url["cnn_bn"],
                    "conv": True,
                    "screenshot": str(shots / "screenshot-conv-weights.png"),
                },
                {
                    "name": "cf",
                    "url": url["control_flow"],
                    "region": {
                        "node": "if",
                        "screenshot": str(shots / "screenshot-control-flow.png"),
                    },
                },
            ]
            spec = Path(scratch) / "spec.json"
            chromium = shutil.which("chromium") or "/usr/bin/chromium"
            viewport = {"width": 1000, "height": 640}
            spec.write_text(
                json.dumps({"chromium": chromium, "viewport": viewport, "cases": cases})
            )
            run = subprocess.run(
                ["node", str(PACKAGE / "tests" / "browser" / "e2e.mjs"), str(spec)],
                cwd=PACKAGE / "tests" / "browser",
                capture_output=True,
                text=True,
                timeout=600,
            )
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                return 1
        for shot in sorted(shots.glob("*.png")):
            shutil.copy(shot, DOCS / shot.name)
            print(f"{DOCS / shot.name} ({shot.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
