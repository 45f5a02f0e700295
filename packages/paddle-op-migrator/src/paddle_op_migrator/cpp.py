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
    m = re.compile(r"[ \t]*(\{[ \t\n]*\})?[ \t]*;?").match(text, i)
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
