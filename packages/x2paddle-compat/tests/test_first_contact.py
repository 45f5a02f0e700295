"""What a new user meets first: ``--help`` and ``--version`` answer at once without
importing Paddle, Paddle's chatter stays off stdout, outputs get the umask's permissions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import onnx
import pytest
import real_graphs


def _run(*argv, env=None):
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from x2paddle_compat.cli import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('PADDLE_IMPORTED' if 'paddle' in sys.modules else 'NO_PADDLE', "
        "time.perf_counter() - t, file=sys.stderr)\nsys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["-f", "onnx"]])
def test_no_paddle_import_and_fast(argv):
    proc = _run(*argv)
    marker, seconds = proc.stderr.strip().splitlines()[-1].split()
    assert marker == "NO_PADDLE", proc.stderr
    assert float(seconds) < 1.0
    if argv == ["--help"]:
        assert proc.returncode == 0 and "exit status" in proc.stdout and "--verbose" in proc.stdout
    elif argv == ["--version"]:
        from x2paddle_compat import __version__

        assert proc.returncode == 0
        assert proc.stdout.startswith(f"x2paddle3 (x2paddle-compat) {__version__}, x2paddle 1.6.0")
    else:
        assert proc.returncode == 2 and "required" in proc.stderr


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "m.onnx"
    onnx.save(real_graphs.conv_no_kernel_shape(), path)
    return path


def test_stdout_is_only_the_tools_output(model, tmp_path):
    """No Paddle / X2Paddle lines on stdout (or stderr) by default; --verbose shows them."""
    proc = _run("-f", "onnx", "-m", str(model), "-s", str(tmp_path / "a"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"converted into {tmp_path / 'a'} (not verified: add --verify)"
    ]
    assert "Converting node" not in proc.stderr and "ccache" not in proc.stderr
    loud = _run("-f", "onnx", "-m", str(model), "-s", str(tmp_path / "b"), "--verbose")
    assert loud.returncode == 0 and "Converting node" in loud.stdout + loud.stderr


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_output_permissions_follow_umask(model, tmp_path, umask):
    old = os.umask(umask)
    try:
        from x2paddle_compat.cli import main

        out = tmp_path / f"out{umask:o}"
        assert main(["-f", "onnx", "-m", str(model), "-s", str(out), "--verify"]) == 0
    finally:
        os.umask(old)
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        want = (0o777 if path.is_dir() else 0o666) & ~umask
        assert mode == want, (path, oct(mode), oct(want))
    time.sleep(0)
