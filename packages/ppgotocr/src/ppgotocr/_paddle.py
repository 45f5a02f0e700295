"""Import paddle with a clear error when it is missing or too old."""

from __future__ import annotations

_MESSAGE = (
    "ppgotocr needs PaddlePaddle >= 3.0. Install either `pip install paddlepaddle` (CPU) "
    "or `pip install paddlepaddle-gpu` (CUDA); {detail}"
)


def require_paddle():
    try:
        import paddle
    except ImportError as exc:  # pragma: no cover - exercised in environments without paddle
        raise ImportError(_MESSAGE.format(detail="`import paddle` failed.")) from exc
    major = int(str(paddle.__version__).split(".")[0])
    if major < 3 and not str(paddle.__version__).startswith("0.0.0"):
        raise ImportError(_MESSAGE.format(detail=f"found paddle {paddle.__version__}."))
    return paddle
