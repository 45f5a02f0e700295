"""speech-pir-export: PaddleSpeech on Paddle 3 - compatibility fixes, PIR export, verified
Paddle Inference.

``import speech_pir_export`` installs the fix registry (an import hook: each fix runs when its
PaddleSpeech module is imported; nothing is imported eagerly, Paddle included). The API below
imports Paddle (>= 3.0, checked with a clear message) on first use.
"""

from __future__ import annotations

__version__ = "0.4.2"

from . import fixes  # noqa: E402

fixes.install()

_API = {
    "DygraphModel": "exporter",
    "ExportedModel": "exporter",
    "export": "exporter",
    "read_manifest": "exporter",
    "verify": "exporter",
    "MODELS": "registry",
    "ConfigError": "errors",
    "ExportError": "errors",
}

__all__ = [
    "ConfigError",
    "DygraphModel",
    "ExportError",
    "ExportedModel",
    "MODELS",
    "__version__",
    "export",
    "fixes",
    "read_manifest",
    "verify",
]


def __getattr__(name):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    if module != "errors":
        from ._paddle import require_paddle

        require_paddle()
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
