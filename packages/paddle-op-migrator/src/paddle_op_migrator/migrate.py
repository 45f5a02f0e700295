"""MIGRATE / MIGRATE_LEGACY: the PHI side of one fluid op, in named steps.

``migrate`` drops the kernels the plan found unused, reads the op (OpMaker, GradOpMaker, kernel
classes), generates the forward kernels, the InferMeta, the yaml entries, the backward side and
the op_compat entry, switches legacy dygraph callers once a PHI kernel is live, and removes the
fluid kernel registrations a working PHI kernel now serves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import codegen, pyrewrite
from .apply import (
    YAML,
    Result,
    Tree,
    _append_cpp,
    _append_yaml,
    _backend,
    _compute_body,
    _dtypes,
    _local_headers,
    _remove_spans,
    _sites,
)
from .cpp import camel
from .scanner import FLUID_KERNEL_MACROS, FUNCTION_KERNEL_MACROS, OP_MACROS, Index, Site


@dataclass
class Job:
    """One op's migration: what the scan knows of it and what the steps found so far."""

    tree: Tree
    idx: Index
    op: str
    names: set[str]
    legacy: bool  # keep the old op, backed by a legacy_<op> kernel
    static_only: bool  # no dygraph caller: inconsistent/static_ops.yaml
    duplicate: bool  # the PHI kernel already existed (R4): every fluid kernel goes
    res: Result
    regs: list[Site] = field(default_factory=list)
    fluid_kernels: list[Site] = field(default_factory=list)
    ported: set[tuple[str, str]] = field(
        default_factory=set
    )  # (fluid kernel, backend) PHI now serves

    @property
    def kname(self) -> str:
        return ("legacy_" + self.op) if self.legacy else self.op

    def backend_sites(self, name: str, backend: str) -> list[Site]:
        macro = {"CPU": "REGISTER_OP_CPU_KERNEL", "GPU": "REGISTER_OP_CUDA_KERNEL"}[backend]
        return [
            s
            for s in self.fluid_kernels
            if s.name == name and (s.arg2 == backend or s.kind == macro)
        ]


def migrate(
    tree: Tree,
    idx: Index,
    op: str,
    names: set[str],
    res: Result,
    *,
    legacy: bool,
    static_only: bool,
    duplicate: bool = False,
    unused_kernels: frozenset = frozenset(),
) -> None:
    job = Job(tree, idx, op, names, legacy, static_only, duplicate, res)
    drop_unused_kernels(job, unused_kernels)
    if not job.fluid_kernels:
        report_function_kernels(job)
        return
    find_ported(job)
    if not phi_kernel_exists(job):
        spec = read_op(job)
        if spec is None:
            return
        generate_forward_kernels(job, spec)
        fn = generate_infer_meta(job, spec)
        ydir, has_grad = write_forward_yaml(job, spec, fn)
        if has_grad:
            generate_backward(job, spec, ydir)
        write_op_compat(job, spec, has_grad)
    switch_python_callers(job)
    remove_served_registrations(job)


def drop_unused_kernels(job: Job, unused: frozenset) -> None:
    """Kernels the plan found unused (K2) lose their registration; the rest is the op's."""
    regs = [s for s in _sites(job.idx, job.names) if s.area == "fluid_op"]
    job.fluid_kernels = [s for s in regs if s.kind in FLUID_KERNEL_MACROS]
    for s in [s for s in regs if s.kind in FUNCTION_KERNEL_MACROS and s.name in unused]:
        job.tree.write(s.path, _remove_spans(job.tree.read(s.path) or "", [(s.kind, s.name)]))
    job.regs = [s for s in regs if s.name not in unused]


def report_function_kernels(job: Job) -> None:
    for s in job.regs:
        if s.kind in FUNCTION_KERNEL_MACROS:
            job.res.human.append(
                f"{s.where}: PHI kernel '{s.name}' is registered from a fluid file; move it "
                "and its implementation to paddle/phi/kernels/ by hand"
            )


