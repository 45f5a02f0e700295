"""First contact with the command: --help and --version answer at once without Paddle, help
shows every default, netron's own short options work."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import netron_paddle_pir
from netron_paddle_pir.cli import build_parser

# Any import of paddle in the child fails loudly: --help must not need it.
NO_PADDLE = (
    "import sys, runpy; "
    "sys.modules['paddle'] = None; "
    "sys.argv = ['netron-paddle-pir', *sys.argv[1:]]; "
    "runpy.run_module('netron_paddle_pir', run_name='__main__')"
)


def _run(*args):
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", NO_PADDLE, *args], capture_output=True, text=True, timeout=30
    )
    return run, time.perf_counter() - start


def test_help_is_fast_and_needs_no_paddle():
    run, seconds = _run("--help")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: netron-paddle-pir")
    assert seconds < 1.0, f"--help took {seconds:.2f} s"
    assert run.stderr == ""


def test_version():
    run, _ = _run("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"netron-paddle-pir {netron_paddle_pir.__version__}"


def test_every_option_states_its_default():
    for action in build_parser()._actions:
        if action.option_strings and action.dest not in ("help", "version"):
            assert re.search(r"\(default[:)]", action.help or ""), action.option_strings


def test_netron_short_options():
    args = build_parser().parse_args(["-p", "8081", "-b", "model.json"])
    assert (args.port, args.browse, args.no_browser) == (8081, True, False)
    assert build_parser().parse_args(["m.json"]).port == 0


def test_generators_without_paddle_say_so_in_one_line():
    """The table generators and the corpus builder need Paddle; without it: one line, exit 2."""
    for module, args in [
        ("netron_paddle_pir.signatures", ["--output", "unused.json"]),
        ("netron_paddle_pir.descriptions", ["--output", "unused.json"]),
        ("netron_paddle_pir.corpus", ["unused-folder"]),
    ]:
        code = (
            "import sys, runpy; sys.modules['paddle'] = None; "
            f"sys.argv = [{module!r}, *sys.argv[1:]]; "
            f"runpy.run_module({module!r}, run_name='__main__')"
        )
        run = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 2, (module, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (module, run.stderr)
        assert "paddlepaddle" in lines[0] and "paddlepaddle-gpu" in lines[0]
        assert "Traceback" not in run.stderr and run.stdout == ""
