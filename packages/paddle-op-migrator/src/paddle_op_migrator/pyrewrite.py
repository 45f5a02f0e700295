"""Rewrite legacy dygraph calls of a migrated op into calls of its generated PHI API.

``_legacy_C_ops.X(in1, in2, 'attr_a', va, 'attr_b', vb)`` passes the inputs positionally and
the attributes as name/value pairs; the PHI API ``_C_ops.X`` generated from the op's yaml entry
takes the inputs, then every attribute in yaml order. A call is rewritten only when that mapping is
certain: as many leading positional arguments as the op has inputs, only known attribute names,
and a default (from the OpMaker) for every attribute the call leaves out. Anything else is left
as it is and reported.
"""

from __future__ import annotations

import re

from .cpp import split_args

_STR = re.compile(r"""^(['"])(\w+)\1$""")


def py_default(cpp_default: str) -> str | None:
    """The Python literal of an OpMaker ``SetDefault(...)`` value, or None when unsure."""
    d = cpp_default.strip()
    if d in ("true", "false"):
        return d.capitalize()
    if re.fullmatch(r"-?\d+", d):
        return d
    m = re.fullmatch(r"(-?\d*\.?\d+(?:[eE][-+]?\d+)?)[fF]?", d)
    if m:
        return m.group(1) if "." in m.group(1) or "e" in m.group(1).lower() else m.group(1) + ".0"
    if re.fullmatch(r'"[^"\\]*"', d):
        return d
    if re.fullmatch(r"std::string\(\s*\)", d):
        return '""'
    if re.fullmatch(r"std::vector<[\w:]+>\s*(\(\s*\)|\{\s*\})|\{\s*\}", d):
        return "[]"
    m = re.fullmatch(r"std::vector<[\w:]+>\s*\{(.*)\}|\{(.*)\}", d)
    if m:
        items = [py_default(x) for x in (m.group(1) or m.group(2) or "").split(",")]
        return None if None in items else "[" + ", ".join(items) + "]"
    return None


def rewrite_legacy_calls(text: str, op: str, inputs: list[str], attrs: list[tuple[str, str]]
                         ) -> tuple[str, list[tuple[int, str]]]:
    """``attrs``: (fluid name, C++ default or "") in yaml order. Returns the new text and, for
    each call left alone, (1-based line, reason)."""
    out, pos, left = [], 0, []
    call = re.compile(r"\b_legacy_C_ops\." + re.escape(op) + r"\s*\(")
    for m in call.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        got = split_args(text, m.end() - 1)
        if got is None:
            left.append((line, "unbalanced call"))
            continue
        args, end = got
        first_name = next((i for i, a in enumerate(args) if _STR.match(a) and i >= len(inputs)), len(args))
        given, rest = args[:first_name], args[first_name:]
        if len(given) != len(inputs) or len(rest) % 2:
            left.append((line, f"{len(given)} positional arguments for {len(inputs)} inputs "
                               "(outputs passed in, or attributes not as name/value pairs)"))
            continue
        values = {}
        for k in range(0, len(rest), 2):
            nm = _STR.match(rest[k])
            if not nm:
                break
            values[nm.group(2)] = rest[k + 1]
        known = {a for a, _ in attrs}
        unknown = sorted(set(values) - known)
        if unknown or len(values) * 2 != len(rest):
            left.append((line, f"attributes not in the OpMaker: {', '.join(unknown) or 'unparsed pairs'}"))
            continue
        new_args = list(given)
        for name, default in attrs:
            if name in values:
                new_args.append(values[name])
                continue
            py = py_default(default) if default else None
            if py is None:
                new_args = None
                left.append((line, f"attribute '{name}' not passed and its default is unknown"))
                break
            new_args.append(py)
        if new_args is None:
            continue
        bare = not text.endswith(".", 0, m.start())
        if bare and not _imports_c_ops(text) and not _LEGACY_IMPORT.search(text):
            left.append((line, "no 'from paddle import ... _legacy_C_ops' line to add _C_ops to"))
            continue
        out += [text[pos:m.start()], f"_C_ops.{op}(", ", ".join(new_args), ")"]
        pos = end
    if not out:
        return text, left
    text = "".join(out) + text[pos:]
    if re.search(r"(?<![\w.])_C_ops\.", text) and not _imports_c_ops(text):
        text = _LEGACY_IMPORT.sub(lambda mm: mm.group(0).replace("_legacy_C_ops", "_C_ops, _legacy_C_ops", 1),
                                  text, count=1)
    return text, left


_LEGACY_IMPORT = re.compile(r"^[ \t]*from paddle import [^\n]*\b_legacy_C_ops\b[^\n]*$", re.M)


def _imports_c_ops(text: str) -> bool:
    return bool(re.search(r"^[ \t]*from paddle import [^\n]*(?<!legacy)\b_C_ops\b", text, re.M))
