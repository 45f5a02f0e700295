# Copied from paddle-op-migrator:benchmarks/_results.py
"""Where a benchmark's JSON goes: ``results/<name>.local.json`` by default (not committed), the
committed ``results/<name>.json`` only with ``--record``, so that trying a benchmark never
rewrites the figures the README cites."""

from __future__ import annotations

import json
import os
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def add_record_flag(parser) -> None:
    parser.add_argument(
        "--record",
        action="store_true",
        help="update the committed benchmarks/results/<name>.json "
        "(default: write <name>.local.json beside it)",
    )


def result_path(name: str, record: bool) -> Path:
    return RESULTS / (f"{name}.json" if record else f"{name}.local.json")


def write_result(name: str, data: dict, record: bool) -> Path:
    out = result_path(name, record)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, out)
    return out


def load_average() -> float:
    """The 1-minute load average (the machine is quiet when it is well below its core count)."""
    return round(os.getloadavg()[0], 2)
