"""PDF input (a real PDF written by reportlab), output formats, and the offline HTML page."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from ppgotocr.cli import main
from ppgotocr.documents import load_pages, pdf_pages
from ppgotocr.render import as_markdown, html_page


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    canvas = pytest.importorskip("reportlab.pdfgen.canvas")
    from reportlab.lib.pagesizes import A4, landscape

    path = tmp_path_factory.mktemp("pdf") / "doc.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setFont("Helvetica", 14)
    c.drawString(72, 770, "Invoice 42 - total 3.50 EUR")
    c.showPage()
    c.setPageSize(landscape(A4))
    c.drawString(72, 500, "E = mc^2 on a landscape page")
    c.showPage()
    c.save()
    return path


def test_pdf_pages_rendered_at_the_resolution_the_mode_needs(pdf):
    plain = pdf_pages(pdf, image_size=256)
    assert [p.name for p in plain] == [f"{pdf}#page=1", f"{pdf}#page=2"]
    for page in plain:  # resized to 256x256 by the model: the shorter side is rendered at 256
        assert min(page.image.size) in (256, 257) and max(page.image.size) > 256
    assert plain[0].image.size[1] > plain[0].image.size[0]  # portrait
    assert plain[1].image.size[0] > plain[1].image.size[1]  # landscape
    # there is ink on the page (text was rendered, not a blank bitmap)
    assert np.asarray(plain[0].image.convert("L")).min() < 128
    crop = pdf_pages(pdf, image_size=256, crop=True, pages=[2])
    assert len(crop) == 1 and max(crop[0].image.size) >= 2 * 256  # room for the tiles


def test_pdf_ocr_equals_ocr_of_its_rendered_pages(tiny, pipe, pdf, tmp_path, capsys):
    pages = load_pages([pdf], image_size=pipe.config.vision.image_size)
    pngs = []
    for i, page in enumerate(pages):
        pngs.append(tmp_path / f"p{i}.png")
        page.image.save(pngs[-1])
    model = ["--model", str(tiny["hf_dir"]), "--max-new-tokens", "4"]
    assert main(["ocr", str(pdf), *model]) == 0
    from_pdf = capsys.readouterr().out
    assert f"==> {pdf}#page=1 <==" in from_pdf and f"==> {pdf}#page=2 <==" in from_pdf
    assert main(["ocr", *map(str, pngs), *model]) == 0
    from_png = capsys.readouterr().out
    strip = lambda s: re.sub(r"==> .* <==", "", s)  # noqa: E731
    assert strip(from_pdf) == strip(from_png)
    # multi-page from a PDF: one prompt with both pages
    assert main(["ocr", str(pdf), "--multi-page", *model]) == 0
    multi = capsys.readouterr().out
    assert main(["ocr", *map(str, pngs), "--multi-page", *model]) == 0
    assert multi == capsys.readouterr().out


@pytest.mark.parametrize(
    "suffix,check",
    [
        (".md", lambda t: "<!-- " in t and "\n---\n" in t),
        (".txt", lambda t: "==> " in t),
        (".html", lambda t: t.startswith("<!DOCTYPE html>") and "window.markdownToHTML" in t),
    ],
)
def test_output_formats(tiny, pdf, tmp_path, suffix, check):
    out = tmp_path / f"result{suffix}"
    args = [
        "ocr",
        str(pdf),
        "--model",
        str(tiny["hf_dir"]),
        "--max-new-tokens",
        "2",
        "--type",
        "format",
        "--output",
        str(out),
    ]
    assert main(args) == 0
    assert check(out.read_text())
    assert main(args) == 2  # exists: refused without --overwrite
    assert main([*args, "--overwrite"]) == 0


def test_markdown_pages():
    md = as_markdown([("a.pdf#page=1", "# One"), ("a.pdf#page=2", "| x |\n|---|\n| 1 |")])
    assert (
        md == "<!-- a.pdf#page=1 -->\n# One\n\n---\n\n<!-- a.pdf#page=2 -->\n| x |\n|---|\n| 1 |\n"
    )


NODE_RUN = r"""
const fs = require("fs"), vm = require("vm");
const page = fs.readFileSync(process.argv[2], "utf8");
const scripts = [...page.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(m => m[1]);
const ctx = {console, setTimeout, clearTimeout, setInterval, clearInterval, TextEncoder,
             TextDecoder, URL};
ctx.window = ctx; ctx.self = ctx; ctx.globalThis = ctx;
ctx.addEventListener = () => {};
vm.createContext(ctx);
vm.runInContext(scripts[0], ctx);             // the inlined library, no network
vm.runInContext(scripts[1] + "; this.pagesOut = pages;", ctx);
process.stdout.write(JSON.stringify(ctx.pagesOut.map(p => ctx.markdownToHTML(p.text, {htmlTags: false}))));
"""


def test_html_renders_offline_with_the_vendored_library(tmp_path):
    """The page's own scripts, run by node without network, turn Markdown tables and LaTeX
    into HTML tables and MathJax SVG; the OCR text cannot close the script element."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (needed to execute the page's JavaScript)")
    text = "| Item | Price |\n|---|---|\n| Tea | 3.50 |\n\n\\(x^2 + y^2 = z^2\\) </script><b>"
    page = html_page([("scan.png", text)])
    from ppgotocr.render import library_js

    own = page.replace(library_js(), "")  # the page itself (the library is checked by running)
    assert not re.search(r"<(script|link)[^>]*\b(src|href)=", own)  # nothing fetched
    assert "</script><b>" not in page.split("const pages")[1].split("\n")[0]
    (tmp_path / "page.html").write_text(page)
    (tmp_path / "run.js").write_text(NODE_RUN)
    out = subprocess.run(
        [node, str(tmp_path / "run.js"), str(tmp_path / "page.html")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (rendered,) = json.loads(out.stdout)
    assert "<table" in rendered and "<td>Tea</td>" in rendered
    assert "<svg" in rendered and "MathJax" in rendered
    assert "<b>" not in rendered  # htmlTags off: the OCR text's markup is not HTML
