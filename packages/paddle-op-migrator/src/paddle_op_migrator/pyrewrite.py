"""Rewrite legacy dygraph calls of a migrated op into calls of its generated PHI API.

``_legacy_C_ops.X(in1, in2, 'attr_a', va, 'attr_b', vb)`` passes the inputs positionally and
the attributes as name/value pairs; the PHI API ``_C_ops.X`` generated from the op's yaml entry
takes the inputs, then every attribute in yaml order. A call is rewritten only when that mapping is
certain: as many leading positional arguments as the op has inputs, only known attribute names,
and a default (from the OpMaker) for every attribute the call leaves out. Anything else is left
as it is and reported.
"""

from __future__ import annotations

import itertools
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


def rewrite_legacy_calls(
    text: str, op: str, inputs: list[str], attrs: list[tuple[str, str]], inplace: bool = False
) -> tuple[str, list[tuple[int, str]]]:
    """``attrs``: (fluid name, C++ default or "") in yaml order; ``inplace``: the yaml entry
    declares ``inplace`` (then ``_legacy_C_ops.X_`` becomes ``_C_ops.X_``). Returns the new text
    and, for each call left alone, (1-based line, reason)."""
    known = {a for a, _ in attrs}

    def map_args(args, line, left):
        first_name = next(
            (i for i, a in enumerate(args) if _STR.match(a) and i >= len(inputs)), len(args)
        )
        given, rest = args[:first_name], args[first_name:]
        if len(given) != len(inputs) or len(rest) % 2:
            left.append(
                (
                    line,
                    f"{len(given)} positional arguments for {len(inputs)} inputs "
                    "(outputs passed in, or attributes not as name/value pairs)",
                )
            )
            return None
        values = {}
        for k in range(0, len(rest), 2):
            nm = _STR.match(rest[k])
            if not nm:
                break
            values[nm.group(2)] = rest[k + 1]
        unknown = sorted(set(values) - known)
        if unknown or len(values) * 2 != len(rest):
            left.append(
                (line, f"attributes not in the OpMaker: {', '.join(unknown) or 'unparsed pairs'}")
            )
            return None
        new_args = list(given)
        for name, default in attrs:
            if name in values:
                new_args.append(values[name])
                continue
            py = py_default(default) if default else None
            if py is None:
                left.append((line, f"attribute '{name}' not passed and its default is unknown"))
                return None
            new_args.append(py)
        return new_args

    return _rewrite_calls(
        text, op, op, inplace, "inplace call, and the op declares no inplace", map_args
    )


def _rewrite_calls(
    text: str, old: str, new: str, inplace: bool, inplace_reason: str, map_args
) -> tuple[str, list[tuple[int, str]]]:
    """The loop both rewriters share: every ``_legacy_C_ops.<old>[_](...)`` call whose arguments
    ``map_args(args, line, left)`` can map (it returns the new argument list, or None after
    appending the reason to ``left``) becomes ``_C_ops.<new>[_](...)``; ``_C_ops`` is added to
    the file's ``from paddle import ... _legacy_C_ops`` line when a bare call needs it."""
    out, pos, left = [], 0, []
    call = re.compile(r"\b_legacy_C_ops\." + re.escape(old) + r"(_?)\s*\(")
    for m in call.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group(1) and not inplace:
            left.append((line, inplace_reason))
            continue
        got = split_args(text, m.end() - 1)
        if got is None:
            left.append((line, "unbalanced call"))
            continue
        args, end = got
        new_args = map_args(args, line, left)
        if new_args is None:
            continue
        bare = not text.endswith(".", 0, m.start())
        if bare and not _imports_c_ops(text) and not _LEGACY_IMPORT.search(text):
            left.append((line, "no 'from paddle import ... _legacy_C_ops' line to add _C_ops to"))
            continue
        out += [text[pos : m.start()], f"_C_ops.{new}{m.group(1)}(", ", ".join(new_args), ")"]
        pos = end
    if not out:
        return text, left
    text = "".join(out) + text[pos:]
    if re.search(r"(?<![\w.])_C_ops\.", text) and not _imports_c_ops(text):
        text = _LEGACY_IMPORT.sub(
            lambda mm: mm.group(0).replace("_legacy_C_ops", "_C_ops, _legacy_C_ops", 1),
            text,
            count=1,
        )
    return text, left


