"""Fault suite: damaged, lying and hostile input through the command line.

Every case asserts the exit code (2 = bad input, 130 = interrupted), that the message names the
file or argument and the problem, and the state of the output location afterwards (absent, or
the old content intact). No traceback is ever the answer to bad input.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import struct

import pytest
from conftest import build_hf_model

from x2paddle_llm.cli import main


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A tiny converted Qwen2 (HF folder + Paddle folder) shared by the cases; never modified."""
    root = tmp_path_factory.mktemp("faults")
    build_hf_model(root / "hf", "qwen2")
    assert main(["convert", str(root / "hf"), str(root / "pd"), "--quiet"]) == 0
    return root


def _copy_hf(good, tmp_path):
    hf = tmp_path / "hf"
    shutil.copytree(good / "hf", hf)
    return hf


def _edit_config(hf, **changes):
    cfg = json.loads((hf / "config.json").read_text())
    cfg.update(changes)
    (hf / "config.json").write_text(json.dumps(cfg))


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _nothing_left(parent, name="out"):
    """Neither the output nor a temporary sibling of it exists."""
    return not [p for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}.")]


def _convert_fails(capsys, hf, out, *patterns):
    rc, _, err = _run(capsys, "convert", hf, out, "--quiet")
    assert rc == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    for pattern in patterns:
        assert pattern in err, err
    assert _nothing_left(out.parent, out.name)
    return err


