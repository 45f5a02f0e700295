"""The built wheel: complete, importable on its own, and carrying the dependency caps.

The nox session itself installs ppflux into a fresh venv with paddlepaddle 3.3.1 (the real
"fresh venv" check). Here the wheel is built, unpacked into an empty folder and imported from
there in a subprocess (catches files missing from the wheel), and its metadata is checked for
the caps that make ppdiffusers 0.29.0 import. Set PPFLUX_RESOLVE_TEST=1 to also let pip resolve
the full dependency set from scratch (network, about a minute).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]


def _pyproject_version() -> str:

    text = (PKG / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def _normalise(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(PKG),
        ],
        check=True,
    )
    (found,) = out.glob("ppflux-*.whl")
    return found


def test_wheel_metadata_has_caps(wheel):
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith("METADATA"))
        text = zf.read(meta).decode()
        entry = zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()
    for req in ("ppdiffusers==0.29.0", "huggingface_hub<0.26", "aistudio-sdk<0.3", "datasets<5"):
        name, _, cap = req.partition("=" if "==" in req else "<")
        # compare names as PEP 503 normalises them (build backends differ in how they write them)
        line = next(
            (
                ln
                for ln in text.splitlines()
                if _normalise(ln).startswith("requires-dist: " + _normalise(name))
            ),
            "",
        )
        assert cap.lstrip("=") in line, (req, line)
    assert "Requires-Dist: paddlepaddle" not in text.split("Provides-Extra: cpu")[0]
    assert "ppflux = ppflux.cli:main" in entry


def test_wheel_imports_from_its_own_files(wheel, tmp_path):
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    code = (
        "import ppflux, sys; assert ppflux.__file__.startswith(sys.argv[1]), ppflux.__file__;"
        "from ppflux import FluxPipeline, FluxTransformer2DModel, FluxControlNetPipeline;"
        "m = FluxTransformer2DModel(num_layers=1, num_single_layers=1, attention_head_dim=16,"
        " num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,"
        " axes_dims_rope=(4, 6, 6)); print(ppflux.__version__)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    res = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith(_pyproject_version())


@pytest.mark.skipif(
    os.environ.get("PPFLUX_RESOLVE_TEST") != "1",
    reason="set PPFLUX_RESOLVE_TEST=1 (pip resolves from scratch, ~1 min)",
)
def test_pip_resolves_from_scratch(wheel, tmp_path):
    import json

    report = tmp_path / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "-q",
            "--report",
            str(report),
            f"{wheel}[cpu]",
        ],
        check=True,
    )
    got = {
        i["metadata"]["name"].lower(): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    assert got["ppdiffusers"] == "0.29.0"
    assert tuple(int(x) for x in got["huggingface-hub"].split(".")[:2]) < (0, 26)
