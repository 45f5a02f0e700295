"""Shared helpers of the benchmark scripts (machine description, JSON output)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def add_record_flag(parser) -> None:
    parser.add_argument(
        "--record",
        action="store_true",
        help="update the committed results/<name>.json (default: results/<name>.local.json)",
    )


def write_result(name: str, data: dict, record: bool = False) -> Path:
    """Print the result and write it to ``results/<name>.local.json``; only ``record=True``
    (the scripts' ``--record``) rewrites the committed ``results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (f"{name}.json" if record else f"{name}.local.json")
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    print(json.dumps(data, indent=2))
    print(f"-> {path}")
    return path
