"""Import Paddle for the parts of the package that need it (signature table, corpus).

The launcher and the reader never import this module: they work without Paddle.
"""

from __future__ import annotations

_HINT = (
    "this part of netron-paddle-pir needs PaddlePaddle >= 3.0: "
    "pip install paddlepaddle (CPU) or paddlepaddle-gpu"
)


def require_paddle():
    """Return the ``paddle`` module, or raise ImportError naming both wheels."""
    try:
        import paddle
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(f"{_HINT} (paddle is not installed)") from error
    major = int(str(paddle.__version__).split(".")[0] or 0)
    if major < 3 and paddle.__version__ != "0.0.0":  # 0.0.0 = develop build
        raise ImportError(f"{_HINT} (found paddle {paddle.__version__})")
    return paddle
