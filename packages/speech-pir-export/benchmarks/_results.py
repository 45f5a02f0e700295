"""What every benchmark script shares: where its JSON goes and the quiet-machine gate.

By default a script prints its JSON and writes ``results/<name>.local.json`` (git-ignored);
only ``--record`` replaces the committed ``results/<name>.json``. A speed figure counts only
when measured on a quiet machine: :func:`wait_quiet` waits (up to ``max_wait`` seconds) for
the 1-minute load average to drop below ``threshold`` and returns the load it started at, so
the result can say whether it is provisional.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def add_arguments(ap) -> None:
    ap.add_argument(
        "--record",
        action="store_true",
        help="replace the committed results/<name>.json (default: results/<name>.local.json)",
    )
    ap.add_argument("--out", default=None, help="write the JSON here instead")
    ap.add_argument(
        "--max-wait", type=float, default=300.0, help="seconds to wait for a quiet machine"
    )


def output_path(name: str, args) -> Path:
    if args.out:
        return Path(args.out)
    return RESULTS / (f"{name}.json" if args.record else f"{name}.local.json")


def write(name: str, args, result) -> Path:
    path = output_path(name, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    print(text)
    print(f"written: {path}")
    return path


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def wait_quiet(threshold: float = 1.5, max_wait: float = 300.0) -> dict:
    """Wait until the 1-minute load is below ``threshold`` (at most ``max_wait`` s)."""
    t0, start = time.monotonic(), load1()
    while load1() >= threshold and time.monotonic() - t0 < max_wait:
        time.sleep(10)
    now = load1()
    return {
        "load_at_start": start,
        "load_when_measuring": now,
        "waited_s": round(time.monotonic() - t0),
        "quiet": now < threshold,
    }
