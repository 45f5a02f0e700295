"""First contact with the command line: --help and --version without Paddle, a kept tiny
pipeline the README's commands run on, output permissions from the umask."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ppflux
from ppflux.cli import main

PROBE = """
import sys, time
start = time.process_time()
from ppflux.cli import main
try:
    main({argv!r})
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("paddle", "ppdiffusers", "paddlenlp", "torch") if m in sys.modules)
print("RESULT", code, heavy, round(time.process_time() - start, 3), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["convert", "--help"],
        ["train-dreambooth-lora", "--help"],
        ["generate"],
    ],
)
def test_help_version_and_argument_errors_do_not_import_paddle(argv):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("RESULT")][-1]
    _, code, *rest = line.split(" ", 2)
    heavy, cpu = rest[0].rsplit(" ", 1)
    assert heavy == "[]", f"{argv} imported {heavy}"
    # CPU time of the child, not wall time: a loaded machine does not make it fail
    assert float(cpu) < 1.0, f"{argv} took {cpu} s of CPU"
    if argv == ["--version"]:
        assert proc.stdout.strip() == f"ppflux {ppflux.__version__}"
    if argv == ["generate"]:
        assert code == "2" and "required" in proc.stderr
    else:
        assert code == "0" and proc.stdout.startswith(("usage", "ppflux"))


def test_make_tiny_kept_folder_runs_generate_with_umask_permissions(tmp_path, capsys):
    folder = tmp_path / "tiny"
    old = os.umask(0o027)
    try:
        assert main(["make-tiny", str(folder)]) == 0
        printed = capsys.readouterr().out
        image = tmp_path / "cat.png"
        assert (
            main(
                [
                    "generate",
                    "--model",
                    str(folder),
                    "--prompt",
                    "a red cat",
                    "--steps",
                    "1",
                    "--height",
                    "32",
                    "--width",
                    "32",
                    "--max-sequence-length",
                    "16",
                    "-o",
                    str(image),
                ]
            )
            == 0
        )
    finally:
        os.umask(old)
    assert "ppflux generate --model" in printed
    assert (folder / "model_index.json").is_file() and image.is_file()
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_ppflux_version"] == ppflux.__version__
    for path in [folder, *folder.rglob("*"), image]:
        want = 0o750 if path.is_dir() else 0o640
        assert path.stat().st_mode & 0o777 == want, path
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_demo_out_keeps_pipeline_and_image(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "1", "--size", "32"]) == 0
    printed = capsys.readouterr().out
    assert (out / "pipeline" / "model_index.json").is_file()
    assert (out / "demo.png").is_file()
    assert f"--model {out / 'pipeline'}" in printed
    assert main(["demo", "--out", str(out), "--steps", "1", "--size", "32"]) == 2
    assert main(["demo", "--out", str(out), "--steps", "1", "--size", "32", "--overwrite"]) == 0
