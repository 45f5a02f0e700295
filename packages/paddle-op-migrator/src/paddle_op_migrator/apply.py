"""Turn verdicts into edits of the tree: a unified diff ``git apply`` takes, or ``--write``.

Every edit is recomputed from a fresh scan of the tree, so a second ``apply`` finds nothing
left to do and changes nothing.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import codegen, pyrewrite
from .cpp import expand_local_macros, statement_end
from .errors import MigratorError
from .scanner import (
    FUNCTION_KERNEL_MACROS,
    REGISTRATION_MACROS,
    Index,
    _belongs,
    build_index,
)

APPLIED_VERDICTS = ("DELETE", "MIGRATE", "MIGRATE_LEGACY")
YAML = "paddle/phi/ops/yaml"


@dataclass
class Result:
    patch: str = ""
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    human: list[str] = field(default_factory=list)
    files_by_op: dict[str, list[str]] = field(
        default_factory=dict
    )  # the files each op's edits touch


class Tree:
    """Copy-on-write view of the files an apply touches."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.orig: dict[str, str | None] = {}
        self.new: dict[str, str | None] = {}
        self.op = ""  # the op whose edits are being made
        self.touched: dict[str, set[str]] = {}

    def read(self, rel: str) -> str | None:
        if rel in self.new:
            return self.new[rel]
        if rel not in self.orig:
            p = self.root / rel
            if p.exists() and not p.is_file():  # a FIFO would block the read forever
                raise MigratorError(
                    f"{p}: is not a regular file (FIFO, device, socket or folder); "
                    "apply edits regular files only"
                )
            try:
                self.orig[rel] = p.read_text(encoding="utf-8") if p.exists() else None
            except (OSError, UnicodeDecodeError) as exc:
                raise MigratorError(f"{p}: cannot read for editing: {exc}") from exc
        return self.orig[rel]

    def write(self, rel: str, text: str | None) -> None:
        if self.read(rel) != text:
            self.touched.setdefault(self.op, set()).add(rel)
        self.new[rel] = text

    def changes(self) -> list[tuple[str, str | None, str | None]]:
        return [
            (r, self.orig.get(r), t) for r, t in sorted(self.new.items()) if self.orig.get(r) != t
        ]


def _lines(text: str | None) -> list[str]:
    if not text:
        return []
    lines = text.splitlines(keepends=True)
    if not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def git_diff(changes) -> str:
    out = []
    for rel, old, new in changes:
        out.append(f"diff --git a/{rel} b/{rel}\n")
        if old is None:
            out.append("new file mode 100644\n")
        elif new is None:
            out.append("deleted file mode 100644\n")
        a = "/dev/null" if old is None else f"a/{rel}"
        b = "/dev/null" if new is None else f"b/{rel}"
        out.extend(difflib.unified_diff(_lines(old), _lines(new), a, b, n=3))
    return "".join(out)


# --- edits ------------------------------------------------------------------------------------


def _remove_spans(text: str, regs: list[tuple[str, str]]) -> str:
    """Remove the registration statements ``MACRO(name, ...)`` (found in the current text)."""
    spans = []
    for macro, name in set(regs):
        rx = re.compile(r"^[ \t]*" + macro + r"[ \t]*\([ \t\n]*" + re.escape(name) + r"\b", re.M)
        for m in rx.finditer(text):
            end = statement_end(text, m.start())
            if end < len(text) and text[end] == "\n":
                end += 1
            spans.append((m.start(), end))
    for s, e in sorted(spans, reverse=True):
        text = text[:s] + text[e:]
    # drop preprocessor blocks left empty
    prev = None
    while prev != text:
        prev = text
        text = re.sub(
            r"^[ \t]*#[ \t]*if[^\n]*\n(?:[ \t]*\n)*[ \t]*#[ \t]*endif[^\n]*\n", "", text, flags=re.M
        )
    return re.sub(r"\n{3,}", "\n\n", text)


def _remove_yaml_entries(text: str, names: set[str], fluid_side: bool) -> str:
    blocks = re.split(r"(?m)^(?=- )", text)
    keep = []
    for b in blocks:
        m = re.match(
            r"-[ \t]*(?:op|backward_op)[ \t]*:[ \t]*(\w+)(?:[ \t]*\([ \t]*(\w+)[ \t]*\))?", b
        )
        if m:
            name = (m.group(2) or m.group(1)) if fluid_side else m.group(1)
            if name in names:
                continue
        keep.append(b)
    return "".join(keep)