# ------------------------------------------------------------------ config.json
CONFIG_CASES = {
    "zero heads": (
        dict(num_attention_heads=0),
        ["config.json", "num_attention_heads must be >= 1"],
    ),
    "string layers": (dict(num_hidden_layers="two"), ["num_hidden_layers must be an integer"]),
    "negative vocab": (dict(vocab_size=-5), ["vocab_size must be >= 1"]),
    "float hidden": (dict(hidden_size=64.5), ["hidden_size must be an integer"]),
    "bool tie": (dict(tie_word_embeddings="yes"), ["tie_word_embeddings must be true or false"]),
    "text rope theta": (
        dict(rope_parameters={"rope_type": "default", "rope_theta": "big"}),
        ["rope_theta must be a number"],
    ),
    "rope params list": (dict(rope_parameters=[1, 2]), ["rope_parameters must be an object"]),
    "unknown rope": (
        dict(rope_parameters={"rope_type": "proportional", "rope_theta": 1e4}),
        ["rope type 'proportional' is not supported"],
    ),
    "bad eps": (dict(rms_norm_eps=0), ["rms_norm_eps must be > 0"]),
    "kv heads not dividing": (dict(num_key_value_heads=3), ["not divisible"]),
    "more kv than q heads": (
        dict(num_key_value_heads=8),
        ["num_key_value_heads 8 > num_attention_heads 4"],
    ),
    "bad eos": (dict(eos_token_id="end"), ["eos_token_id must be a token id"]),
    "unknown family": (dict(model_type="bert"), ["model_type 'bert'", "Supported:"]),
    "bad activation": (dict(hidden_act="swiglu9"), ["activation 'swiglu9' not supported"]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_wrong_config_values(good, tmp_path, capsys, case):
    changes, patterns = CONFIG_CASES[case]
    hf = _copy_hf(good, tmp_path)
    _edit_config(hf, **changes)
    _convert_fails(capsys, hf, tmp_path / "out", *patterns)


def test_config_not_utf8(good, tmp_path, capsys):
    hf = _copy_hf(good, tmp_path)
    (hf / "config.json").write_bytes(b"\xff\xfe{ not text")
    _convert_fails(capsys, hf, tmp_path / "out", "config.json", "not UTF-8")


def test_config_is_a_list(good, tmp_path, capsys):
    hf = _copy_hf(good, tmp_path)
    (hf / "config.json").write_text("[1, 2, 3]")
    _convert_fails(capsys, hf, tmp_path / "out", "config.json", "JSON object")


def test_config_truncated_json(good, tmp_path, capsys):
    hf = _copy_hf(good, tmp_path)
    (hf / "config.json").write_text((good / "hf" / "config.json").read_text()[:40])
    _convert_fails(capsys, hf, tmp_path / "out", "config.json", "not valid JSON")


def test_missing_source_folder(tmp_path, capsys):
    _convert_fails(capsys, tmp_path / "nope", tmp_path / "out", "nope", "not a folder")


# ------------------------------------------------------------------ weights
def test_garbage_tokenizer_is_refused_before_writing(good, tmp_path, capsys):
    hf = _copy_hf(good, tmp_path)
    (hf / "tokenizer.json").write_bytes(os.urandom(300))
    _convert_fails(capsys, hf, tmp_path / "out", "tokenizer.json")


def test_truncated_weights(good, tmp_path, capsys):
    hf = _copy_hf(good, tmp_path)
    data = (hf / "model.safetensors").read_bytes()
    (hf / "model.safetensors").write_bytes(data[: len(data) // 2])
    _convert_fails(capsys, hf, tmp_path / "out", "model.safetensors", "truncated")


def test_huge_claimed_tensor_is_not_allocated(good, tmp_path, capsys):
    """A header claiming 1e12 float32 elements must be refused from the file size, not allocated."""
    hf = _copy_hf(good, tmp_path)
    header = json.dumps(
        {
            "model.embed_tokens.weight": {
                "dtype": "F32",
                "shape": [1000000, 1000000],
                "data_offsets": [0, 4 * 10**12],
            }
        }
    ).encode()
    (hf / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    _convert_fails(capsys, hf, tmp_path / "out", "model.safetensors", "model.embed_tokens.weight")


def test_tensor_shape_disagrees_with_config(good, tmp_path, capsys):
    hf = _copy_hf(good, tmp_path)
    _edit_config(hf, intermediate_size=96)
    _convert_fails(capsys, hf, tmp_path / "out", "mlp.gate_proj.weight", "config.json implies")


def test_index_names_a_file_outside_the_folder(good, tmp_path, capsys):
    hf = _copy_hf(good, tmp_path)
    (hf / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "../model.safetensors"}})
    )
    _convert_fails(
        capsys, hf, tmp_path / "out", "model.safetensors.index.json", "outside the folder"
    )


def test_index_of_wrong_type(good, tmp_path, capsys):
    hf = _copy_hf(good, tmp_path)
    (hf / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": ["model.safetensors"]})
    )
    _convert_fails(capsys, hf, tmp_path / "out", "model.safetensors.index.json", "weight_map")


# ------------------------------------------------------------------ the output location
def test_existing_output_is_kept_without_overwrite(good, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    rc, _, err = _run(capsys, "convert", good / "hf", out, "--quiet")
    assert rc == 2 and "--overwrite" in err and str(out) in err
    assert (out / "mine.txt").read_text() == "keep" and len(list(out.iterdir())) == 1


def test_failed_overwrite_keeps_the_old_output(good, tmp_path, capsys):
    hf = _copy_hf(good, tmp_path)
    (hf / "tokenizer.json").write_text("{not json")
    out = tmp_path / "out"
    shutil.copytree(good / "pd", out)
    before = sorted(p.name for p in out.iterdir())
    rc, _, err = _run(capsys, "convert", hf, out, "--quiet", "--overwrite")
    assert rc == 2 and "tokenizer.json" in err
    assert sorted(p.name for p in out.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_output_is_an_existing_file(good, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("a file")
    rc, _, err = _run(capsys, "convert", good / "hf", out, "--quiet")
    assert rc == 2 and "not a folder" in err and out.read_text() == "a file"


def test_full_disk_leaves_nothing(good, tmp_path, capsys, monkeypatch):
    """ENOSPC while a shard is written (injected: no tmpfs can be mounted here)."""
    from x2paddle_llm import _safetensors

    def full(self, name, chunks):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(_safetensors.StreamingWriter, "write_chunks", full)
    rc, _, err = _run(capsys, "convert", good / "hf", tmp_path / "out", "--quiet")
    assert rc == 2 and "no space left on device" in err and "model.safetensors" in err
    assert _nothing_left(tmp_path)


def test_interrupted_conversion_leaves_nothing(good, tmp_path, capsys, monkeypatch):
    import importlib

    convert_module = importlib.import_module("x2paddle_llm.convert")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_module, "_write_configs", interrupt)
    rc, _, err = _run(capsys, "convert", good / "hf", tmp_path / "out", "--quiet")
    assert rc == 130 and "interrupted" in err
    assert _nothing_left(tmp_path)


def test_temporary_of_a_killed_run_is_removed(good, tmp_path, capsys):
    """What `kill -9` leaves (a hidden partial folder of a dead process) is removed by the next run."""
    dead_pid = 2**22 + 12345  # above pid_max's default range: no such process
    host = socket.gethostname().split(".")[0] or "host"
    stale = tmp_path / f".out.partial-{host}-{dead_pid}-abcd1234"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    rc, _, err = _run(capsys, "convert", good / "hf", tmp_path / "out", "--quiet")
    assert rc == 0 and not stale.exists() and "interrupted run" in err
    assert (tmp_path / "out" / "model.safetensors").is_file()


# ------------------------------------------------------------------ generate / export
def test_generate_with_garbage_tokenizer(good, tmp_path, capsys):
    pd = tmp_path / "pd"
    shutil.copytree(good / "pd", pd)
    (pd / "tokenizer.json").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    rc, out, err = _run(capsys, "generate", pd, "--prompt", "w5 w6")
    assert rc == 2 and "tokenizer.json" in err and "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    "ids, message",
    [
        ("a,b", "'a' is not a token id"),
        ("5,,", None),
        ("999", "outside the vocabulary"),
        ("-3", "'-3' is not a token id"),
    ],
)
def test_generate_bad_ids(good, capsys, ids, message):
    rc, out, err = _run(
        capsys, "generate", good / "pd", "--ids", ids, "--max-new-tokens", "2", "--json"
    )
    if message is None:  # trailing commas are tolerated
        assert rc == 0 and json.loads(out)["tokens"]
    else:
        assert rc == 2 and message in err and out == ""


def test_generate_on_an_unconverted_folder(good, capsys):
    rc, _, err = _run(capsys, "generate", good / "hf", "--ids", "5,6")
    assert rc == 2 and "config.json" in err and "convert" in err


def test_generate_zero_new_tokens(good, capsys):
    rc, _, err = _run(capsys, "generate", good / "pd", "--ids", "5", "--max-new-tokens", "0")
    assert rc == 2 and "--max-new-tokens" in err


def test_generate_inference_on_a_plain_folder(good, capsys):
    rc, _, err = _run(capsys, "generate", good / "pd", "--inference", "--ids", "5")
    assert rc == 2 and "x2paddle_llm_inference.json" in err


def test_chat_without_template(good, tmp_path, capsys):
    pd = tmp_path / "pd"
    shutil.copytree(good / "pd", pd)
    (pd / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    rc, _, err = _run(capsys, "generate", pd, "--chat", "--prompt", "w5")
    assert rc == 2 and "no chat template" in err