def find_ported(job: Job) -> None:
    for k, fluid in ((job.kname, job.op), (job.kname + "_grad", job.op + "_grad")):
        for s in job.idx.sites.get(k, []):
            if (
                s.area == "phi_kernel"
                and s.kind in FUNCTION_KERNEL_MACROS
                and "0" not in s.conditions
            ):
                job.ported.add((fluid, s.arg2))


def phi_kernel_exists(job: Job) -> bool:
    return any(
        s.area == "phi_kernel" and s.kind in FUNCTION_KERNEL_MACROS
        for s in job.idx.sites.get(job.kname, [])
    )


def read_op(job: Job):
    """The op's spec from its OpMaker (None, with the reason for a human, when it cannot be read)."""
    op, regs, res = job.op, job.regs, job.res
    op_site = next((s for s in regs if s.kind in OP_MACROS and s.name == op), None) or next(
        (s for s in regs if s.kind == "LOCAL_REGISTER_MACRO" and s.name == op), None
    )
    text = job.tree.read(op_site.path) if op_site else None
    spec = codegen.parse_op(text, op, _local_headers(job.tree, text)) if text else None
    if spec is None:
        if op_site is not None and op_site.kind == "LOCAL_REGISTER_MACRO":
            res.human.append(
                f"{op_site.where}: {op} is registered through {op_site.macro}(...), which "
                "could not be expanded into a REGISTER_OPERATOR with a readable OpMaker "
                "(a macro defined outside the file and the fluid headers it includes, or not "
                "function-like); not generated"
            )
        else:
            res.human.append(
                f"{op}: no REGISTER_OPERATOR found to read the OpMaker from; not generated"
            )
        return None
    if spec.missing_base:
        res.human.append(
            f"{op_site.where}: the OpMaker of {op} extends {spec.missing_base}, which is "
            "neither in the file nor in the fluid headers it includes; not generated"
        )
        return None
    return spec


def _write_kernels(
    job: Job, spec, kname: str, fluid_name: str, default_dtypes: list[str] | None
) -> None:
    """Header (when any backend has a kernel) and one CPU ``.cc`` / GPU ``.cu`` per backend."""
    tree, res = job.tree, job.res
    cpu, gpu = job.backend_sites(fluid_name, "CPU"), job.backend_sites(fluid_name, "GPU")
    hdr = f"paddle/phi/kernels/{kname}_kernel.h"
    if (cpu or gpu or default_dtypes is not None) and tree.read(hdr) is None:
        tree.write(hdr, codegen.kernel_header(spec, kname))
        if default_dtypes is not None:
            res.created.append(hdr)
    for backend, sites, rel in (
        ("CPU", cpu, f"paddle/phi/kernels/cpu/{kname}_kernel.cc"),
        ("GPU", gpu, f"paddle/phi/kernels/gpu/{kname}_kernel.cu"),
    ):
        if not sites or tree.read(rel) is not None:
            continue
        body, helpers, unresolved = _compute_body(tree, sites[0])
        dtypes = _dtypes(tree, sites[0]) or default_dtypes or []
        src, complete = codegen.kernel_source(
            spec, kname, backend, dtypes, body, sites[0].where, helpers, unresolved
        )
        tree.write(rel, src)
        if default_dtypes is not None:
            res.created.append(rel)
        if complete:
            job.ported.add((fluid_name, backend))
        else:
            res.human.append(f"{rel}: kernel body marked {codegen.TODO}")


def generate_forward_kernels(job: Job, spec) -> None:
    cpu = job.backend_sites(job.op, "CPU")
    _write_kernels(
        job, spec, job.kname, job.op, _dtypes(job.tree, cpu[0]) if cpu else ["float", "double"]
    )


