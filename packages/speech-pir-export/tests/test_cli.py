"""First contact with the command line, in fresh processes as a user runs it: ``--help``
without importing Paddle, ``--version``, machine-readable output that parses, Paddle's own
chatter kept off stdout, output permissions from the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from importlib.metadata import version

import numpy as np
import soundfile

from speech_pir_export import configs

CLI = [sys.executable, "-m", "speech_pir_export.cli"]


def cli(*args, umask=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLOG")}
    env["PYTHONWARNINGS"] = "default"  # what a user's terminal shows
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run(
        [*CLI, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        preexec_fn=preexec,
        timeout=600,
    )


def test_help_does_not_import_paddle_and_is_fast():
    code = (
        "import sys, time\n"
        "t0 = time.perf_counter()\n"
        "from speech_pir_export.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0\n"
        "print('\\nSECONDS', time.perf_counter() - t0)\n"
        "print('PADDLE', sorted(m for m in sys.modules if m.split('.')[0] in "
        "('paddle', 'paddlespeech', 'numpy')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: speech-pir-export" in proc.stdout
    assert "PADDLE []" in proc.stdout
    seconds = float(proc.stdout.split("SECONDS")[1].split()[0])
    assert seconds < 1.0
    t0 = time.perf_counter()
    bad = cli("export")  # an argument error: also without Paddle
    assert bad.returncode == 2 and "the following arguments are required" in bad.stderr
    assert time.perf_counter() - t0 < 5.0  # interpreter start included


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"speech-pir-export {version('speech-pir-export')}"


def test_machine_readable_output_and_permissions(tmp_path):
    out = tmp_path / "u2"
    proc = cli(
        "export", "u2", "--config", configs.path("u2"), "--out", out, "--skip-onednn", umask=0o027
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # stdout is the tool's own report, nothing of Paddle's (its log lines go to stderr or
    # nowhere)
    assert proc.stdout.strip().splitlines()[-1] == f"exported u2 -> {out}"
    assert not any(line.startswith(("I1", "W1", "E1", "---")) for line in proc.stdout.splitlines())
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o640, f

    wav = tmp_path / "a.wav"
    soundfile.write(
        wav,
        np.random.default_rng(0).standard_normal(20000).astype("float32") * 0.1,
        16000,
        subtype="PCM_16",
    )
    proc = cli("infer", out, "--wav", wav, "--output", tmp_path / "r.json", umask=0o022)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert isinstance(result["text"], str) and isinstance(result["token_ids"], list)
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8")) == result
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644

    # an existing output is the user's: refused, exit 2, one line, nothing changed
    again = cli("infer", out, "--wav", wav, "--output", tmp_path / "r.json")
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "--overwrite" in again.stderr
