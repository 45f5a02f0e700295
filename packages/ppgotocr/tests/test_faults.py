"""Bad input, end to end through the command line: every case must exit 2 with one line
``error: <file>: <problem>`` naming the file and the problem, and leave the output as it was
(absent, or the old content untouched) with no temporary behind."""

from __future__ import annotations

import errno
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from ppgotocr.cli import main


# --------------------------------------------------------------------------- damage helpers
def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _text_cfg(key, value):
    return lambda d: _edit_json(
        d / "config.json", lambda c: c["text_config"].__setitem__(key, value)
    )


def _vision_cfg(key, value):
    return lambda d: _edit_json(
        d / "config.json", lambda c: c["vision_config"].__setitem__(key, value)
    )


def _edit_weights(edit):
    def apply(d: Path):
        w = load_file(str(d / "model.safetensors"))
        edit(w)
        save_file(w, str(d / "model.safetensors"))

    return apply


def _raw_header(d: Path, edit):
    """Rewrite the safetensors header (tensor data untouched)."""
    path = d / "model.safetensors"
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    edit(header)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n :])


def _first_key(header, contains):
    return next(k for k in header if contains in k)


def _huge_claim(header):
    k = _first_key(header, "embed_tokens")
    header[k]["shape"] = [1_000_000, 1_000_000]
    header[k]["data_offsets"] = [
        header[k]["data_offsets"][0],
        header[k]["data_offsets"][0] + 4 * 10**12,
    ]


def _truncate(d: Path):
    p = d / "model.safetensors"
    p.write_bytes(p.read_bytes()[:-1000])


EMBED = "language_model.model.embed_tokens.weight"

