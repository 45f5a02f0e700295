"""The original repo's qwen.tiktoken gives the same ids as tokenizer.json (GOT specials incl.)."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from tokenizers import Tokenizer

from ppgotocr.tiktoken_file import bytes_to_unicode, tokenizer_from_tiktoken


def _write_tiktoken(tok_json, out):
    """Export the BPE part of a byte-level tokenizer.json as tiktoken ranks (rank = id)."""
    dec = {v: k for k, v in bytes_to_unicode().items()}
    vocab = json.loads(tok_json.read_text())["model"]["vocab"]
    lines = [
        base64.b64encode(bytes(dec[c] for c in s)).decode() + f" {i}"
        for s, i in sorted(vocab.items(), key=lambda kv: kv[1])
    ]
    out.write_text("\n".join(lines) + "\n")
    return out


TEXTS = [
    "Hello world, OCR with format: $x^2$ | a | b |\n\n  indented\tTab 12345",
    "<|im_start|>system\n        You should follow the instructions carefully.<|im_end|>"
    "<|im_start|>user\n<img><imgpad><imgpad></img>\n[12, 34, 56, 78] OCR: <|im_end|>"
    "<|im_start|>assistant\n",
    "Ünïcödé 漢字 and émoji 🙂 The quick brown fox",
]


def test_same_ids_as_tokenizer_json(tiny, tmp_path):
    ref = Tokenizer.from_file(str(tiny["tok_path"]))
    tt = tokenizer_from_tiktoken(
        _write_tiktoken(tiny["tok_path"], tmp_path / "qwen.tiktoken"), num_extras=4
    )
    for text in TEXTS:
        assert (
            tt.encode(text, add_special_tokens=False).ids
            == ref.encode(text, add_special_tokens=False).ids
        )
    for t in ("<|endoftext|>", "<|im_end|>", "<img>", "</img>", "<imgpad>"):
        assert tt.token_to_id(t) == ref.token_to_id(t)


def test_original_folder_with_only_tiktoken(tiny, pd_model, tmp_path):
    from ppgotocr.tokenizer import GotOcrTokenizer

    folder = tmp_path / "orig"
    shutil.copytree(tiny["orig_dir"], folder)
    (folder / "tokenizer.json").unlink()
    _write_tiktoken(tiny["tok_path"], folder / "qwen.tiktoken")
    tok = GotOcrTokenizer.from_pretrained(folder, pd_model.config)  # extras count from the config
    ref = GotOcrTokenizer.from_pretrained(tiny["hf_dir"], pd_model.config)
    assert tok.encode(TEXTS[1]) == ref.encode(TEXTS[1])


def test_bad_tiktoken(tmp_path):
    (tmp_path / "bad.tiktoken").write_text("not-base64-and-no-rank\n")
    with pytest.raises(ValueError, match="bad.tiktoken:1"):
        tokenizer_from_tiktoken(tmp_path / "bad.tiktoken")
