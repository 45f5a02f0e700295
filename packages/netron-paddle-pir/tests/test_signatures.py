"""The shipped signature table: generated from Paddle, current for the installed Paddle."""

from __future__ import annotations

import json

from netron_paddle_pir.signatures import DEFAULT_OUTPUT, generate


def test_table_matches_installed_paddle():
    import paddle

    shipped = json.loads(DEFAULT_OUTPUT.read_text(encoding="utf-8"))
    fresh = generate()
    assert shipped["paddle_version"] == paddle.__version__, (
        "regenerate with python -m netron_paddle_pir.signatures"
    )
    assert shipped["ops"] == fresh["ops"]
    assert len(shipped["ops"]) > 1000


def test_table_covers_every_pd_op_of_the_corpus(corpus):
    table = json.loads(DEFAULT_OUTPUT.read_text(encoding="utf-8"))["ops"]
    hand_named = {"if", "while", "data", "fetch"}  # no op yaml: named in the reader
    missing = set()

    def visit(block):
        for op in block["ops"]:
            name = op["#"]
            if name.startswith("1."):
                short = name[2:]
                if short not in table and short not in hand_named:
                    missing.add(short)
            for region in op.get("regions", []):
                for inner in region["blocks"]:
                    visit(inner)

    for path in corpus.glob("*/*.json"):
        if path.name in ("model.json", "__model__.json"):
            visit(json.loads(path.read_text())["program"]["regions"][0]["blocks"][0])
    assert not missing


def test_known_signatures():
    table = json.loads(DEFAULT_OUTPUT.read_text(encoding="utf-8"))["ops"]
    assert table["batch_norm_"]["inputs"] == ["x", "mean", "variance", "scale", "bias"]
    assert table["conv2d"]["inputs"] == ["input", "filter"]
    assert table["rnn"]["inputs"][:3] == ["x", "pre_state", "weight_list"]
