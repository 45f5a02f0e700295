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