def _backward_yaml(ops_yaml: str) -> str:
    """``ops.yaml`` -> ``backward.yaml``, ``static_ops.yaml`` -> ``static_backward.yaml``, ..."""
    head, name = ops_yaml.rsplit("/", 1)
    return f"{head}/{name.replace('ops.yaml', 'backward.yaml')}"


def _append_yaml(tree: Tree, rel: str, entry: str, name: str) -> None:
    text = tree.read(rel) or ""
    if re.search(r"(?m)^-[ \t]*op[ \t]*:[ \t]*" + re.escape(name) + r"\b", text):
        return
    sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    tree.write(rel, text + sep + entry)


def _append_cpp(tree: Tree, rel: str, block: str, fn: str, header: str) -> None:
    text = tree.read(rel)
    if text is None:
        text = header
    if f"begin {fn}\n" in text:
        return
    close = text.rfind("}  // namespace phi")
    if close < 0:
        text = (
            text
            + ("" if text.endswith("\n") else "\n")
            + "namespace phi {\n\n}  // namespace phi\n"
        )
        close = text.rfind("}  // namespace phi")
    tree.write(rel, text[:close] + block + "\n" + text[close:])


def _sites(idx: Index, names: set[str]):
    alias = getattr(idx, "phi_alias", {})
    for n in sorted(names):
        for s in idx.sites.get(n, []):
            if _belongs(s, n, alias):  # not a PHI op that merely shares the name
                yield s


