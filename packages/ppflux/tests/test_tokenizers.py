"""Tokenizer folders: slow files (vocab.json/merges.txt, spiece.model) and tokenizer.json only
(what transformers 5 saves) give transformers' ids, truncation included."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ppflux.pipelines.components import JsonTokenizer, load_tokenizer

PROMPTS = [
    "a photo of a red cat on the moon",
    "oil painting, bright sky!  tree",
    " ".join(["astronaut riding a horse"] * 30),
]


@pytest.mark.parametrize(
    "kind,sub,max_length", [("clip", "tokenizer", 77), ("t5", "tokenizer_2", 32)]
)
def test_tokenizer_json_matches_transformers(dev_pipe_dir, tmp_path, kind, sub, max_length):
    from transformers import AutoTokenizer

    fast = AutoTokenizer.from_pretrained(dev_pipe_dir / sub, use_fast=True)
    fast.save_pretrained(tmp_path / "fast")
    for name in ("vocab.json", "merges.txt", "spiece.model"):
        (tmp_path / "fast" / name).unlink(missing_ok=True)
    mine = load_tokenizer(tmp_path / "fast", kind)
    assert isinstance(mine, JsonTokenizer)
    slow = load_tokenizer(dev_pipe_dir / sub, kind)
    for prompt in PROMPTS:
        expected = fast(
            prompt,
            padding="max_length",
            max_length=max_length,
            truncation=True,
            return_tensors="np",
        )["input_ids"]
        got = mine(prompt, padding="max_length", max_length=max_length, truncation=True)
        np.testing.assert_array_equal(got["input_ids"], expected)
        got_slow = slow(
            prompt,
            padding="max_length",
            max_length=max_length,
            truncation=True,
            return_tensors="np",
        )["input_ids"]
        np.testing.assert_array_equal(np.asarray(got_slow), expected)
    shutil.rmtree(tmp_path / "fast")