CONVERT_CASES = [
    # (id, damage, problem text, file named in the message)
    (
        "negative-hidden-size",
        _text_cfg("hidden_size", -64),
        "text.hidden_size must be a positive integer, got -64",
        "config.json",
    ),
    (
        "string-layer-count",
        _text_cfg("num_hidden_layers", "two"),
        "text.num_hidden_layers must be a positive integer, got 'two'",
        "config.json",
    ),
    (
        "zero-heads",
        _text_cfg("num_attention_heads", 0),
        "text.num_attention_heads must be a positive integer",
        "config.json",
    ),
    ("heads-do-not-divide", _vision_cfg("num_attention_heads", 3), "not divisible", "config.json"),
    (
        "bool-as-int",
        _vision_cfg("window_size", True),
        "vision.window_size must be a positive integer",
        "config.json",
    ),
    (
        "global-index-out-of-range",
        _vision_cfg("global_attn_indexes", [1, 9]),
        "global_attn_indexes must list layer numbers",
        "config.json",
    ),
    (
        "image-token-outside-vocab",
        lambda d: _edit_json(
            d / "config.json", lambda c: c.__setitem__("image_token_index", 10**6)
        ),
        "image_token_id must be a token id below vocab_size",
        "config.json",
    ),
    (
        "config-not-json",
        lambda d: (d / "config.json").write_text("{not json"),
        "invalid JSON",
        "config.json",
    ),
    (
        "config-is-a-list",
        lambda d: (d / "config.json").write_text("[1, 2]"),
        "must hold a JSON object",
        "config.json",
    ),
    (
        "config-not-utf8",
        lambda d: (d / "config.json").write_bytes(b"\xff\xfe\x00garbage"),
        "not UTF-8",
        "config.json",
    ),
    ("config-missing", lambda d: (d / "config.json").unlink(), "no config.json", ""),
    (
        "text-config-wrong-type",
        lambda d: _edit_json(d / "config.json", lambda c: c.__setitem__("text_config", [1])),
        "'text_config' must be an object",
        "config.json",
    ),
    (
        "embed-tokens-transposed",
        _edit_weights(lambda w: w.__setitem__(EMBED, np.ascontiguousarray(w[EMBED].T))),
        "stored transposed?",
        "model.safetensors",
    ),
    (
        "tensor-missing",
        _edit_weights(lambda w: w.pop("language_model.model.norm.weight")),
        "are missing, e.g. language_model.norm.weight",
        "",
    ),
    (
        "tensor-unexpected",
        _edit_weights(lambda w: w.__setitem__("model.vision_tower.extra", np.ones(3, np.float32))),
        "do not belong to the configured model",
        "",
    ),
    (
        "nan-weights",
        _edit_weights(lambda w: w[EMBED].__setitem__((0, 0), np.nan)),
        "NaN or infinite",
        "model.safetensors",
    ),
    (
        "integer-weights",
        _edit_weights(lambda w: w.__setitem__(EMBED, w[EMBED].astype(np.int32))),
        "a float was expected",
        "model.safetensors",
    ),
    ("weights-missing", lambda d: (d / "model.safetensors").unlink(), "no model.safetensors", ""),
    ("weights-truncated", _truncate, "truncated file", "model.safetensors"),
    (
        "huge-claimed-size",
        lambda d: _raw_header(d, _huge_claim),
        "claims more than the file holds",
        "model.safetensors",
    ),
    (
        "unknown-dtype",
        lambda d: _raw_header(
            d, lambda h: h[_first_key(h, "norm")].__setitem__("dtype", "F8_E4M3")
        ),
        "unsupported dtype",
        "model.safetensors",
    ),
    (
        "header-length-lies",
        lambda d: (d / "model.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}"),
        "header length",
        "model.safetensors",
    ),
    (
        "weights-empty-file",
        lambda d: (d / "model.safetensors").write_bytes(b""),
        "not a safetensors file",
        "model.safetensors",
    ),
    (
        "tokenizer-binary-garbage",
        lambda d: (d / "tokenizer.json").write_bytes(bytes(range(256)) * 8),
        "not UTF-8",
        "tokenizer.json",
    ),
    (
        "tokenizer-not-a-tokenizer",
        lambda d: (d / "tokenizer.json").write_text('{"a": 1}'),
        "not a usable tokenizer",
        "tokenizer.json",
    ),
    (
        "tokenizer-missing",
        lambda d: (d / "tokenizer.json").unlink(),
        "no tokenizer.json or qwen.tiktoken",
        "",
    ),
    (
        "tokenizer-ids-disagree",
        lambda d: _edit_json(d / "config.json", lambda c: c.__setitem__("image_token_index", 3)),
        "<imgpad> has id",
        "tokenizer.json",
    ),
    (
        "index-points-outside",
        lambda d: (d / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"x": "../../etc/passwd"}})
        ),
        "lies outside the folder",
        "",
    ),
]


@pytest.fixture()
def source(tiny, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(tiny["hf_dir"], src)
    return src


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name)


