# Copied from ppflux:src/ppflux/_compat.py
"""Paddle import: the MKL switch for AMD CPUs, then the shared version check.

This file is copied verbatim into other packages of the repository (each copy starts with a
``# Copied from`` line); the opt-out variable is named after the package importing it
(``PPFLUX_MKL_AMD_FIX``, ``X2PADDLE_LLM_MKL_AMD_FIX``, ...).
"""

from __future__ import annotations

import os
import platform

from ._paddle import require_paddle as _require_paddle

#: set to "0" to keep Paddle's MKL on its default dispatch
OPT_OUT = __name__.split(".")[0].upper() + "_MKL_AMD_FIX"


def _cpu_is_amd_with_avx2() -> bool:
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return "AuthenticAMD" in head and " avx2" in head


def use_fast_mkl_path_on_amd() -> bool:
    """Paddle's CPU wheel ships an MKL (mklml) that takes a slow generic code path on AMD
    CPUs; MKL_DEBUG_CPU_TYPE=5 makes it use its AVX2 kernels (measured: fp32 GEMM 2.2x
    faster on an AMD EPYC, see README "Benchmarks"). Set only when the CPU is AMD with AVX2,
    the variable is not set already, and :data:`OPT_OUT` is not "0". It must be in the
    environment before MKL's first call, so the package sets it on import. Returns whether
    set."""
    if "MKL_DEBUG_CPU_TYPE" in os.environ or os.environ.get(OPT_OUT) == "0":
        return False
    if not _cpu_is_amd_with_avx2():
        return False
    os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
    return True


def require_paddle():
    """Import and return ``paddle`` (after the MKL switch above), or raise an ImportError
    naming both wheels (``_paddle.require_paddle``)."""
    use_fast_mkl_path_on_amd()
    return _require_paddle()
