"""Verdicts from ordered, general rules applied to the evidence of the inventory.

There is no per-op table here: every verdict follows from what the scan found in the tree, so
the same rules decide on a tree (or a list) they have never seen. The first rule whose
condition holds decides; its evidence is cited as ``path:line``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from .records import VERDICTS, Decision, KernelVerdict
from .scanner import (
    FLUID_KERNEL_MACROS,
    FUNCTION_KERNEL_MACROS,
    OP_MACROS,
    PS_MARKERS,
    PS_OP_NAMES,
    USE_MACROS,
    Site,
)

BOOKKEEPING_KINDS = {
    "op_compat",
    "op_version",
    "yaml_legacy",
    "pir_op_class",
    "cmake",
    "grad_maker_type",
    "cpp_table",
    "py_table",
    "PD_REGISTER_ARG_MAPPING_FN",
    "PD_REGISTER_BASE_KERNEL_NAME",
    "REGISTER_OP_VERSION",
    "DECLARE_INFER_SHAPE_FUNCTOR",
}
TEST_AREAS = {"py_test", "cpp_test"}
INFERENCE_AREAS = {"trt", "inference", "analyzer_test"}
ONEDNN_BACKENDS = {"MKLDNN", "ONEDNN"}
_REDUCE_SUFFIX = re.compile(r"_(sum|max|min|prod|avg|mean)$")


@dataclass
class Facts:
    """What the rules look at, derived from one op's sites in the inventory."""

    op: str
    sites: list[Site]
    phi_aliases: dict[str, str]
    phi_comm_ops: list[str]

    def where(self, pred: Callable[[Site], bool], limit: int = 8) -> list[str]:
        out: list[str] = []
        for s in self.sites:
            if pred(s):
                w = s.where
                if w not in out:
                    out.append(w)
        return out[:limit]

    @property
    def own_files(self) -> set[str]:
        return {
            s.path
            for s in self.sites
            if s.area == "fluid_op"
            and s.kind in OP_MACROS | FLUID_KERNEL_MACROS | FUNCTION_KERNEL_MACROS
        }

    def is_registration(self, s: Site) -> bool:
        return (
            s.area == "fluid_op"
            and s.kind in OP_MACROS | FLUID_KERNEL_MACROS | FUNCTION_KERNEL_MACROS
        )

    def fluid_kernel(self, s: Site) -> bool:
        return s.area == "fluid_op" and s.kind in FLUID_KERNEL_MACROS

    def phi_kernel(self, s: Site) -> bool:
        return s.area == "phi_kernel" and s.kind in FUNCTION_KERNEL_MACROS

    def outside(self, s: Site) -> bool:
        return s.path not in self.own_files

    @property
    def collides(self) -> bool:
        """A PHI op of the same name exists but is another fluid op (v1 interp, crop, matmul)."""
        return self.phi_aliases.get(self.op, self.op) != self.op or any(
            s.name == "legacy_" + self.op for s in self.sites
        )

    def py_callers(self, s: Site) -> bool:
        return s.area == "py_api"


def _ps_family(f: Facts) -> list[str]:
    own = f.where(
        lambda s: (
            f.is_registration(s)
            and (
                PS_MARKERS.search(s.path)
                or any(PS_MARKERS.search(c) for c in s.conditions)
                or PS_OP_NAMES.search(s.name)
                or s.ps_header
                or any(t.startswith("ps_client:") for t in s.traits)
            )
        )
    )
    if own:
        return own
    # every user outside the op's own files and tests belongs to the PS stack
    users = [
        s
        for s in f.sites
        if f.outside(s)
        and s.area not in TEST_AREAS
        and s.kind not in BOOKKEEPING_KINDS
        and s.area not in ("yaml", "sig", "phi_kernel", "infermeta")
        and s.kind not in ("py_string", "py_table")
    ]
    if users and all(PS_MARKERS.search(s.path) for s in users):
        return f.where(lambda s: s in users)
    return []


def _norm_comm(name: str) -> str:
    n = name[2:] if name.startswith("c_") else name
    n = _REDUCE_SUFFIX.sub("", re.sub(r"_v\d+$", "", n))
    return n.replace("_", "")


def new_comm_replacement(f: Facts) -> str | None:
    if not any(
        f.is_registration(s) and ("/collective/" in s.path or "custom_device" in s.path)
        for s in f.sites
    ):
        return None
    key = _norm_comm(f.op)
    for cand in f.phi_comm_ops:
        if cand != f.op and cand.replace("_", "") == key:
            return cand
    return None


