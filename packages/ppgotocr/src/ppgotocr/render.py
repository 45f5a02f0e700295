"""Turn format-OCR output (markdown, LaTeX, tables) into a standalone HTML page.

Like the original's ``render`` option, the page renders in the browser with
mathpix-markdown-it (loaded from a CDN when the page is opened); the raw text is embedded
as a JSON string, so nothing in the OCR output can break out of the page.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<script src="https://cdn.jsdelivr.net/npm/mathpix-markdown-it@1.3.6/es5/bundle.js"></script>
<style>body{{max-width:60em;margin:2em auto;font-family:sans-serif}}
#raw{{white-space:pre-wrap;background:#f6f6f6;padding:1em}}</style>
</head>
<body>
<div id="content"><pre id="raw">{escaped}</pre></div>
<script>
const text = {payload};
window.addEventListener("load", () => {{
  if (window.loadMathJax && window.markdownToHTML) {{
    loadMathJax();
    document.getElementById("content").innerHTML = markdownToHTML(text, {{htmlTags: false}});
  }}
}});
</script>
</body>
</html>
"""


def render_html(text: str, out_path, title: str = "GOT-OCR2.0 output") -> Path:
    out_path = Path(out_path)
    # the original writes \\( \\) / \\[ \\] for formulas; mathpix-markdown understands both
    payload = json.dumps(text).replace("</", "<\\/")
    page = _TEMPLATE.format(title=html.escape(title), escaped=html.escape(text), payload=payload)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out_path.name + ".", dir=out_path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, out_path)
    return out_path
