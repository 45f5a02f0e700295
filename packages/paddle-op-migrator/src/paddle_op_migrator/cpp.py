"""Small C++ source helpers shared by the scanner, the patcher and the generator."""

from __future__ import annotations

import re

_PP_RE = re.compile(r"^[ \t]*#[ \t]*(ifdef|ifndef|if|elif|else|endif)\b(.*)$", re.M)


def statement_end(text: str, start: int) -> int:
    """Offset just past the macro statement that starts at ``start``.

    Balances parentheses from the first ``(`` (skipping string and char literals and
    comments), then swallows an optional ``{}`` body and ``;``. Works across lines and across
    preprocessor lines inside the argument list.
    """
    i = text.find("(", start)
    if i < 0:
        return len(text)
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                i += 1
                break
        elif c in "\"'":
            i = _skip_literal(text, i)
            continue
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        i += 1
    m = re.compile(r"[ \t]*\{").match(text, i)
    if m:  # the registration's body: {} or { kernel->InputAt(0)...; } (balanced braces)
        depth, j = 0, m.end() - 1
        while j < n:
            c = text[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    i = j + 1
                    break
            elif c in "\"'":
                j = _skip_literal(text, j)
                continue
            elif c == "/" and text.startswith("//", j):
                k = text.find("\n", j)
                j = n if k < 0 else k
                continue
            j += 1
    m = re.compile(r"[ \t]*;?").match(text, i)
    return m.end() if m else i


def _skip_literal(text: str, i: int) -> int:
    if text[i] == '"' and text[i - 1] == "R" and text.startswith('"', i):
        # raw string R"delim( ... )delim"
        j = text.find("(", i)
        delim = text[i + 1 : j]
        k = text.find(")" + delim + '"', j)
        return len(text) if k < 0 else k + len(delim) + 2
    q = text[i]
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == q or text[j] == "\n":
            return j + 1
        j += 1
    return j


def line_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def conditions_at(text: str, lines: list[int]) -> dict[int, list[str]]:
    """Active ``#if``/``#ifdef`` conditions at each of the 1-based ``lines``."""
    events = []
    for m in _PP_RE.finditer(text):
        events.append((text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2).strip()))
    result: dict[int, list[str]] = {}
    for line in lines:
        stack: list[str] = []
        for ev_line, kind, cond in events:
            if ev_line >= line:
                break
            if kind in ("if", "ifdef", "ifndef"):
                prefix = {"if": "", "ifdef": "defined ", "ifndef": "!defined "}[kind]
                stack.append(prefix + cond)
            elif kind in ("elif", "else") and stack:
                stack[-1] = ("!(" + stack[-1] + ")") + (" && " + cond if cond else "")
            elif kind == "endif" and stack:
                stack.pop()
        result[line] = [c for c in stack if not c.startswith("defined PADDLE_FLUID_")]
    return result


def camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_") if p)


def snake_from_op_class(cls: str) -> str:
    """``CAllreduceSumOp`` -> ``c_allreduce_sum`` (PIR dialect class naming)."""
    s = cls[:-2] if cls.endswith("Op") else cls
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", s)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return s.lower()


# --- file-local macro expansion ------------------------------------------------------------------

_DEFINE_RE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)((?:[^\n]*\\\n)*[^\n]*)", re.M)
_PASTE_RE = re.compile(r"[ \t]*##[ \t]*")


def local_macros(text: str) -> dict[str, tuple[list[str], str]]:
    """Function-like macros ``#define NAME(a, b) body`` defined in ``text`` (continuations joined)."""
    out = {}
    for m in _DEFINE_RE.finditer(text):
        params = [p.strip() for p in m.group(2).split(",") if p.strip()]
        body = re.sub(r"\\\n", "\n", m.group(3)).strip()
        out[m.group(1)] = (params, body)
    return out


