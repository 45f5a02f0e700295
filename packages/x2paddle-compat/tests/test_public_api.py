"""The public API: ``__all__`` is pinned, every name resolves, and the version agrees."""

from __future__ import annotations

from pathlib import Path

import tomllib

import x2paddle_compat

PUBLIC = [
    "FIXES",
    "ConversionError",
    "ConversionWarning",
    "InvalidModelError",
    "SourceRuntimeError",
    "UnsupportedOpsError",
    "VerificationError",
    "VerifyReport",
    "__version__",
    "apply_fixes",
    "convert_caffe",
    "convert_onnx",
    "convert_tensorflow",
    "convert_torch",
    "create_predictor",
    "describe",
    "revert_fixes",
    "verify",
    "without_fix",
]


def test_all_is_pinned():
    assert sorted(x2paddle_compat.__all__) == sorted(PUBLIC)


def test_every_name_resolves():
    for name in PUBLIC:
        assert getattr(x2paddle_compat, name) is not None, name
    assert issubclass(x2paddle_compat.InvalidModelError, x2paddle_compat.ConversionError)
    from x2paddle_compat._errors import UserError

    assert issubclass(x2paddle_compat.ConversionError, UserError)


def test_version_matches_pyproject():
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert x2paddle_compat.__version__ == version
    changelog = (pyproject.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {version}" in changelog