@dataclass(frozen=True)
class Rule:
    id: str
    verdict: str | Callable[[Facts], str]
    reason: str
    check: Callable[[Facts], list[str] | None]  # evidence (non-empty list) when the rule fires


def _legacy_or(verdict: str) -> Callable[[Facts], str]:
    return lambda f: "MIGRATE_LEGACY" if f.collides else verdict


def _absent(f: Facts) -> list[str] | None:
    if any(f.is_registration(s) for s in f.sites):
        return None
    return f.where(f.phi_kernel) or ["(no registration in paddle/fluid/operators)"]


def _replace_callers(f: Facts) -> list[str]:
    return f.where(
        lambda s: (
            f.outside(s)
            and s.area
            in ("py_api", "py_other", "framework", "pir", "cpp_other", "inference", "trt")
            and s.kind not in BOOKKEEPING_KINDS
        )
    )


def _replace(f: Facts) -> list[str] | None:
    repl = new_comm_replacement(f)
    if not repl:
        return None
    return [f"replacement: {repl}"] + (_replace_callers(f) or f.where(f.is_registration))


def _framework(f: Facts) -> list[str] | None:
    """The executor names the op *and* its kernel handles variable-level types (tensor arrays,
    fetch lists) that a PHI function kernel cannot take. A name in a version, compatibility or
    allow-list table alone is no dependency on the op's implementation."""
    kernel = f.where(lambda s: f.is_registration(s) and "variable_types" in s.traits)
    if not kernel:
        return None
    framework = f.where(lambda s: s.area == "framework" and s.kind in ("cpp_string", "cpp_table"))
    return (framework + kernel) if framework else None


def _done(f: Facts) -> list[str] | None:
    if any(
        f.fluid_kernel(s) or (s.area == "fluid_op" and s.kind in FUNCTION_KERNEL_MACROS)
        for s in f.sites
    ):
        return None
    return f.where(f.phi_kernel) or None


def _phi_dup(f: Facts) -> list[str] | None:
    phi = f.where(f.phi_kernel)
    return (phi + f.where(f.fluid_kernel)) if phi else None


def _inference(f: Facts) -> list[str] | None:
    """A TRT converter, an analyzer test, inference code that acts on the op type (a comparison,
    a call), or a oneDNN kernel of the op (Paddle Inference's CPU path runs it). An op-type table
    of a pass (placement lists) is no dependency."""
    return (
        f.where(
            lambda s: (
                (
                    (s.area in INFERENCE_AREAS or s.kind == "REGISTER_TRT_OP_CONVERTER")
                    and f.outside(s)
                    and s.kind != "cpp_table"
                )
                or (f.fluid_kernel(s) and s.arg2.upper() in ONEDNN_BACKENDS)
            )
        )
        or None
    )


def _python_api(f: Facts) -> list[str] | None:
    return (
        f.where(
            lambda s: (
                s.area == "py_api"
                and s.kind not in ("py_string", "py_table")
                and not PS_MARKERS.search(s.path)
            )
        )
        or None
    )


def _pir_op(f: Facts) -> list[str] | None:
    """The op is defined for PIR under its own name (an ``ops.yaml`` / ``static_ops.yaml`` /
    ``fused_ops.yaml`` entry that op_compat does not give to another fluid op): programs of the
    new IR hold ``pd_op.<op>``, so the op needs a kernel, not a deletion."""
    if f.collides:
        return None
    return (
        f.where(lambda s: s.kind in ("yaml_ops", "yaml_static", "yaml_fused") and s.name == f.op)
        or None
    )


def _cpp_users(f: Facts) -> list[str] | None:
    return (
        f.where(
            lambda s: (
                f.outside(s)
                and s.area not in TEST_AREAS
                and (s.kind in USE_MACROS or s.kind == "cpp_string")
            )
        )
        or None
    )


def _op_version(f: Facts) -> list[str] | None:
    return f.where(lambda s: s.kind in ("op_version", "REGISTER_OP_VERSION")) or None


def _grad_maker_users(f: Facts) -> list[str] | None:
    """Another op's GradOpMaker emits this op (``SetType("x_grad")``): autograd needs it."""
    return f.where(lambda s: s.kind == "grad_maker_type" and s.name == f.op) or None