def generate_infer_meta(job: Job, spec) -> str:
    """The InferMeta function name: the one the op already uses, or a generated one."""
    fn = spec.infer_meta_fn or (camel(job.kname) + "InferMeta")
    existing = _declared_infer_meta(job.tree, fn) if not spec.infer_meta_fn else None
    if existing:
        job.res.human.append(
            f"{existing}: {fn} already exists and is used as is; check that its "
            "signature matches the yaml entry"
        )
    elif not spec.infer_meta_fn:
        n_in = len(spec.inputs)
        which = (
            "nullary"
            if n_in == 0
            else "unary"
            if n_in == 1
            else "binary"
            if n_in == 2
            else "multiary"
        )
        decl, defi, complete = codegen.infer_meta(spec, fn)
        _append_cpp(
            job.tree,
            f"paddle/phi/infermeta/{which}.h",
            decl,
            fn,
            '#pragma once\n#include "paddle/phi/core/meta_tensor.h"\n',
        )
        _append_cpp(
            job.tree,
            f"paddle/phi/infermeta/{which}.cc",
            defi,
            fn,
            f'#include "paddle/phi/infermeta/{which}.h"\n',
        )
        if not complete:
            job.res.human.append(f"paddle/phi/infermeta/{which}.cc: {fn} marked {codegen.TODO}")
    return fn


INFERMETA_HEADERS = ("nullary", "unary", "binary", "ternary", "multiary", "backward", "fusion")


def _declared_infer_meta(tree: Tree, fn: str) -> str | None:
    """The infermeta header that already declares ``fn`` (a second definition would not compile)."""
    rx = re.compile(r"\bvoid\s+" + re.escape(fn) + r"\s*\(")
    for name in INFERMETA_HEADERS:
        rel = f"paddle/phi/infermeta/{name}.h"
        text = tree.read(rel)
        if text and rx.search(text) and f"begin {fn}\n" not in text:
            return rel
    return None


def write_forward_yaml(job: Job, spec, fn: str) -> tuple[str, bool]:
    """The op entry (ops.yaml, inconsistent/ or legacy/static_ops.yaml); (its file, has a grad)."""
    has_grad = spec.grad_registered or any(
        s.kind in OP_MACROS and s.name == job.op + "_grad" for s in job.regs
    )
    ydir = (
        f"{YAML}/legacy/static_ops.yaml"
        if job.legacy
        else (f"{YAML}/inconsistent/static_ops.yaml" if job.static_only else f"{YAML}/ops.yaml")
    )
    entry = codegen.yaml_entry(spec, job.kname, fn, job.kname + "_grad" if has_grad else None)
    _append_yaml(job.tree, ydir, entry, job.kname)
    return ydir, has_grad


def generate_backward(job: Job, spec, ydir: str) -> None:
    """The backward_op entry (from the custom GradOpMaker when there is one) and grad kernels."""
    tree, op, gk = job.tree, job.op, job.kname + "_grad"
    gcpu = job.backend_sites(op + "_grad", "CPU")
    gbody = _compute_body(tree, gcpu[0])[0] if gcpu else None
    gspec = codegen.grad_spec(spec, gbody)
    if spec.grad_maker and spec.grad is None:
        job.res.human.append(
            f"{op}: custom grad maker {spec.grad_maker} not read (no Apply() found); "
            "backward yaml guessed from the DefaultGradOpMaker convention"
        )
    bdir = ydir.replace("static_ops.yaml", "static_backward.yaml").replace(
        "/ops.yaml", "/backward.yaml"
    )
    text = tree.read(bdir) or ""
    if not re.search(r"(?m)^-[ \t]*backward_op[ \t]*:[ \t]*" + re.escape(gk) + r"\b", text):
        tree.write(
            bdir,
            text
            + ("\n" if text and not text.endswith("\n\n") else "")
            + codegen.backward_entry(spec, gspec, job.kname),
        )
    _write_kernels(job, gspec, gk, op + "_grad", None)
    if not gcpu and not job.backend_sites(op + "_grad", "GPU"):
        job.res.human.append(
            f"{op}_grad: fluid registers no grad kernel; backward.yaml entry "
            f"written, write the {gk} kernel"
        )


