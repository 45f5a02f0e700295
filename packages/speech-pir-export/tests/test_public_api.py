"""The public API: ``__all__`` is pinned, every name resolves, and the version agrees."""

from __future__ import annotations

from pathlib import Path

import tomllib

import speech_pir_export

PUBLIC = [
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


def test_all_is_pinned():
    assert sorted(speech_pir_export.__all__) == sorted(PUBLIC)


def test_every_name_resolves():
    for name in PUBLIC:
        assert getattr(speech_pir_export, name) is not None, name


def test_version_matches_pyproject_and_changelog():
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert speech_pir_export.__version__ == version
    changelog = (pyproject.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {version}" in changelog
