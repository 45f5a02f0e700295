"""The public Python API is what ``__all__`` says, and nothing of it needs Paddle."""

from __future__ import annotations

import subprocess
import sys

import netron_paddle_pir


def test_all_is_pinned():
    assert sorted(netron_paddle_pir.__all__) == ["Viewer", "__version__", "netron_dir"]
    for name in netron_paddle_pir.__all__:
        assert hasattr(netron_paddle_pir, name), name


def test_version_matches_the_distribution():
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("netron-paddle-pir")
    except PackageNotFoundError:  # run from a source tree without installing
        return
    assert netron_paddle_pir.__version__ == installed


def test_importing_the_api_does_not_import_paddle():
    code = "import sys, netron_paddle_pir; print('paddle' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
