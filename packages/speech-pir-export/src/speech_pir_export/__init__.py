"""speech-pir-export: PaddleSpeech on Paddle 3 - compatibility fixes, PIR export, verified
Paddle Inference.

``import speech_pir_export`` checks Paddle (>= 3.0) and installs the fix registry (an import
hook: each fix runs when its PaddleSpeech module is imported; nothing is imported eagerly).
"""

from ._paddle import require_paddle

__version__ = "0.2.0"

require_paddle()

from . import fixes  # noqa: E402

fixes.install()

from .exporter import (  # noqa: E402
    DygraphModel,
    ExportedModel,
    ExportError,
    export,
    read_manifest,
    verify,
)
from .registry import MODELS, ConfigError  # noqa: E402

__all__ = ["ConfigError", "DygraphModel", "ExportError", "ExportedModel", "MODELS", "__version__", "export",
           "fixes", "read_manifest", "verify"]