def _delete(
    tree: Tree, idx: Index, op: str, names: set[str], res: Result, deleting: frozenset = frozenset()
) -> None:
    """``deleting``: the names of every op this apply deletes (a file whose registrations all
    go, across ops, goes as a whole)."""
    regs = [s for s in _sites(idx, names) if s.area == "fluid_op" and s.kind in REGISTRATION_MACROS]
    by_file: dict[str, list] = {}
    for s in regs:
        by_file.setdefault(s.path, []).append(s)
    deleted_files = []
    for path, sites in by_file.items():
        others = [
            s
            for n, ss in idx.sites.items()
            if n not in names and n not in deleting
            for s in ss
            if s.path == path and s.kind in REGISTRATION_MACROS
        ]
        if not others:
            tree.write(path, None)
            deleted_files.append(path)
        else:
            tree.write(
                path,
                _remove_spans(tree.read(path) or "", [(s.macro or s.kind, s.name) for s in sites]),
            )
    # the op's own headers go with it when only deleted files include them
    gone = set(deleted_files)
    for path in list(deleted_files):
        stem = path.split(".")[0]
        for hdr in (stem + ".h", stem + ".cu.h"):
            if tree.read(hdr) is None:
                continue
            users = [u for u in idx.includes.get(hdr, []) if u.rsplit(":", 1)[0] not in gone]
            if users:
                res.human.append(f"{hdr}: kept, still included by {', '.join(users[:3])}")
            else:
                tree.write(hdr, None)
                deleted_files.append(hdr)
    stems = {Path(p).name.split(".")[0] for p in deleted_files}
    # CMake: lines naming a deleted source, tokens naming a deleted target
    for cm in sorted(
        {c for c, _, _ in idx.cmake_sources}
        | {s.path for s in _sites(idx, names) if s.kind == "cmake"}
    ):
        text = tree.read(cm)
        if text is None:
            continue
        out = []
        for line in text.splitlines(keepends=True):
            src_re = [
                re.compile(r"(?<![\w./-])" + re.escape(st) + r"\.(?:cc|cu|cu\.cc|kps)\b")
                for st in stems
            ]
            if any(rx.search(line) for rx in src_re):
                if line.count("(") == line.count(")"):
                    continue
                rest = line
                for rx in src_re:
                    rest = rx.sub("", rest)
                if rest.strip() == ")" and out:  # the list's last source: its ")" goes up a line
                    out[-1] = out[-1].rstrip("\n") + ")\n"
                    continue
                line = rest
            stripped = line.strip()
            if stripped in stems:
                continue
            for st in stems:
                line = re.sub(r"(?<![\w.])" + re.escape(st) + r"(?![\w.])\s?", "", line)
            out.append(line)
        tree.write(cm, "".join(out))
    # yaml of the fluid op (op_compat, op_version, legacy/static yaml), and the PIR definitions
    # of the same name (ops/static_ops/fused yaml and their backward entries): their kernel is gone
    for s in _sites(idx, names):
        if s.kind in ("op_compat", "op_version", "yaml_legacy"):
            tree.write(
                s.path, _remove_yaml_entries(tree.read(s.path) or "", names, fluid_side=True)
            )
        elif s.kind in ("yaml_ops", "yaml_static", "yaml_fused") and s.name in names:
            text = tree.read(s.path) or ""
            bwd = set(
                re.findall(
                    r"(?m)^-[ \t]*op[ \t]*:[ \t]*"
                    + re.escape(s.name)
                    + r"\b[^\n]*\n(?:[ \t]+[^\n]*\n)*?[ \t]+backward[ \t]*:[ \t]*(\w+)",
                    text,
                )
            )
            tree.write(s.path, _remove_yaml_entries(text, {s.name}, fluid_side=False))
            if bwd:
                btext_path = _backward_yaml(s.path)
                btext = tree.read(btext_path)
                if btext is not None:
                    tree.write(btext_path, _remove_yaml_entries(btext, bwd, fluid_side=False))
    # PIR LegacyOpList, USE_OP*/PD_DECLARE_KERNEL in tests
    phi_kernels = {
        n
        for n in names
        if any(
            x.area == "phi_kernel" and x.kind in FUNCTION_KERNEL_MACROS
            for x in idx.sites.get(n, [])
        )
    }
    for s in _sites(idx, names):
        drop = None
        if s.kind == "pir_op_class":
            drop = re.compile(r"^[ \t]*" + s.arg2 + r"::name\(\),?[ \t]*\n", re.M)
        elif s.kind in ("USE_OP_ITSELF", "USE_OP", "USE_OP_DEVICE_KERNEL", "USE_NO_KERNEL_OP") or (
            s.kind == "PD_DECLARE_KERNEL" and s.name not in phi_kernels
        ):
            drop = re.compile(r"^[ \t]*" + s.kind + r"\(\s*" + s.name + r"\b[^\n]*\n", re.M)
        if drop is not None:
            text = tree.read(s.path)
            if text is not None:
                text2 = drop.sub("", text)
                if s.kind == "pir_op_class":
                    text2 = re.sub(r"[ \t]*" + s.arg2 + r"::name\(\)\s*\}", "}", text2)
                tree.write(s.path, text2)
    for s in _sites(idx, names):
        if s.area in ("py_api", "py_test", "py_other") and s.kind not in ("py_string", "py_table"):
            res.human.append(f"{s.path}:{s.line}: {s.kind} of deleted op '{s.name}'")


def _replace_callers(tree: Tree, idx: Index, d: dict, names: set[str], res: Result) -> None:
    """Static-graph ``append_op(type='c_X')`` callers -> the new-comm op (``pyrewrite``); every
    other caller is listed. A later scan finds no caller left and plans DELETE."""
    op, new = d["op"], d.get("replacement")
    y = next(
        (
            y
            for y in idx.yaml_ops
            if y.name == new and not y.path.endswith(("op_compat.yaml", "op_version.yaml"))
        ),
        None,
    )
    sig, block = None, ""
    if y is not None:
        lines = (tree.read(y.path) or "").splitlines()[y.line - 1 :]
        block = (
            "\n".join(
                [lines[0]]
                + list(itertools.takewhile(lambda ln: not ln.startswith("- "), lines[1:]))
            )
            if lines
            else ""
        )
        sig = pyrewrite.yaml_signature(block)
    done: set[tuple[str, str]] = set()
    for s in _sites(idx, names):
        kind = {"append_op": "static", "legacy_c_ops": "dygraph"}.get(s.kind)
        if (
            s.area not in ("py_api", "py_other")
            or kind is None
            or s.name != op
            or sig is None
            or (s.path, kind) in done
        ):
            continue
        done.add((s.path, kind))
        text = tree.read(s.path) or ""
        if kind == "static":
            new_text, left = pyrewrite.rewrite_comm_callers(text, op, new, sig)
            what = f"append_op(type='{op}')"
        else:
            new_text, left = pyrewrite.rewrite_legacy_comm_calls(
                text, op, new, sig, pyrewrite.yaml_defaults(block), "inplace" in block
            )
            what = f"_legacy_C_ops.{op}"
        if new_text != text:
            tree.write(s.path, new_text)
        for line, why in left:
            res.human.append(f"{s.path}:{line}: {what} not switched to '{new}': {why}")
    done_paths = {p for p, _ in done}
    for s in _sites(idx, names):
        if (
            s.area in ("py_api", "py_other", "framework", "pir", "cpp_other", "inference", "trt")
            and s.path not in done_paths
            and s.kind not in ("py_string", "py_table", "pir_op_class")
        ):
            res.human.append(
                f"{s.where}: switch this caller of '{op}' to '{new}' by hand, then apply DELETE"
            )


