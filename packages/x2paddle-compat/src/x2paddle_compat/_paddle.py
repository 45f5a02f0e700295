"""Import Paddle with a clear message when it is missing or too old."""

from __future__ import annotations

_HINT = (
    "x2paddle-compat needs PaddlePaddle >= 3.0. Install the CPU wheel with "
    "`pip install paddlepaddle` (or `pip install x2paddle-compat[cpu]`), or the GPU wheel "
    "`paddlepaddle-gpu` from paddlepaddle.org.cn."
)


def require_paddle():
    """Return the ``paddle`` module, or raise ImportError naming both wheels."""
    try:
        import paddle
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"paddle is not installed. {_HINT}") from exc
    from packaging.version import Version

    version = getattr(paddle, "__version__", "0")
    # develop builds report 0.0.0
    if version != "0.0.0" and Version(version.split("-")[0]) < Version("3.0.0"):
        raise ImportError(f"paddle {version} is too old. {_HINT}")
    return paddle
