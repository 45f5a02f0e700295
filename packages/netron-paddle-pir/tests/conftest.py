"""Shared fixtures: the corpus (built once per session with Paddle) and its expectations."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent
sys.path.insert(0, str(TESTS))


def ci_models() -> list[dict]:
    """The entries of the corpus file (tests/models.json) that the test session builds."""
    models = json.loads((TESTS / "models.json").read_text(encoding="utf-8"))
    return [m for m in models if "ci" in m.get("tags", [])]


def node_binary():
    return shutil.which("node")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Folder with every model of tests/models.json and expectations.json (built with Paddle)."""
    import expectations

    from netron_paddle_pir.corpus import build

    given = os.environ.get("PIR_CORPUS")
    folder = Path(given) if given else tmp_path_factory.mktemp("corpus")
    models = ci_models()
    generated = [m for m in models if "build" in m]
    if not all((folder / m["target"]).exists() for m in generated):
        build(folder, quiet=True, entries=generated)
    # Files written by Paddle 3.0-3.2 (PIR versions 1-3) are committed under tests/fixtures.
    for fixture in sorted((TESTS / "fixtures").glob("paddle-*")):
        target = folder / fixture.name
        if not target.exists():
            shutil.copytree(fixture, target)
    expectations.write_all(folder, models)
    return folder