def split_args(text: str, open_pos: int) -> tuple[list[str], int] | None:
    """Arguments of the call whose ``(`` is at ``open_pos`` (commas inside parens protected)."""
    depth, args, cur, i = 0, [], open_pos + 1, open_pos
    while i < len(text):
        c = text[i]
        if c in "\"'":
            i = _skip_literal(text, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(text[cur:i].strip())
                return ([] if args == [""] else args), i + 1
        elif c == "," and depth == 1:
            args.append(text[cur:i].strip())
            cur = i + 1
        i += 1
    return None


def _substitute(params: list[str], body: str, args: list[str]) -> str:
    named = dict(zip(params, args))
    if params and params[-1] == "...":
        named.pop("...", None)
        named["__VA_ARGS__"] = ", ".join(args[len(params) - 1 :])

    def one(m: re.Match) -> str:
        if m.group(1) is not None:  # a string literal of the body: left alone
            return m.group(1)
        if m.group(2) is not None:  # #param: stringize
            if m.group(2) not in named:
                return m.group(0)
            return '"' + named[m.group(2)].replace("\\", "\\\\").replace('"', '\\"') + '"'
        return named.get(m.group(3), m.group(3))

    out = re.sub(r'("(?:[^"\\\n]|\\.)*")|(?<!#)#[ \t]*(\w+)|\b(\w+)\b', one, body)
    return _PASTE_RE.sub("", out)


def expand_local_macros(text: str, max_depth: int = 4, defs: str = "") -> tuple[str, list[str]]:
    """Expand the function-like macros defined in ``text`` itself, or in ``defs`` (the text of
    the local headers it includes), with ``##`` pasting, ``#`` stringizing and ``__VA_ARGS__``,
    as the preprocessor would for those names only.

    Returns the expanded text (the ``#define`` lines removed) and the names expanded. Macros
    from other files are left as they are.
    """
    macros = {**local_macros(defs), **local_macros(text)}
    if not macros:
        return text, []
    text = _DEFINE_RE.sub("", text)
    call_re = re.compile(r"\b(" + "|".join(map(re.escape, macros)) + r")[ \t]*\(")
    used: list[str] = []
    for _ in range(max_depth):
        pieces, pos, changed = [], 0, False
        for m in call_re.finditer(text):
            if m.start() < pos:
                continue
            got = split_args(text, m.end() - 1)
            if got is None:
                continue
            args, end = got
            params, body = macros[m.group(1)]
            if len(args) != len(params) and not (params and params[-1] == "..."):
                continue
            pieces += [text[pos : m.start()], _substitute(params, body, args)]
            pos, changed = end, True
            used.append(m.group(1))
        if not changed:
            break
        text = "".join(pieces) + text[pos:]
    return text, sorted(set(used))


def strip_comments(text: str) -> str:
    """``text`` without ``//`` and ``/* */`` comments (string and char literals respected); a
    removed block comment keeps its newlines so line structure survives."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = _skip_literal(text, i)
            out.append(text[i:j])
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        else:
            j = i
            while j < n and text[j] not in "\"'/":
                j += 1
            if j == i:
                j += 1
            out.append(text[i:j])
            i = j
    return "".join(out)


_VENDOR_MACROS = re.compile(
    r"PADDLE_WITH_(?:HCCL|ECCL|CNCL|BKCL|XPU\w*|ASCEND\w*|NPU|MLU|IPU|GCU|CUSTOM_DEVICE)"
)


def drop_vendor_branches(text: str) -> str:
    """``text`` without the ``#if``/``#ifdef`` branches that only a vendor build compiles
    (``#if defined(PADDLE_WITH_HCCL)``: an attribute for one device, not part of the op's
    signature); their ``#else`` branches and every other line stay."""
    out, stack = [], []  # stack of (vendor_only_if, in_else)
    for line in text.splitlines(keepends=True):
        m = re.match(r"[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b(.*)", line)
        if m:
            kw, cond = m.group(1), m.group(2)
            if kw in ("if", "ifdef"):
                stack.append([bool(_VENDOR_MACROS.search(cond)) and "!" not in cond, False])
            elif kw == "ifndef":
                stack.append([False, False])
            elif kw in ("else", "elif") and stack:
                stack[-1][1] = True
            elif kw == "endif" and stack:
                stack.pop()
            continue
        if any(vendor and not in_else for vendor, in_else in stack):
            continue
        out.append(line)
    return "".join(out)
