"""The op documentation shipped to Netron (web/pir-metadata.json) is Paddle's own, current."""

from __future__ import annotations

import importlib
import inspect
import json
import re

from netron_paddle_pir.descriptions import DEFAULT_OUTPUT, generate

SHIPPED = json.loads(DEFAULT_OUTPUT.read_text(encoding="utf-8"))


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def test_metadata_matches_installed_paddle():
    import paddle

    assert SHIPPED["paddle_version"] == paddle.__version__, (
        "regenerate with python -m netron_paddle_pir.descriptions"
    )
    assert SHIPPED["ops"] == generate()["ops"]


def test_descriptions_are_the_docstrings_of_the_named_functions():
    assert len(SHIPPED["ops"]) > 400
    for entry in SHIPPED["ops"]:
        module, _, name = entry["source"].rpartition(".")
        doc = inspect.getdoc(getattr(importlib.import_module(module), name))
        assert entry["name"].rstrip("_") == name or entry["name"] == name
        want = words(doc)
        got = words(entry["description"])[:8]
        assert got, entry["name"]
        # The description's first words appear, in order, in the function's docstring (its
        # reStructuredText roles such as :math: removed in between).
        rest = iter(want)
        assert all(word in rest for word in got), (entry["name"], got)
        for item in entry.get("inputs", []) + entry.get("attributes", []):
            if "description" in item:
                assert item["name"] in doc, (entry["name"], item["name"])


def test_most_ops_of_the_corpus_are_documented(corpus):
    documented = {entry["name"] for entry in SHIPPED["ops"]}
    used = set()
    for path in corpus.glob("*/*.json"):
        if path.name in ("model.json", "__model__.json"):
            for op in re.findall(r'"#":\s*"1\.(\w+)"', path.read_text()):
                used.add(op)
    hand_named = {"data", "fetch", "if", "while", "full_int_array", "pool2d", "shape64"}
    covered = {op for op in used if op in documented}
    assert len(covered) >= 0.8 * len(used - hand_named), sorted(used - covered)
