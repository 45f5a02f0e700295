"""Format-OCR output (Markdown, LaTeX, tables) as text, Markdown or a standalone HTML page.

The HTML page renders in the browser with mathpix-markdown-it, as the original's ``render``
option does, but offline: the library's browser bundle ships inside the package (vendored from
npm, MIT) and is inlined into the page, and MathJax draws formulas as SVG, so the page needs no
network. The OCR text is embedded as a JSON string (``</`` escaped), so nothing in it can break
out of the page; the escaped raw text stays visible if scripts are disabled.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from importlib import resources
from pathlib import Path

from ._atomic import write_text

VENDOR = "vendor/mathpix-markdown-it"
OUTPUT_FORMATS = ("text", "markdown", "html")

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>body{{max-width:60em;margin:2em auto;font-family:sans-serif}}
.raw{{white-space:pre-wrap;background:#f6f6f6;padding:1em}}
.page-name{{color:#777;font-size:0.9em;border-top:1px solid #ddd;padding-top:0.5em}}</style>
<script>
/* mathpix-markdown-it (MIT License, Copyright (c) 2020 Mathpix), vendored es5/bundle.js */
{library}
</script>
</head>
<body>
<div id="content">{fallback}</div>
<script>
const pages = {payload};
window.addEventListener("load", () => {{
  if (!(window.loadMathJax && window.markdownToHTML)) return;
  loadMathJax();
  document.getElementById("content").innerHTML = pages.map(p =>
    (pages.length > 1 ? `<div class="page-name">${{p.name.replace(/[&<>]/g, c =>
      ({{"&": "&amp;", "<": "&lt;", ">": "&gt;"}})[c])}}</div>` : "") +
    markdownToHTML(p.text, {{htmlTags: false}})).join("\\n");
}});
</script>
</body>
</html>
"""


def library_js() -> str:
    """The vendored mathpix-markdown-it browser bundle."""
    data = resources.files("ppgotocr").joinpath(VENDOR, "bundle.js.gz").read_bytes()
    return gzip.decompress(data).decode("utf-8")


def _script_safe(text: str) -> str:
    """JSON text that cannot end the ``<script>`` element it sits in (``<\\/`` is the same
    string to JavaScript)."""
    return text.replace("</", "<\\/")


def _library_safe(code: str) -> str:
    """The library's code, checked not to close its ``<script>`` element early. (Replacing
    every ``</`` would break its regular expressions; ``</script`` never occurs in it.)"""
    if re.search(r"</script", code, re.IGNORECASE):
        raise RuntimeError("the vendored library contains '</script' and cannot be inlined")
    return code


def html_page(pages: list[tuple[str, str]], title: str = "GOT-OCR2.0 output") -> str:
    """A self-contained page for ``(name, text)`` pairs (one per image or PDF page)."""
    payload = _script_safe(json.dumps([{"name": n, "text": t} for n, t in pages]))
    fallback = "\n".join(
        (f'<div class="page-name">{html.escape(n)}</div>' if len(pages) > 1 else "")
        + f'<pre class="raw">{html.escape(t)}</pre>'
        for n, t in pages
    )
    return _TEMPLATE.format(
        title=html.escape(title),
        library=_library_safe(library_js()),
        fallback=fallback,
        payload=payload,
    )


def as_text(pages: list[tuple[str, str]]) -> str:
    """Plain text; several pages get ``==> name <==`` headers, like ``head``."""
    if len(pages) == 1:
        return pages[0][1] + "\n"
    return "\n".join(f"==> {n} <==\n{t}\n" for n, t in pages)


def as_markdown(pages: list[tuple[str, str]]) -> str:
    """Markdown (format mode output is Mathpix Markdown: LaTeX math, tables); pages are
    separated by a horizontal rule with the page name in an HTML comment."""
    parts = []
    for i, (name, text) in enumerate(pages):
        if len(pages) > 1:
            parts.append(("\n---\n\n" if i else "") + f"<!-- {name.replace('--', '- -')} -->\n")
        parts.append(text.rstrip("\n") + "\n")
    return "".join(parts)


def format_output(pages: list[tuple[str, str]], fmt: str) -> str:
    if fmt == "text":
        return as_text(pages)
    if fmt == "markdown":
        return as_markdown(pages)
    if fmt == "html":
        return html_page(pages)
    raise ValueError(f"unknown output format {fmt!r} ({', '.join(OUTPUT_FORMATS)})")


def format_for_path(path, default: str = "text") -> str:
    suffix = Path(path).suffix.lower()
    return {
        ".md": "markdown",
        ".markdown": "markdown",
        ".mmd": "markdown",
        ".html": "html",
        ".htm": "html",
        ".txt": "text",
    }.get(suffix, default)


def render_html(
    text: str, out_path, title: str = "GOT-OCR2.0 output", overwrite: bool = True
) -> Path:
    """Write one text as a standalone HTML page (atomically)."""
    return write_text(out_path, html_page([("output", text)], title), overwrite=overwrite)
