"""The command line: convert, generate (streaming), verify, export, errors."""

from __future__ import annotations

import json
import os
import re

from conftest import build_hf_model

from x2paddle_llm.cli import main


def test_cli_end_to_end(tmp_path, capsys):
    build_hf_model(tmp_path / "hf", "qwen2")
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "pd"), "--quiet"]) == 0
    assert "converted qwen2" in capsys.readouterr().out

    assert (
        main(["verify", str(tmp_path / "hf"), str(tmp_path / "pd"), "--max-new-tokens", "8"]) == 0
    )
    out = capsys.readouterr().out
    assert "OK" in out and "max |logits diff|" in out

    assert (
        main(
            [
                "generate",
                str(tmp_path / "pd"),
                "--prompt",
                "w5 w6 w7",
                "--max-new-tokens",
                "6",
                "--no-eos",
            ]
        )
        == 0
    )
    streamed = capsys.readouterr().out.strip()
    assert len(streamed.split()) == 6 and all(
        w.startswith("w") or w in ("<s>", "</s>", "<pad>") for w in streamed.split()
    )

    assert (
        main(
            [
                "generate",
                str(tmp_path / "pd"),
                "--ids",
                "5,6,7",
                "--ids",
                "8,9",
                "--max-new-tokens",
                "5",
                "--no-eos",
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)["tokens"]
    assert len(rows) == 2 and all(len(r) == 5 for r in rows)

    assert main(["export", str(tmp_path / "pd"), str(tmp_path / "inf")]) == 0
    assert "probe max|diff|" in capsys.readouterr().out
    for mode in ("auto", "plain"):
        assert (
            main(
                [
                    "generate",
                    str(tmp_path / "inf"),
                    "--inference",
                    "--predictor-mode",
                    mode,
                    "--ids",
                    "5,6,7",
                    "--ids",
                    "8,9",
                    "--max-new-tokens",
                    "5",
                    "--no-eos",
                    "--json",
                ]
            )
            == 0
        )
        assert json.loads(capsys.readouterr().out)["tokens"] == rows


def test_cli_verify_detects_mismatch(tmp_path, capsys):
    build_hf_model(tmp_path / "hf", "llama")
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "pd"), "--quiet"]) == 0
    build_hf_model(tmp_path / "hf", "llama", seed=1)  # different weights under the same folder
    assert (
        main(["verify", str(tmp_path / "hf"), str(tmp_path / "pd"), "--max-new-tokens", "4"]) == 1
    )
    assert "MISMATCH" in capsys.readouterr().out


def test_cli_error_is_clear_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bert" in err and "Supported" in err
    assert not (tmp_path / "out").exists()


def _run_cli(*args, env=None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "x2paddle_llm.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_help_does_not_import_paddle_and_is_fast():
    import subprocess
    import sys

    code = (
        "import sys, time; t = time.process_time()\n"
        "from x2paddle_llm.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(repr(time.process_time() - t), 'paddle' in sys.modules, 'torch' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    seconds, paddle_loaded, torch_loaded = done.stderr.split()[-3:]
    assert "usage: x2paddle-llm" in done.stdout
    assert paddle_loaded == "False" and torch_loaded == "False"
    # CPU time of the import + parse, so that a loaded machine does not make the test flaky
    assert float(seconds) < 1.0, f"--help took {seconds} s of CPU"


def test_version(capsys):
    import pytest

    from x2paddle_llm import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"x2paddle-llm {__version__}"


def test_inference_json_is_exactly_json_and_outputs_follow_umask(tmp_path):
    """stdout of `generate --inference --json` parses as JSON (Paddle's C++ prints go to stderr);
    every output file and folder has the permissions the umask gives."""
    import stat

    build_hf_model(tmp_path / "hf", "qwen2")
    old = os.umask(0o027)
    try:
        assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "pd"), "--quiet"]) == 0
        assert main(["export", str(tmp_path / "pd"), str(tmp_path / "inf")]) == 0
    finally:
        os.umask(old)
    for root in (tmp_path / "pd", tmp_path / "inf"):
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o750 if path.is_dir() else 0o640), f"{path}: {oct(mode)}"
    done = _run_cli(
        "generate",
        tmp_path / "inf",
        "--inference",
        "--ids",
        "5,6,7",
        "--ids",
        "8,9",
        "--max-new-tokens",
        "4",
        "--no-eos",
        "--json",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    parsed = json.loads(done.stdout)
    assert [len(r) for r in parsed["tokens"]] == [4, 4] and len(parsed["text"]) == 2
    assert re.search(r"\[predictor: (plain|onednn(-\d+)?), probe", done.stderr)
