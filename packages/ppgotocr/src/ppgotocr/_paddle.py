# Copied from x2paddle-llm:src/x2paddle_llm/_paddle.py
"""Import Paddle on demand, with a clear message when it is missing, and keep it quiet.

Paddle is never a hard dependency (a user may have ``paddlepaddle`` or ``paddlepaddle-gpu``,
which pip treats as different distributions), so nothing imports it at module level where a
command can do without it (``--help``, argument errors, pure file conversions).

Paddle 3.3 talks a lot on its own: a "No ccache found" warning on import, glog lines on
stderr, and the Paddle Inference predictor prints some oneDNN checks
(``ReduceMeanCheckIfOneDNNSupport``) to *stdout*, which breaks machine-readable output.
``quiet_paddle`` (before the first import) and ``native_stdout_to_stderr`` (around predictor
work) keep stdout for the tool's own output; a ``--verbose`` flag skips them. A predictor
config should also call ``config.disable_glog_info()`` unless verbose.

This file is copied verbatim into other packages of the repository (each copy starts with a
``# Copied from`` line); change it here and re-copy.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import warnings
from collections.abc import Iterator

MIN_PADDLE = (3, 0)
_DIST = __name__.split(".")[0].replace("_", "-")
_HINT = (
    f"{_DIST} needs PaddlePaddle >= 3.0 for this: install the CPU wheel with "
    f"`pip install paddlepaddle` (or `pip install {_DIST}[cpu]`), or the CUDA wheel "
    "`paddlepaddle-gpu`"
)


def paddle_version_tuple(version: str) -> tuple[int, ...]:
    """``"3.3.1"`` -> ``(3, 3, 1)``; ``"3.0.0rc1"`` -> ``(3, 0, 0)``; develop builds
    (``"0.0.0"``) count as newest."""
    parts = []
    for piece in str(version).split("+")[0].split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits or 0))
    if parts and all(p == 0 for p in parts):
        return (999,)
    return tuple(parts)


def require_paddle():
    """Import and return ``paddle``, or raise ImportError naming both wheels."""
    try:
        import paddle
    except ImportError as exc:
        raise ImportError(f"{_HINT} (`import paddle` failed: {exc})") from exc
    version = getattr(paddle, "__version__", "0.0.0")
    if paddle_version_tuple(version) < MIN_PADDLE:
        raise ImportError(f"{_HINT} (found paddle {version})")
    return paddle


def quiet_paddle(verbose: bool = False) -> None:
    """Silence Paddle's own chatter for this process, unless ``verbose``.

    Call before the first ``import paddle``: glog reads its level once. A level the user set
    in the environment is kept.
    """
    if verbose:
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", message=r"No ccache found", category=UserWarning)
    # Printed by Paddle's own to_static / jit.save code paths, not by anything a user wrote.
    warnings.filterwarnings(
        "ignore", message=r"(Tensor|Variable) do not have 'place' interface", category=UserWarning
    )


def _flush_native_stdout() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - platform without a C library
        pass


@contextlib.contextmanager
def native_stdout_to_stderr(enabled: bool = True, *, discard: bool = False) -> Iterator[None]:
    """Send what native code writes to file descriptor 1 to stderr for the duration
    (``discard=True``: to the null device, for chatter that is never useful).

    Everything written to stdout inside the block goes to stderr, Python's ``print`` included:
    print results after it. Both streams are flushed on entry and exit.
    """
    if not enabled:
        yield
        return
    try:
        stdout_fd = sys.stdout.fileno()
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured streams (tests): nothing to do
        yield
        return
    sys.stdout.flush()
    _flush_native_stdout()
    saved = os.dup(stdout_fd)
    sink = os.open(os.devnull, os.O_WRONLY) if discard else None
    try:
        os.dup2(stderr_fd if sink is None else sink, stdout_fd)
        yield
    finally:
        _flush_native_stdout()
        os.dup2(saved, stdout_fd)
        os.close(saved)
        if sink is not None:
            os.close(sink)
