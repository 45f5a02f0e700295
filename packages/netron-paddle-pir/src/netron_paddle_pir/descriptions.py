"""Generate op documentation for Netron from Paddle's own docstrings.

For every op of the signature table (``web/pir-signatures.json``, which Paddle's op yaml
gives), the public Python API function of the same name (``paddle.<op>``,
``paddle.nn.functional.<op>``, ``paddle.linalg.<op>`` ...; an in-place ``op_`` uses ``op``)
supplies the description (the docstring's text before its first section), and its
``Args:`` entries describe the op's operands and attributes of the same name; ``Returns:``
describes the first result. The result ships as ``web/pir-metadata.json``, in the shape of
Netron's ``*-metadata.json`` files, tagged with the Paddle version.

    python -m netron_paddle_pir.descriptions [--output PATH]

Needs Paddle (>= 3.0).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from pathlib import Path

from ._paddle import require_paddle

WEB = Path(__file__).parent / "web"
DEFAULT_OUTPUT = WEB / "pir-metadata.json"
SIGNATURES = WEB / "pir-signatures.json"

# Where Paddle's public API functions live, searched in this order.
MODULES = [
    "paddle",
    "paddle.nn.functional",
    "paddle.linalg",
    "paddle.fft",
    "paddle.signal",
    "paddle.vision.ops",
    "paddle.geometric",
    "paddle.tensor",
    "paddle.incubate.nn.functional",
    "paddle.incubate",
    "paddle.sparse",
    "paddle.text",
]
SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Returns|Return|Examples|Example|Note|Notes|Raises|Shape"
    r"|Attributes|Warning)\s*:?\s*$"
)
MAX_DESCRIPTION = 700


def clean(text: str) -> str:
    """Docstring text without reStructuredText markup, whitespace collapsed."""
    text = re.sub(r":ref:`([^`<]*?)\s*<[^>]*>`", r"\1", text)  # :ref:`text <target>`
    text = re.sub(r":\w+:`([^`]*)`", r"\1", text)  # :math:`x`, :attr:`y`
    text = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", text)  # `text <url>`_
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def summary(doc: str) -> str:
    """The paragraphs before the first section or directive, at most MAX_DESCRIPTION chars."""
    paragraphs, current = [], []
    for line in doc.splitlines():
        if SECTION.match(line) or line.strip().startswith(".."):
            break
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    text = ""
    for paragraph in paragraphs:
        candidate = clean(f"{text} {paragraph}")
        if text and len(candidate) > MAX_DESCRIPTION:
            break
        text = candidate
    return text[:MAX_DESCRIPTION]


def sections(doc: str) -> tuple[dict[str, str], str]:
    """``Args:`` entries (name -> text) and the ``Returns:`` text of a Google-style docstring."""
    args: dict[str, str] = {}
    returns: list[str] = []
    mode, current, indent = None, None, None
    for line in doc.splitlines():
        match = SECTION.match(line)
        if match:
            word = match.group(1)
            mode = (
                "args"
                if word in ("Args", "Arguments", "Parameters")
                else ("returns" if word in ("Returns", "Return") else None)
            )
            current, indent = None, None
            continue
        if mode == "args":
            entry = re.match(r"^(\s+)(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$", line)
            if entry and (indent is None or len(entry.group(1)) <= indent):
                indent = len(entry.group(1))
                current = entry.group(2).lstrip("*")
                args[current] = entry.group(4)
            elif current and line.strip():
                args[current] += " " + line.strip()
        elif mode == "returns" and line.strip():
            returns.append(line.strip())
    return {k: clean(v) for k, v in args.items() if clean(v)}, clean(" ".join(returns))


def api_function(paddle, op: str):
    """The public function documenting ``op``, or None."""
    import importlib

    names = [op]
    if op.endswith("_") and not op.endswith("__"):
        names.append(op[:-1])
    for name in names:
        for module_name in MODULES:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            function = getattr(module, name, None)
            doc = inspect.getdoc(function) if callable(function) else None
            if doc and len(doc) > 40 and not doc.startswith(("C++ interface", "Built-in")):
                return f"{module_name}.{name}", doc
    return None, None


def generate(paddle=None) -> dict:
    paddle = paddle or require_paddle()
    table = json.loads(SIGNATURES.read_text(encoding="utf-8"))["ops"]
    ops = []
    for op, signature in sorted(table.items()):
        source, doc = api_function(paddle, op)
        if doc is None:
            continue
        args, returns = sections(doc)
        entry = {"name": op, "source": source, "description": summary(doc)}
        for key in ("inputs", "attributes"):
            items = []
            for name in signature.get(key, []):
                item = {"name": name}
                if name in args:
                    item["description"] = args[name]
                items.append(item)
            if items:
                entry[key] = items
        outputs = [{"name": name} for name in signature.get("outputs", [])]
        if outputs and returns:
            outputs[0]["description"] = returns
        if outputs:
            entry["outputs"] = outputs
        if entry["description"]:
            ops.append(entry)
    return {
        "generator": "netron_paddle_pir.descriptions",
        "paddle_version": paddle.__version__,
        "ops": ops,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m netron_paddle_pir.descriptions", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT.name}"
    )
    args = parser.parse_args(argv)
    try:
        result = generate()
    except ImportError as exc:  # no Paddle, or one older than 3.0: say so in one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.output.write_text(json.dumps(result, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(result['ops'])} op descriptions -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
