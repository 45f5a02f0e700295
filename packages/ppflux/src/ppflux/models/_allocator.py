"""Keep Paddle's CPU tensors on glibc's heap instead of fresh ``mmap`` pages.

Paddle 3.3.1 hands every CPU tensor allocation to ``malloc`` and frees it when the tensor dies.
glibc serves blocks above its mmap threshold with a new ``mmap`` and returns them with
``munmap`` on free, so every activation of a transformer step (16-75 MB each at FLUX width)
lands on untouched pages and pays one page fault per 4 KiB before the kernel writes it. On the
benchmark machine that made an out-of-place multiply of a ``[1, 1280, 3072]`` tensor 6 ms
instead of 1.2 ms, and a GEMM's output allocation a few percent of the GEMM
(``benchmarks/bench_speed.py``; README "where the time goes").

``tune_cpu_allocator`` sets ``M_MMAP_MAX = 0`` (large blocks come from the heap, so freed
activations are reused, already mapped, by the next op) and ``M_TRIM_THRESHOLD`` to 1 GiB
(free memory at the top of the heap is given back only above that). The price is that freed
memory in the middle of the heap stays resident until it is reused. ``PPFLUX_MALLOC_TUNE=0``
turns this off; it applies only on Linux with glibc and changes nothing else.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 1 << 30

_done: bool | None = None


def tune_cpu_allocator() -> bool:
    """Apply the glibc settings above once per process; returns whether they are in effect."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("PPFLUX_MALLOC_TUNE") == "0" or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success
    _done = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    return _done