def _backend(site) -> str:
    by_macro = {
        "REGISTER_OP_CPU_KERNEL": "CPU",
        "REGISTER_OP_CUDA_KERNEL": "GPU",
        "REGISTER_OP_XPU_KERNEL": "XPU",
        "REGISTER_OP_IPU_KERNEL": "IPU",
        "REGISTER_OP_CUSTOM_DEVICE_KERNEL": "Custom",
    }
    if site.kind in by_macro:
        return by_macro[site.kind]
    if site.kind == "PD_REGISTER_STRUCT_KERNEL":
        return site.arg2 or "?"
    if site.kind == "REGISTER_OP_KERNEL":
        return site.arg2 or "?"  # MKLDNN/OneDNN
    return site.macro or site.kind


def _local_headers(tree: Tree, text: str) -> str:
    """Text of the fluid headers ``text`` includes (kernel classes often live in ``<op>_op.h``)."""
    out = []
    for rel in dict.fromkeys(
        re.findall(r'#include\s*"(paddle/fluid/operators/[^"]+\.(?:h|cu\.h))"', text)
    ):
        out.append(tree.read(rel) or "")
    return "\n".join(out)


def _compute_body(tree: Tree, site) -> tuple[str | None, str, list[str]]:
    """(body of ``Compute`` of the kernel class a registration names, device helpers it uses,
    names the body uses that the fluid sources define and the generated file would not carry).

    The class is looked up in the registering file, then in the fluid headers it includes;
    file-local macros are expanded when that is where the class is written."""
    text = tree.read(site.path) or ""
    start = sum(len(x) for x in text.splitlines(keepends=True)[: site.line - 1])
    stmt = text[start : statement_end(text, start)]
    cm = re.search(
        r"(?:ops::)?(\w+)(?:<[^>]*>)?\s*[,)]",
        stmt.split(",", 3)[-1] if "STRUCT" in site.kind else stmt.split(",", 1)[-1],
    )
    if not cm:
        return None, "", []
    cls = cm.group(1)
    pool = text + "\n" + _local_headers(tree, text)
    rx = re.compile(r"\bclass\s+" + cls + r"\b[^{;]*\{")
    m = rx.search(pool)
    if not m:
        pool = expand_local_macros(pool)[0]
        m = rx.search(pool)
    if not m:
        return None, "", []
    body = codegen._braced(pool, m.end() - 1)
    cm2 = re.search(r"void\s+Compute\s*\(([^)]*)\)\s*const\s*(?:override)?\s*\{", body)
    if not cm2:
        return None, "", []
    compute = codegen._braced(body, cm2.end() - 1)
    pm = re.search(r"ExecutionContext\s*&\s*(\w+)\s*$", cm2.group(1).strip())
    if (
        pm and pm.group(1) != "ctx"
    ):  # Compute(const ExecutionContext& context): one name for the rules
        compute = re.sub(r"\b" + pm.group(1) + r"\b", "ctx", compute)
    helpers = codegen.device_helpers(pool, compute)
    used = set(re.findall(r"\b[A-Za-z_]\w*\b", codegen.strip_comments(compute)))
    unresolved = sorted(
        (codegen.declared_names(pool) - codegen.declared_names(helpers) - {cls}) & used
    )
    return compute, helpers, unresolved


