"""CLI: every mode prints text, --render writes HTML, bad input gives clear errors."""

from __future__ import annotations

import pytest
from PIL import Image

from ppgotocr import processing
from ppgotocr.cli import main
from ppgotocr.processing import InputError, load_image


def _ocr(tiny, *args):
    return main(["ocr", *map(str, args), "--model", str(tiny["hf_dir"]), "--max-new-tokens", "4"])


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--type", "format"],
        ["--box", "10,20,100,90"],
        ["--color", "green"],
        ["--crop"],
        ["--system-line", "train"],
        ["--stop", "zz"],
    ],
)
def test_ocr_modes(tiny, images, capsys, extra):
    assert _ocr(tiny, images[1], *extra) == 0
    assert capsys.readouterr().err.count("error") == 0


def test_ocr_batch_multi_page_and_render(tiny, images, tmp_path, capsys):
    assert _ocr(tiny, images[0], images[1]) == 0
    out = capsys.readouterr().out
    assert f"==> {images[0]} <==" in out and f"==> {images[1]} <==" in out
    html = tmp_path / "out.html"
    assert _ocr(tiny, images[0], images[1], "--multi-page", "--render", html) == 0
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "markdownToHTML" in page


def test_render_escapes(tmp_path):
    from ppgotocr.render import render_html

    page = render_html("</script><b>x</b> $a^2$\n| a | b |", tmp_path / "r.html").read_text()
    assert "</script><b>" not in page
    assert "&lt;/script&gt;" in page


def test_bad_images(tiny, tmp_path, capsys):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    for path, msg in (
        (empty, "empty file"),
        (junk, "not a readable image"),
        (tmp_path / "missing.png", "no such file"),
    ):
        assert _ocr(tiny, path) == 2
        err = capsys.readouterr().err
        assert str(path) in err and msg in err


def test_huge_image(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (400, 300)).save(path)
    monkeypatch.setattr(processing, "MAX_PIXELS", 100 * 100)
    with pytest.raises(InputError, match="too large"):
        load_image(path)


def test_bad_box_and_color_cli(tiny, images, capsys):
    assert _ocr(tiny, images[0], "--box", "1,2,3") == 2
    assert "malformed box" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        _ocr(tiny, images[0], "--color", "purple")
    assert exc.value.code == 2
    assert "invalid choice: 'purple'" in capsys.readouterr().err


def test_help_mentions_modes(capsys):
    with pytest.raises(SystemExit):
        main(["ocr", "--help"])
    out = capsys.readouterr().out
    for word in ("--box", "--color", "--crop", "--multi-page", "--render"):
        assert word in out


HELP_CODE = """
import sys, time
t = time.perf_counter()
from ppgotocr.cli import main
for argv in (["--help"], ["ocr", "--help"], ["train", "--help"], ["convert", "--help"]):
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code == 0, exc.code
print(round(time.perf_counter() - t, 3), "paddle" in sys.modules)
"""


def test_help_is_fast_and_does_not_import_paddle():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", HELP_CODE], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    seconds, imported = out.stdout.strip().splitlines()[-1].split()
    assert imported == "False"
    assert float(seconds) < 1.0, seconds


def test_version(capsys):
    import ppgotocr

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"ppgotocr {ppgotocr.__version__}"


def test_make_tiny_and_demo_out_leave_folders_the_readme_commands_run_on(tmp_path, capsys):
    import os

    old = os.umask(0o022)
    try:
        assert main(["make-tiny", str(tmp_path / "tiny")]) == 0
        assert main(["demo", "--out", str(tmp_path / "demo"), "--max-new-tokens", "2"]) == 0
    finally:
        os.umask(old)
    out = capsys.readouterr().out
    assert "ppgotocr ocr " in out
    for folder in (tmp_path / "tiny", tmp_path / "demo" / "tiny-got"):
        assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o644}  # not 0600
    assert (tmp_path / "demo").stat().st_mode & 0o777 == 0o755
    # the printed commands run as printed
    for line in out.splitlines():
        if line.strip().startswith("ppgotocr ocr "):
            import shlex

            assert main(shlex.split(line.strip())[1:]) == 0, line
    assert (tmp_path / "demo" / "hello.html").is_file()
    assert main(["make-tiny", str(tmp_path / "tiny")]) == 2  # refused without --overwrite