def _unused(f: Facts) -> list[str] | None:
    users = [
        s
        for s in f.sites
        if f.outside(s)
        and s.area not in TEST_AREAS
        and s.kind not in BOOKKEEPING_KINDS
        and not f.phi_kernel(s)
        and s.area not in ("phi_kernel", "infermeta", "yaml", "sig")
    ]
    if users:
        return None
    return f.where(f.is_registration)


def _default(f: Facts) -> list[str]:
    return f.where(lambda s: f.outside(s) and s.area not in TEST_AREAS) or f.where(
        f.is_registration
    )


RULES: list[Rule] = [
    Rule(
        "R0-absent",
        "DONE",
        "no registration left under paddle/fluid/operators (the tree is "
        "newer than the list): already migrated or deleted",
        _absent,
    ),
    Rule(
        "R1-parameter-server",
        "DELETE",
        "parameter-server family (PS/pslib/BoxPS/GPUPS): "
        "retired with the PS stack, a migration is not worth its link dependencies",
        _ps_family,
    ),
    Rule(
        "R2-new-comm-replacement",
        lambda f: "REPLACE_THEN_DELETE" if _replace_callers(f) else "DELETE",
        "collective op with a new-comm PHI op: switch its callers to it, then delete the fluid op "
        "(PHI comm kernels use only the new communication library)",
        _replace,
    ),
    Rule(
        "R3-already-phi",
        "DONE",
        "the PHI kernel exists and the fluid file registers no kernel "
        "any more (OpMaker kept for old programs)",
        _done,
    ),
    Rule(
        "R4-phi-equivalent",
        _legacy_or("MIGRATE"),
        "a PHI kernel already exists: remove the duplicate fluid kernel registration",
        _phi_dup,
    ),
    Rule(
        "R5-framework-core",
        "KEEP",
        "named by the executor/framework itself: not an op-library "
        "cleanup, it needs a framework change first",
        _framework,
    ),
    Rule(
        "R6-inference-dependency",
        _legacy_or("MIGRATE"),
        "used by inference (TRT converter, "
        "pass, analyzer test): saved programs need the op, so migrate, never delete",
        _inference,
    ),
    Rule(
        "R7-python-api",
        _legacy_or("MIGRATE"),
        "called from the public Python package: users depend on it, so migrate",
        _python_api,
    ),
    Rule(
        "R7b-pir-op",
        "MIGRATE",
        "defined for PIR under its own name (ops/static_ops/fused_ops yaml): "
        "new-IR programs hold pd_op.<op>, which needs a kernel",
        _pir_op,
    ),
    Rule(
        "R8-cpp-users", _legacy_or("MIGRATE"), "used by C++ code outside its own files", _cpp_users
    ),
    Rule(
        "R8b-op-version",
        _legacy_or("MIGRATE"),
        "has op-version checkpoints (REGISTER_OP_VERSION / "
        "op_version.yaml): released saved programs carry the op, so migrate and keep the checkpoints",
        _op_version,
    ),
    Rule(
        "R8c-grad-maker",
        _legacy_or("MIGRATE"),
        "another op's GradOpMaker emits it (SetType): autograd of a live op needs it",
        _grad_maker_users,
    ),
    Rule("R9-unused", "DELETE", "no reference outside its own files and tests: dead code", _unused),
    Rule(
        "R10-default",
        _legacy_or("MIGRATE"),
        "referenced but no rule proves it removable: migrate (the conservative choice)",
        _default,
    ),
]


def decide(f: Facts) -> tuple[Rule, str, list[str]]:
    """(the first rule that holds, its verdict, its evidence)."""
    for rule in RULES:
        ev = rule.check(f)
        if ev:
            return rule, rule.verdict(f) if callable(rule.verdict) else rule.verdict, ev
    raise AssertionError("R10-default always fires")


def kernel_verdicts(f: Facts) -> list[KernelVerdict]:
    """PHI kernels registered from fluid files (list entries such as ``save_combine_tensor``):
    the unused-code rule at kernel granularity. A kernel named anywhere else (a sig file's
    KernelSignature, C++ or Python) moves to paddle/phi/kernels; one nobody names is deleted."""
    out = []
    fluid_fn = [
        s
        for s in f.sites
        if s.area == "fluid_op" and s.kind in FUNCTION_KERNEL_MACROS and s.name != f.op
    ]
    for name in sorted({s.name for s in fluid_fn}):
        refs = f.where(
            lambda s, n=name: (
                s.name == n
                and not (
                    s.area == "fluid_op" and s.kind in FUNCTION_KERNEL_MACROS | FLUID_KERNEL_MACROS
                )
                and s.area not in TEST_AREAS
            )
        )
        regs = f.where(lambda s, n=name: s.name == n and s.area == "fluid_op")
        out.append(
            KernelVerdict(
                name,
                "MOVE" if refs else "DELETE",
                "K1-kernel-referenced" if refs else "K2-kernel-unused",
                refs or regs,
            )
        )
    return out


