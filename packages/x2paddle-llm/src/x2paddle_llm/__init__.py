"""Convert Hugging Face decoder LLMs to Paddle, verified against transformers.

Conversion (:func:`convert`) needs only numpy + safetensors; the model, generation and export
import Paddle lazily and fail with a clear message when it is missing.
"""

from __future__ import annotations

__version__ = "0.5.0"

from ._compat import use_fast_mkl_path_on_amd  # noqa: E402

use_fast_mkl_path_on_amd()  # before anything calls MKL (see _compat)

from .config import DecoderConfig, normalize_hf_config  # noqa: E402

# Bound eagerly: the function shares its name with the submodule ``x2paddle_llm.convert``, and a
# lazy attribute would be shadowed by the submodule once imported. It needs no Paddle.
from .convert import convert  # noqa: E402
from .errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    UnsupportedArchitectureError,
    X2PaddleLLMError,
)
from .families import supported as supported_families  # noqa: E402

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DecoderConfig",
    "DecoderForCausalLM",
    "InferenceRunner",
    "UnsupportedArchitectureError",
    "X2PaddleLLMError",
    "__version__",
    "convert",
    "export_inference",
    "generate",
    "normalize_hf_config",
    "supported_families",
]


def __getattr__(name: str):
    if name == "DecoderForCausalLM":
        from .modeling_decoder import DecoderForCausalLM

        return DecoderForCausalLM
    if name == "generate":
        from .generation import generate

        return generate
    if name in ("export_inference", "InferenceRunner"):
        from . import export

        return getattr(export, name)
    raise AttributeError(name)
