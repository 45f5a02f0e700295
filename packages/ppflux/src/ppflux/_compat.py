"""Checks that a usable Paddle is installed before anything imports it."""

from __future__ import annotations

import os
import platform

_MESSAGE = (
    "ppflux needs PaddlePaddle >= 3.0. Install the CPU build with `pip install paddlepaddle` "
    "(or `pip install ppflux[cpu]`), or the CUDA build with `pip install paddlepaddle-gpu`. {detail}"
)


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
    the variable is not set already, and PPFLUX_MKL_AMD_FIX is not "0". It must be in the
    environment before MKL's first call, so ppflux sets it on import. Returns whether set."""
    if "MKL_DEBUG_CPU_TYPE" in os.environ or os.environ.get("PPFLUX_MKL_AMD_FIX") == "0":
        return False
    if not _cpu_is_amd_with_avx2():
        return False
    os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
    return True


def require_paddle():
    """Import and return ``paddle``, or raise an ImportError naming both wheels."""
    use_fast_mkl_path_on_amd()
    try:
        import paddle
    except ImportError as exc:  # pragma: no cover - exercised in a venv without paddle
        raise ImportError(_MESSAGE.format(detail=f"(import failed: {exc})")) from exc
    version = getattr(paddle, "__version__", "0")
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    # Develop builds report "0.0.0"; accept them.
    if version != "0.0.0" and major < 3:
        raise ImportError(_MESSAGE.format(detail=f"(found paddle {version})"))
    return paddle
