"""Compiled kernels: Paddle custom operators built from this folder's C++ on first use.

One operator so far, ``x2pl_grouped_matmul`` (see ``grouped_matmul.cc``): the experts of a
mixture-of-experts layer as one operator over their stacked weights, each expert one BLAS call
on the rows routed to it. Paddle 3.3.1 has no such operator on the CPU (its grouped GEMM
``batched_gemm`` has no CPU kernel), and without it every expert costs its own operators at
every step, chosen or not, once the layer is a traced program.

The operator is built with ``paddle.utils.cpp_extension`` (a C++17 compiler, g++ or clang,
must be on ``PATH``; about 20 s once) into a cache folder keyed by the source, Paddle's
version and install location and Python's version, and loaded from there by every later
process. Concurrent first uses wait for one build (a file lock).

* ``X2PADDLE_LLM_KERNELS=0`` turns the kernels off: MoE layers then run one operator group per
  expert, as before, and an export is a program of Paddle's own operators only.
* ``X2PADDLE_LLM_KERNEL_DIR`` sets the cache folder (default
  ``$XDG_CACHE_HOME/x2paddle-llm/kernels`` or ``~/.cache/x2paddle-llm/kernels``).

If the build fails (no compiler, no BLAS in Paddle's library folder), a warning says why once
and everything falls back to Paddle's own operators.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import warnings
from pathlib import Path

from .._paddle import native_stdout_to_stderr, require_paddle
from ..errors import X2PaddleLLMError

OP_NAMES = ("x2pl_grouped_matmul",)
ENV_SWITCH = "X2PADDLE_LLM_KERNELS"
ENV_DIR = "X2PADDLE_LLM_KERNEL_DIR"
_SOURCES = ("grouped_matmul.cc",)
_MODULE = "x2paddle_llm_kernels"

_state: dict = {}  # "module" once loaded, or "error" once failed (both per process)


class KernelUnavailable(X2PaddleLLMError, RuntimeError):
    """The compiled kernels are needed (an export that uses them) but cannot be loaded here."""


def enabled() -> bool:
    """False when ``X2PADDLE_LLM_KERNELS=0`` (or ``false`` / ``off`` / ``no``)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "off", "no")


def _blas_library(paddle) -> Path | None:
    """The BLAS Paddle ships and loads itself: MKL's (x86) or OpenBLAS."""
    libs = Path(paddle.__file__).parent / "libs"
    for pattern in ("libmklml_intel.so", "libopenblas*.so*"):
        found = sorted(libs.glob(pattern))
        if found:
            return found[0]
    return None


def build_dir(paddle=None) -> Path:
    """The cache folder of this source, Paddle build and Python."""
    paddle = paddle or require_paddle()
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    digest.update(f"{paddle.__version__}|{paddle.__file__}|{sys.version_info[:2]}".encode())
    root = os.environ.get(ENV_DIR) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "x2paddle-llm",
        "kernels",
    )
    return Path(root) / f"{paddle.__version__}-{digest.hexdigest()[:16]}"


@contextlib.contextmanager
def _locked(folder: Path):
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(paddle):
    """``(module, library path)``, building the library first when needed."""
    if "gpu" in str(paddle.get_device()):
        raise RuntimeError("the kernels are CPU kernels and Paddle runs on a GPU here")
    blas = _blas_library(paddle)
    if blas is None:
        raise RuntimeError(
            f"no BLAS library (MKL or OpenBLAS) in {Path(paddle.__file__).parent / 'libs'}"
        )
    from paddle.utils.cpp_extension import load

    here = Path(__file__).parent
    folder = build_dir(paddle)
    built = folder / _MODULE / f"{_MODULE}.so"
    marker = folder / "built"  # written after a build that loaded: the library is complete
    with _locked(folder), _quiet_loader():
        if marker.is_file() and built.is_file():
            try:  # the library as it is (cpp_extension.load would re-run its setup: ~1.5 s)
                from paddle.utils.cpp_extension.extension_utils import (
                    _import_module_from_library,
                )

                return _import_module_from_library(_MODULE, str(built.parent)), built
            except (ImportError, AttributeError, FileNotFoundError):
                pass  # another Paddle layout: build through the public API below
        print(
            f"x2paddle-llm: building the MoE kernel (once, about 20 s) in {folder}", file=sys.stderr
        )
        module = load(
            name=_MODULE,
            sources=[str(here / name) for name in _SOURCES],
            extra_cxx_cflags=["-O2", f'-DX2PL_BLAS="{blas}"'],
            build_directory=str(folder),
            verbose=False,
        )
        marker.write_text(f"{blas}\n")
        return module, built


@contextlib.contextmanager
def _quiet_loader():
    """Paddle's extension loader logs INFO lines and its compiler output to stdout: keep stdout
    for the tool's own output and drop the INFO chatter."""
    logger = logging.getLogger("utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with native_stdout_to_stderr(), contextlib.redirect_stdout(sys.stderr):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*ccache.*")
                yield
    finally:
        logger.setLevel(level)


def load(required: bool = False):
    """The loaded operator module, or None when the kernels are off or cannot be built here
    (warned once). ``required``: raise :class:`KernelUnavailable` instead of returning None."""
    if "module" not in _state and "error" not in _state:
        if not enabled():
            _state["error"] = f"turned off by {ENV_SWITCH}={os.environ.get(ENV_SWITCH)}"
        else:
            try:
                _state["module"], library = _build(require_paddle())
                # predictor worker processes register the library too (they inherit the name)
                from .._predictor import register_op_libraries

                register_op_libraries([library], export=True)
            except Exception as exc:  # no compiler, no BLAS, a failed build
                lines = str(exc).strip().splitlines()
                _state["error"] = f"{type(exc).__name__}: {lines[-1] if lines else exc}"
                warnings.warn(
                    f"x2paddle-llm: the MoE kernel could not be built ({_state['error']}); "
                    "MoE layers run one operator group per expert instead",
                    RuntimeWarning,
                    stacklevel=2,
                )
    if "module" in _state:
        return _state["module"]
    if required:
        raise KernelUnavailable(_state["error"])
    return None


def available() -> bool:
    """Whether the kernels are on and loaded (building them on first call)."""
    return load() is not None


def unavailable_reason() -> str | None:
    load()
    return _state.get("error")


def grouped_matmul(x, bounds, weight):
    """``out[b[e]:b[e+1]] = x[b[e]:b[e+1]] @ weight[e]`` for each expert ``e``.

    ``x [N, K]`` float32 rows sorted by expert, ``bounds [E + 1]`` int64 (each expert's first
    row, then N), ``weight [E, K, M]``; ``[N, M]``, differentiable in ``x`` and ``weight``.
    CPU only. Inside a traced function call the operator itself (``op("x2pl_grouped_matmul")``,
    taken outside it): tracing would otherwise trace this module's loader too.
    """
    return op("x2pl_grouped_matmul")(x, bounds, weight)


def op(name: str):
    """The Python function of the compiled operator ``name`` (loading the kernels)."""
    if name not in OP_NAMES:
        raise KeyError(f"no compiled operator {name!r}; there are {list(OP_NAMES)}")
    return getattr(load(required=True), name)
