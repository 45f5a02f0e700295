"""Import Paddle with a clear message when it is missing or too old."""

from __future__ import annotations

MIN_PADDLE = (3, 0)


def require_paddle():
    try:
        import paddle
    except ImportError as exc:
        raise ImportError(
            "x2paddle_llm needs PaddlePaddle >= 3.0 for this feature: install `paddlepaddle` (CPU) or "
            "`paddlepaddle-gpu`, e.g. `pip install x2paddle-llm[cpu]`. Conversion without Paddle works: "
            "`x2paddle-llm convert` only needs numpy and safetensors."
        ) from exc
    version = getattr(paddle, "__version__", "0.0")
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:  # develop builds report "0.0.0"
        major_minor = (99, 0) if version.startswith("0.0") else (0, 0)
    if major_minor < MIN_PADDLE:
        raise ImportError(
            f"x2paddle_llm needs PaddlePaddle >= 3.0, found {version}: upgrade `paddlepaddle` or `paddlepaddle-gpu`"
        )
    return paddle
