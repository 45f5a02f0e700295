"""The narrow public API: ``__all__`` is pinned, and each name resolves to the documented object."""

from __future__ import annotations

from pathlib import Path

import tomllib

import x2paddle_llm

PUBLIC = [
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


def test_all_is_pinned():
    assert sorted(x2paddle_llm.__all__) == PUBLIC


def test_public_names_resolve():
    from x2paddle_llm import (
        DecoderForCausalLM,
        InferenceRunner,
        convert,
        export_inference,
        generate,
    )

    assert callable(convert) and convert.__module__ == "x2paddle_llm.convert"
    assert callable(generate) and callable(export_inference)
    assert (
        DecoderForCausalLM.__name__ == "DecoderForCausalLM"
        and InferenceRunner.__name__ == "InferenceRunner"
    )
    for name in x2paddle_llm.__all__:
        assert getattr(x2paddle_llm, name) is not None
    assert len(x2paddle_llm.supported_families()) >= 30


def test_version_matches_pyproject():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert x2paddle_llm.__version__ == pyproject["project"]["version"]