def _dtypes(tree: Tree, site) -> list[str]:
    text = tree.read(site.path) or ""
    start = sum(len(x) for x in text.splitlines(keepends=True)[: site.line - 1])
    stmt = text[start : statement_end(text, start)]
    args = stmt[stmt.find("(") + 1 : stmt.rfind(")")]
    if site.kind == "PD_REGISTER_STRUCT_KERNEL":
        parts = [p.strip() for p in args.split(",")][4:]
        return [p for p in parts if p] or ["float"]
    found = []
    for targs in re.findall(
        r"\w<([^<>]*(?:<[^<>]*>[^<>]*)*)>", args
    ):  # Kernel<CPUContext, float>, Kernel<int64_t>
        found += [
            t.strip()
            for t in targs.split(",")
            if t.strip() and not re.search(r"Context|Place|::k[A-Z]|\bk[A-Z]\w*$", t)
        ]
    found = [
        re.sub(r"\b(?:plat|platform|paddle::platform)::(float16|bfloat16)\b", r"phi::dtype::\1", t)
        for t in found
    ]
    return list(dict.fromkeys(found)) or ["float"]


def apply_plan(
    root: Path, decisions: list[dict], ops=None, verdicts=None, write: bool = False
) -> Result:
    from .migrate import migrate  # the MIGRATE steps build on this module's edit helpers

    root = Path(root)
    chosen = [
        d
        for d in decisions
        if d["verdict"] in (verdicts or APPLIED_VERDICTS) and (not ops or d["op"] in ops)
    ]
    unknown = set(ops or []) - {d["op"] for d in decisions}
    if unknown:
        raise MigratorError(f"--op {', '.join(sorted(unknown))}: not in the plan")
    names_of = {
        d["op"]: set(d.get("names") or [d["op"], d["op"] + "_grad", d["op"] + "_grad_grad"])
        for d in chosen
    }
    interest = (
        set().union(*names_of.values(), *({"legacy_" + o} for o in names_of)) if names_of else set()
    )
    idx = build_index(root, interest)
    idx.phi_alias = {
        y.name: y.fluid
        for y in idx.yaml_ops
        if y.path.endswith("op_compat.yaml") and y.fluid != y.name
    }
    tree = Tree(root)
    res = Result()
    deleting = frozenset().union(*(names_of[d["op"]] for d in chosen if d["verdict"] == "DELETE"))
    for d in chosen:
        tree.op = d["op"]
        names = names_of[d["op"]]
        if d["verdict"] == "DELETE":
            _delete(tree, idx, d["op"], names, res, deleting)
        elif d["verdict"] in ("MIGRATE", "MIGRATE_LEGACY"):
            # dygraph callers (_C_ops / _legacy_C_ops / core.ops) need the op in ops.yaml, which
            # generates its _C_ops API; static-graph-only ops go to inconsistent/static_ops.yaml
            static_only = not any(
                s.kind in ("c_ops", "legacy_c_ops", "core_ops") and s.name == d["op"]
                for s in _sites(idx, names)
            )
            migrate(
                tree,
                idx,
                d["op"],
                names,
                res,
                legacy=d["verdict"] == "MIGRATE_LEGACY",
                static_only=static_only,
                duplicate=d["rule"].endswith("phi-equivalent"),
                unused_kernels=frozenset(
                    k["kernel"] for k in d.get("kernels", []) if k["verdict"] == "DELETE"
                ),
            )
        elif d["verdict"] == "REPLACE_THEN_DELETE":
            _replace_callers(tree, idx, d, names, res)
    changes = tree.changes()
    changed = {r for r, _, _ in changes}
    res.files_by_op = {
        op: sorted(files & changed) for op, files in tree.touched.items() if files & changed
    }
    res.patch = git_diff(changes)
    res.changed = [r for r, _, _ in changes]
    res.deleted = [r for r, _, n in changes if n is None]
    res.created = [r for r, o, _ in changes if o is None]
    if write:
        _write_all(root, changes)
    return res


def _write_all(root: Path, changes) -> None:
    from .transaction import write_changes

    write_changes(root, changes)