_LEGACY_IMPORT = re.compile(r"^[ \t]*from paddle import [^\n]*\b_legacy_C_ops\b[^\n]*$", re.M)


def _imports_c_ops(text: str) -> bool:
    return bool(re.search(r"^[ \t]*from paddle import [^\n]*(?<!legacy)\b_C_ops\b", text, re.M))


# --- static-graph callers of a collective op -> its new-comm PHI op ---------------------------

REDUCE_TYPES = {"sum": 0, "max": 1, "min": 2, "prod": 3, "avg": 4}  # phi::ReduceType order
_OP_BUILDERS = ("append_op", "_insert_op", "_insert_op_without_sync", "insert_op")


def yaml_signature(block: str) -> tuple[list[str], list[str], list[str]]:
    """(tensor inputs, outputs, attributes) of a yaml op entry's ``args``/``output`` lines."""
    am = re.search(r"^\s*args\s*:\s*\((.*)\)\s*$", block, re.M)
    om = re.search(r"^\s*output\s*:\s*(.*)$", block, re.M)
    ins, attrs = [], []
    for part in am.group(1).split(",") if am else []:
        bits = part.split("=")[0].split()
        if len(bits) >= 2:
            (ins if bits[0].startswith("Tensor") else attrs).append(bits[-1])
    outs = re.findall(r"Tensor(?:\[\])?\s*\((\w+)\)", om.group(1)) if om else []
    return ins, outs, attrs


