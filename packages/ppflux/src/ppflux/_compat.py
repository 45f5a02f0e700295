"""Checks that a usable Paddle is installed before anything imports it."""

from __future__ import annotations

_MESSAGE = (
    "ppflux needs PaddlePaddle >= 3.0. Install the CPU build with `pip install paddlepaddle` "
    "(or `pip install ppflux[cpu]`), or the CUDA build with `pip install paddlepaddle-gpu`. {detail}"
)


def require_paddle():
    """Import and return ``paddle``, or raise an ImportError naming both wheels."""
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