@pytest.mark.parametrize(
    "damage,problem,named", [c[1:] for c in CONVERT_CASES], ids=[c[0] for c in CONVERT_CASES]
)
def test_convert_bad_source(source, tmp_path, capsys, damage, problem, named):
    damage(source)
    out = tmp_path / "out"
    assert main(["convert", str(source), str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]  # after a progress bar when found while streaming
    assert last.startswith("error: "), err
    assert problem in last
    assert str(source / named) in last
    assert not out.exists() and _leftovers(tmp_path) == []


def test_existing_output_refused_before_any_work(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["convert", str(tiny["hf_dir"]), str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists and is not empty (pass --overwrite" in err
    assert "convert " not in err  # refused before the progress bar appears
    assert (out / "mine.txt").read_text() == "keep me"


def test_output_that_is_a_file(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("a file")
    assert main(["convert", str(tiny["hf_dir"]), str(out)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert out.read_text() == "a file"


def test_overwrite_replaces_only_when_complete(tiny, tmp_path, capsys, monkeypatch):
    from ppgotocr import _safetensors

    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    real_write = _safetensors.StreamingWriter.write_chunks
    calls = []

    def failing(self, name, chunks):  # a full disk half-way through the weights
        calls.append(name)
        if len(calls) == 10:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real_write(self, name, chunks)

    monkeypatch.setattr(_safetensors.StreamingWriter, "write_chunks", failing)
    assert main(["convert", str(tiny["hf_dir"]), str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "no space left on device" in err and "model.safetensors" in err
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]  # old output intact
    assert _leftovers(tmp_path) == []
    monkeypatch.setattr(_safetensors.StreamingWriter, "write_chunks", real_write)
    assert main(["convert", str(tiny["hf_dir"]), str(out), "--overwrite"]) == 0
    assert not (out / "old.txt").exists() and (out / "model.safetensors").is_file()


def test_stale_temporary_of_a_dead_run_is_removed(tiny, tmp_path, capsys):
    import socket

    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname().split(".")[0])
    stale = tmp_path / f".out.partial-{host}-999999999-abcd1234"  # no such process
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    out = tmp_path / "out"
    assert main(["convert", str(tiny["hf_dir"]), str(out)]) == 0
    assert "a temporary left by an interrupted run" in capsys.readouterr().err
    assert not stale.exists() and (out / "model.safetensors").is_file()


def test_outputs_get_umask_permissions(tiny, tmp_path):
    import os

    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert main(["convert", str(tiny["hf_dir"]), str(out)]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}


OCR_CASES = [
    (
        "pdf-garbage",
        lambda d: (d / "x.pdf").write_bytes(b"%PDF-1.4 garbage"),
        ["x.pdf"],
        "not a readable PDF",
    ),
    ("page-out-of-range", None, ["doc.pdf", "--pages", "9"], "page 9 does not exist"),
    ("pages-malformed", None, ["doc.pdf", "--pages", "0-x"], "malformed page list"),
    ("pages-on-an-image", None, ["img.png", "--pages", "1"], "--pages applies to PDF input"),
    ("missing-input", None, ["nothing.png"], "no such file"),
    ("zero-max-new-tokens", None, ["img.png", "--max-new-tokens", "0"], "must be positive"),
]


@pytest.mark.parametrize(
    "make,args,problem", [c[1:] for c in OCR_CASES], ids=[c[0] for c in OCR_CASES]
)
def test_ocr_bad_input(tiny, images, tmp_path, capsys, monkeypatch, make, args, problem):
    from PIL import Image

    shutil.copy(images[1], tmp_path / "img.png")
    Image.open(images[1]).convert("RGB").save(tmp_path / "doc.pdf")
    if make is not None:
        make(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["ocr", *args, "--model", str(tiny["hf_dir"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and problem in err[0], err


def test_ocr_existing_output_refused_before_loading(tiny, images, tmp_path, capsys):
    out = tmp_path / "result.md"
    out.write_text("keep")
    assert (
        main(["ocr", str(images[1]), "--model", str(tmp_path / "no-model"), "--output", str(out)])
        == 2
    )
    assert "exists (pass --overwrite" in capsys.readouterr().err  # the model is never read
    assert out.read_text() == "keep"


@pytest.mark.parametrize(
    "flag,value,problem",
    [
        ("--batch-size", "0", "--batch-size must be positive"),
        ("--lr", "nan", "--lr must be a finite number"),
        ("--save-steps", "-1", "--save-steps must be >= 0"),
    ],
)
def test_train_bad_arguments(tiny, tmp_path, capsys, flag, value, problem):
    code = main(
        [
            "train",
            "--model",
            str(tiny["hf_dir"]),
            "--data",
            "d.json",
            "--images",
            ".",
            "--output",
            str(tmp_path / "run"),
            flag,
            value,
        ]
    )
    assert code == 2 and problem in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_refuses_existing_output(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    code = main(
        [
            "train",
            "--model",
            str(tiny["hf_dir"]),
            "--data",
            "d.json",
            "--images",
            ".",
            "--output",
            str(run),
        ]
    )
    assert code == 2 and "exists and is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
