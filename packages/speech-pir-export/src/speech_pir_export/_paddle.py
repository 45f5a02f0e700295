"""Clear failure when Paddle is missing or too old (paddle is never a hard dependency)."""

from __future__ import annotations

MIN_PADDLE = (3, 0)


def require_paddle():
    try:
        import paddle
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "speech-pir-export needs PaddlePaddle >= 3.0: install `paddlepaddle` (CPU, e.g. "
            "`pip install speech-pir-export[cpu]`) or `paddlepaddle-gpu`."
        ) from exc
    parts = []
    for piece in paddle.__version__.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    if tuple(parts) < MIN_PADDLE and paddle.__version__ != "0.0.0":  # 0.0.0 = develop build
        raise ImportError(
            f"speech-pir-export needs PaddlePaddle >= 3.0, found {paddle.__version__}: upgrade "
            "`paddlepaddle` or `paddlepaddle-gpu`."
        )
    return paddle