def write_op_compat(job: Job, spec, has_grad: bool) -> None:
    compat = f"{YAML}/op_compat.yaml"
    ctext = job.tree.read(compat) or ""
    if not re.search(
        r"(?m)^-[ \t]*op[ \t]*:[ \t]*\w+(?:[ \t]*\([ \t]*)?" + re.escape(job.op) + r"\b", ctext
    ):
        _append_yaml(
            job.tree, compat, codegen.op_compat_entry(spec, job.kname, has_grad), job.kname
        )


def switch_python_callers(job: Job) -> None:
    if job.legacy or job.static_only:
        return
    if any(
        fluid == job.op for fluid, _ in job.ported
    ):  # the generated _C_ops API has a live kernel
        rewrite_legacy_callers(job)
    elif any(s.kind == "legacy_c_ops" and s.name == job.op for s in _sites(job.idx, job.names)):
        job.res.human.append(
            f"{job.op}: _legacy_C_ops.{job.op} callers kept until a PHI kernel of {job.op} is live"
        )


def rewrite_legacy_callers(job: Job) -> None:
    """``_legacy_C_ops.<op>(ins, 'attr', v, ...)`` -> ``_C_ops.<op>(ins, attrs in yaml order)``,
    when ``ops.yaml`` defines the op with the signature the OpMaker gives (the one ``apply``
    generates), so the generated API takes exactly those arguments."""
    tree, op, res = job.tree, job.op, job.res
    files = sorted(
        {s.path for s in _sites(job.idx, job.names) if s.kind == "legacy_c_ops" and s.name == op}
    )
    if not files:
        return
    op_site = next((s for s in job.regs if s.kind in OP_MACROS and s.name == op), None)
    text = tree.read(op_site.path) if op_site else None
    spec = codegen.parse_op(text, op, _local_headers(tree, text)) if text else None
    ops_yaml = tree.read(f"{YAML}/ops.yaml") or ""
    head = f"- op : {op}\n"
    if (
        spec is None
        or spec.missing_base
        or head not in ops_yaml
        or codegen.yaml_entry(spec, op, "").splitlines()[1] + "\n"
        not in ops_yaml.split(head, 1)[1][:2000]
    ):
        res.human.extend(
            f"{f}: _legacy_C_ops.{op} calls not rewritten: ops.yaml has no entry with the "
            "OpMaker's signature"
            for f in files
        )
        return
    inputs = [a.name for a in spec.inputs]
    attrs = [(a.name, a.default) for a in spec.attrs]
    for rel in files:
        text = tree.read(rel)
        if text is None:
            continue
        new, left = pyrewrite.rewrite_legacy_calls(
            text, op, inputs, attrs, inplace=bool(spec.inplace)
        )
        if new != text:
            tree.write(rel, new)
        for line, why in left:
            res.human.append(
                f"{rel}:{line}: _legacy_C_ops.{op} call not rewritten to _C_ops.{op}: {why}"
            )


def remove_served_registrations(job: Job) -> None:
    """Only registrations whose PHI replacement works are removed: a TODO kernel is registered
    under ``#if 0`` and the fluid kernel keeps serving that backend until it is ported."""
    by_file: dict[str, list[tuple[str, str]]] = {}
    for s in job.fluid_kernels:
        if s.kind == "LOCAL_REGISTER_MACRO":  # registers the op itself too: not a kernel-only edit
            if job.duplicate:
                job.res.human.append(
                    f"{s.where}: {s.macro}({s.name}, ...) also registers a fluid kernel; "
                    "remove that part of the macro by hand"
                )
            continue
        if job.duplicate or (s.name, _backend(s)) in job.ported:
            by_file.setdefault(s.path, []).append((s.macro or s.kind, s.name))
        elif s.name in (job.op, job.op + "_grad"):
            job.res.human.append(
                f"{s.where}: fluid {_backend(s)} kernel of '{s.name}' kept until its PHI "
                "kernel is ported"
            )
    for path, lines in by_file.items():
        job.tree.write(path, _remove_spans(job.tree.read(path) or "", lines))