def _pr_group(f: Facts, verdict: str, rule: str) -> str:
    """PR grouping: one PR per verdict and directory (the op's REGISTER_OPERATOR file first);
    the PS family together; custom-device registry ops together (tested as one)."""
    if verdict in ("KEEP", "DONE"):
        return "–"
    regs = [s for s in f.sites if s.area == "fluid_op"]
    if any(s.path.endswith("custom_device_common_op_registry.cc") for s in regs):
        return f"{verdict} custom-device registry (one PR, integration-tested together)"
    if rule.startswith("R1-"):
        return f"{verdict} parameter-server ops"
    main = [s.path for s in regs if s.kind in OP_MACROS] or [s.path for s in regs]
    sub = main[0].split("/")[3] if main and main[0].count("/") > 3 else "operators"
    return f"{verdict} {sub}"


def plan(inventory: dict) -> list[dict]:
    """One decision per op of the inventory, in list order (``Decision`` rows as dicts: the
    ``plan.json`` schema)."""
    out = []
    for op, rec in inventory["ops"].items():
        sites = [s if isinstance(s, Site) else Site(**s) for s in rec["sites"]]
        f = Facts(op, sites, inventory.get("phi_aliases", {}), inventory.get("phi_comm_ops", []))
        rule, verdict, evidence = decide(f)
        decision = Decision(
            op=op,
            names=list(rec["names"]),
            entries=list(rec["entries"]),
            verdict=verdict,
            rule=rule.id,
            reason=rule.reason,
            evidence=evidence,
            registrations=f.where(f.is_registration, limit=50),
            replacement=new_comm_replacement(f),
            legacy_kernel=f.collides,
            kernels=kernel_verdicts(f),
            needs_human=f.where(
                lambda s: (
                    s.area in ("py_api", "py_test", "py_other")
                    and s.kind not in ("py_string", "py_table")
                ),
                limit=50,
            ),
            pr_group=_pr_group(f, verdict, rule.id),
        )
        out.append(decision.to_dict())
    return out


def to_markdown(decisions: list[dict], title: str = "Fluid operator retirement plan") -> str:
    counts = {v: sum(d["verdict"] == v for d in decisions) for v in VERDICTS}
    lines = [
        f"# {title}",
        "",
        ", ".join(f"{v}: {n}" for v, n in counts.items() if n),
        "",
        "| rows | op | files | verdict | rule | reason | evidence | PR group |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in decisions:
        rows = ", ".join(d["entries"])
        files = "<br>".join(sorted({e.rsplit(":", 1)[0] for e in d["registrations"]})) or "–"
        ev = "<br>".join(d["evidence"][:4])
        kern = "".join(
            f"<br>kernel `{k['kernel']}`: {k['verdict']} ({k['rule']})"
            for k in d.get("kernels", [])
        )
        lines.append(
            f"| {rows} | `{d['op']}` | {files} | **{d['verdict']}**{kern} | {d['rule']} | "
            f"{d['reason']} | {ev} | {d['pr_group']} |"
        )
    groups: dict[str, list[str]] = {}
    for d in decisions:
        if d["pr_group"] != "–":
            groups.setdefault(d["pr_group"], []).append(d["op"])
    lines += ["", "## Proposed PRs", ""]
    for i, (g, ops) in enumerate(sorted(groups.items()), 1):
        lines.append(f"{i}. `[fluid_ops]` {g}: {', '.join(ops)}")
    return "\n".join(lines) + "\n"


def to_csv(decisions: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["op", "entries", "verdict", "rule", "reason", "evidence", "pr_group"])
    for d in decisions:
        w.writerow(
            [
                d["op"],
                " ".join(d["entries"]),
                d["verdict"],
                d["rule"],
                d["reason"],
                " ".join(d["evidence"]),
                d["pr_group"],
            ]
        )
    return buf.getvalue()