def rewrite_comm_callers(
    text: str, old: str, new: str, new_sig: tuple[list[str], list[str], list[str]]
) -> tuple[str, list[tuple[int, str]]]:
    """``block.append_op(type='c_allreduce_sum', inputs={'X': v}, outputs={'Out': v},
    attrs={'ring_id': r, 'use_calc_stream': True, OP_ROLE_KEY: role})`` ->
    ``block.append_op(type='all_reduce', inputs={'x': v}, outputs={'out': v},
    attrs={'ring_id': r, 'reduce_type': 0, OP_ROLE_KEY: role})``.

    Input and output slots map by position (the counts must match); string-keyed attributes the
    new op does not declare are dropped, other keys (``OP_ROLE_KEY``) kept; ``reduce_type`` comes
    from the old name's suffix (``_sum`` -> 0, phi::ReduceType). Calls that do not fit (slot counts,
    a ``**kwargs`` dict, an attribute the new op needs and the call lacks) are left and reported."""
    import ast

    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return text, [(exc.lineno or 1, f"not parseable Python: {exc.msg}")]
    ins, outs, attrs = new_sig
    suffix = old.rsplit("_", 1)[-1]
    starts = [0]
    for ln in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(ln))

    def off(node, end=False):
        return starts[(node.end_lineno if end else node.lineno) - 1] + (
            node.end_col_offset if end else node.col_offset
        )

    edits, left = [], []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _OP_BUILDERS
        ):
            continue
        kw = {k.arg: k.value for k in node.keywords}
        t = kw.get("type")
        if not (isinstance(t, ast.Constant) and t.value == old):
            continue
        line = node.lineno
        new_kw = {}
        for slot, names in (("inputs", ins), ("outputs", outs)):
            d = kw.get(slot)
            if d is None:
                continue
            if not isinstance(d, ast.Dict) or len(d.keys) != len(names) or None in d.keys:
                new_kw = None
                left.append((line, f"{slot} do not map one to one onto {new}'s {names}"))
                break
            new_kw[slot] = (
                "{"
                + ", ".join(
                    f"'{n}': {ast.get_source_segment(text, v)}" for n, v in zip(names, d.values)
                )
                + "}"
            )
        if new_kw is None:
            continue
        a = kw.get("attrs")
        items = []
        if a is not None:
            if not isinstance(a, ast.Dict) or None in a.keys:
                left.append((line, "attrs is not a dict literal"))
                continue
            for k, v in zip(a.keys, a.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    if k.value in attrs:
                        items.append(f"'{k.value}': {ast.get_source_segment(text, v)}")
                else:  # OP_ROLE_KEY and other framework attributes
                    items.append(
                        f"{ast.get_source_segment(text, k)}: {ast.get_source_segment(text, v)}"
                    )
        if "reduce_type" in attrs:
            if suffix not in REDUCE_TYPES:
                left.append((line, f"{new} needs reduce_type and '{old}' names no reduction"))
                continue
            items.insert(1 if items else 0, f"'reduce_type': {REDUCE_TYPES[suffix]}")
        new_kw["attrs"] = "{" + ", ".join(items) + "}"
        edits.append((off(t), off(t, True), f"'{new}'"))
        for slot in ("inputs", "outputs", "attrs"):
            if slot in new_kw and slot in kw:
                edits.append((off(kw[slot]), off(kw[slot], True), new_kw[slot]))
        if "attrs" not in kw and items:  # the call had no attrs=: add one before its ")"
            end = off(node, True) - 1
            before = text[:end].rstrip()
            edits.append(
                (end, end, (" " if before.endswith(",") else ", ") + "attrs=" + new_kw["attrs"])
            )
    for s, e, rep in sorted(edits, reverse=True):
        text = text[:s] + rep + text[e:]
    return text, left


def yaml_defaults(block: str) -> dict[str, str]:
    """``{attr: default}`` of a yaml entry's ``args`` (``int ring_id = 0`` -> ``{"ring_id": "0"}``)."""
    am = re.search(r"^\s*args\s*:\s*\((.*)\)\s*$", block, re.M)
    out = {}
    for part in am.group(1).split(",") if am else []:
        if "=" in part:
            left, right = part.split("=", 1)
            out[left.split()[-1]] = right.strip()
    return out


def rewrite_legacy_comm_calls(
    text: str, old: str, new: str, new_sig, defaults: dict[str, str], inplace: bool
) -> tuple[str, list[tuple[int, str]]]:
    """Dygraph callers of a collective op -> the new-comm API: ``_legacy_C_ops.c_allreduce_sum_(
    t, 'use_calc_stream', True, 'ring_id', r)`` -> ``_C_ops.all_reduce_(t, r, 0)``: inputs by
    position, the new op's attributes by name (yaml defaults for the missing ones), ``reduce_type``
    from the old name's suffix, attributes the new op does not declare dropped. The inplace form
    (``x_``) is kept only when the new op declares ``inplace``."""
    ins, _outs, attrs = new_sig
    suffix = old.rsplit("_", 1)[-1]

    def map_args(args, line, left):
        given = list(itertools.takewhile(lambda a: not _STR.match(a), args))
        rest = args[len(given) :]
        if (
            len(given) != len(ins)
            or len(rest) % 2
            or not all(_STR.match(rest[k]) for k in range(0, len(rest), 2))
        ):
            left.append((line, f"arguments do not map onto {new}({', '.join(ins + attrs)})"))
            return None
        values = {_STR.match(rest[k]).group(2): rest[k + 1] for k in range(0, len(rest), 2)}
        new_args = list(given)
        for a in attrs:
            if a == "reduce_type" and a not in values:
                if suffix not in REDUCE_TYPES:
                    left.append((line, f"{new} needs reduce_type and '{old}' names no reduction"))
                    return None
                new_args.append(str(REDUCE_TYPES[suffix]))
            elif a in values:
                new_args.append(values[a])
            elif a in defaults and py_default(defaults[a]) is not None:
                new_args.append(py_default(defaults[a]))
            else:
                left.append((line, f"attribute '{a}' of {new} not passed and has no default"))
                return None
        return new_args

    return _rewrite_calls(
        text, old, new, inplace, f"inplace call, and {new} declares no inplace", map_args
    )
