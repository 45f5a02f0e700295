"""The command line: convert, generate (streaming), verify, export, errors."""

from __future__ import annotations

import json

from conftest import build_hf_model
from x2paddle_llm.cli import main


def test_cli_end_to_end(tmp_path, capsys):
    build_hf_model(tmp_path / "hf", "qwen2")
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "pd"), "--quiet"]) == 0
    assert "converted qwen2" in capsys.readouterr().out

    assert main(["verify", str(tmp_path / "hf"), str(tmp_path / "pd"), "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "max |logits diff|" in out

    assert main(["generate", str(tmp_path / "pd"), "--prompt", "w5 w6 w7", "--max-new-tokens", "6", "--no-eos"]) == 0
    streamed = capsys.readouterr().out.strip()
    assert len(streamed.split()) == 6 and all(w.startswith("w") or w in ("<s>", "</s>", "<pad>") for w in streamed.split())

    assert main(["generate", str(tmp_path / "pd"), "--ids", "5,6,7", "--ids", "8,9", "--max-new-tokens", "5",
                 "--no-eos", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(len(r) == 5 for r in rows)

    assert main(["export", str(tmp_path / "pd"), str(tmp_path / "inf")]) == 0
    assert "probe max|diff|" in capsys.readouterr().out
    for mode in ("auto", "plain"):
        assert main(["generate", str(tmp_path / "inf"), "--inference", "--predictor-mode", mode, "--ids", "5,6,7",
                     "--ids", "8,9", "--max-new-tokens", "5", "--no-eos", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == rows


def test_cli_verify_detects_mismatch(tmp_path, capsys):
    build_hf_model(tmp_path / "hf", "llama")
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "pd"), "--quiet"]) == 0
    build_hf_model(tmp_path / "hf", "llama", seed=1)  # different weights under the same folder
    assert main(["verify", str(tmp_path / "hf"), str(tmp_path / "pd"), "--max-new-tokens", "4"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_cli_error_is_clear_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bert" in err and "Supported" in err
    assert not (tmp_path / "out").exists()
