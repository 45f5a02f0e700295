"""The reference folder made by ``make_reference.py`` (``PPFLUX_NEWEST_DIR``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]

_RESULTS: dict = {}


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    folder = os.environ.get("PPFLUX_NEWEST_DIR")
    if not folder or not (Path(folder) / "reference.npz").is_file():
        pytest.fail(
            "PPFLUX_NEWEST_DIR must name a folder written by "
            "tests/newest/make_reference.py (python tests/newest/run.py does both)"
        )
    return Path(folder)


@pytest.fixture(scope="session")
def expected(ref_dir):
    index = json.loads((ref_dir / "index.json").read_text())
    data = np.load(ref_dir / "reference.npz")
    return {name: data[key] for name, key in index.items()}


@pytest.fixture
def record(ref_dir):
    def _record(name, value, tolerance):
        _RESULTS[name] = {"max_abs_diff": float(value), "tolerance": tolerance}

    return _record


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("PPFLUX_PARITY_OUT")
    folder = os.environ.get("PPFLUX_NEWEST_DIR")
    if out and _RESULTS and folder:
        versions = json.loads((Path(folder) / "versions.json").read_text())
        Path(out).write_text(
            json.dumps({"reference": versions, "max_abs_diff": _RESULTS}, indent=2)
        )
