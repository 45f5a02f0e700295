"""One pass over a Paddle checkout: every registration and every reference that matters.

The scan reads each source file once and runs a handful of precompiled regular expressions on
it. It needs no Paddle installation and no compiler.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .cpp import conditions_at, snake_from_op_class, statement_end
from .errors import MigratorError
from .lists import ListEntry, candidate_ops

SCHEMA = "paddle-op-migrator/inventory/1"

# --- what the macros mean -------------------------------------------------------------------
OP_MACROS = {"REGISTER_OPERATOR", "REGISTER_OP_WITHOUT_GRADIENT", "REGISTER_OP"}
FLUID_KERNEL_MACROS = {
    "REGISTER_OP_CPU_KERNEL",
    "REGISTER_OP_CUDA_KERNEL",
    "REGISTER_OP_XPU_KERNEL",
    "REGISTER_OP_IPU_KERNEL",
    "REGISTER_OP_KERNEL",
    "REGISTER_OP_CUSTOM_DEVICE_KERNEL",
    "PD_REGISTER_STRUCT_KERNEL",
    # a file-local macro (REGISTER_ACTIVATION_OP(brelu, ...)) in a fluid file
    "LOCAL_REGISTER_MACRO",
}
FUNCTION_KERNEL_MACROS = {
    "PD_REGISTER_KERNEL",
    "PD_REGISTER_KERNEL_FOR_ALL_DTYPE",
    "PD_REGISTER_KERNEL_FOR_ALL_BACKEND_DTYPE",
    "PD_REGISTER_GENERAL_KERNEL",
}
REGISTRATION_MACROS = (
    OP_MACROS
    | FLUID_KERNEL_MACROS
    | FUNCTION_KERNEL_MACROS
    | {"REGISTER_OP_VERSION", "DECLARE_INFER_SHAPE_FUNCTOR"}
)
USE_MACROS = {
    "USE_OP_ITSELF",
    "USE_OP",
    "USE_OP_DEVICE_KERNEL",
    "USE_NO_KERNEL_OP",
    "PD_DECLARE_KERNEL",
}
OTHER_MACROS = {
    "REGISTER_TRT_OP_CONVERTER",
    "PD_REGISTER_ARG_MAPPING_FN",
    "PD_REGISTER_BASE_KERNEL_NAME",
}
ALL_MACROS = REGISTRATION_MACROS | USE_MACROS | OTHER_MACROS

_MACRO_RE = re.compile(
    r"\b(?=[PRUD])("
    + "|".join(sorted(ALL_MACROS - {"LOCAL_REGISTER_MACRO"}, key=len, reverse=True))
    + r"|REGISTER_[A-Z0-9_]+)[ \t]*\([ \t\n]*(\w+)"
    r"(?:[ \t\n]*,[ \t\n]*(\w+))?"
)
_OPCLASS_RE = re.compile(r"\b(\w+Op)::name\(\)")
_STRING_RE = re.compile(r"\"(\w+)\"")
_INCLUDE_RE = re.compile(r"#include\s*\"(paddle/fluid/operators/[^\"]+)\"")
_YAML_OP_RE = re.compile(
    r"^-[ \t]*(op|backward_op)[ \t]*:[ \t]*(\w+)(?:[ \t]*\([ \t]*(\w+)[ \t]*\))?", re.M
)
_YAML_BWD_RE = re.compile(
    r"^[ \t]+backward[ \t]*:[ \t]*(\w+)(?:[ \t]*\([ \t]*(\w+)[ \t]*\))?", re.M
)
_YAML_FUNC_RE = re.compile(r"^[ \t]+func[ \t]*:[ \t]*([^\n#]+)", re.M)
_CMAKE_TOKEN_RE = re.compile(r"\b(\w+?)_op(?:_xpu|_npu)?(?:\.cc|\.cu|\.cu\.cc|\.kps)?\b")
_CMAKE_SRC_RE = re.compile(
    r"(?<![\w./*$}-])([\w./-]+\.(?:cc|cu|cpp|kps))\b"
)  # not a glob tail (*_op.cc)

CPP_EXT = (".cc", ".cu", ".h", ".cuh", ".hpp", ".cpp", ".kps", ".cu.h")
TXN_PREFIX = ".paddle-op-migrator-txn-"  # staging folder of a running 'apply --write'
SKIP_DIRS = {".git", "build", "third_party", "node_modules", "__pycache__", ".nox", ".venv"}
PS_MARKERS = re.compile(
    r"PSLIB|PSCORE|HETERPS|BOX_PS|GPUPS|pscore|pslib|/ps/|parameter_server|box_ps"
)
# op names of the PS families (BoxPS *_box_sparse / *_box_extended_sparse, GPUPS *_gpups_*)
_PS_GUARD_RE = re.compile(
    r"^[ \t]*#[ \t]*if.*\b(PADDLE_WITH_(?:PSLIB|PSCORE|BOX_PS|HETERPS|GPU_GRAPH))\b", re.M
)
# headers of the parameter-server client libraries (PSLIB's FleetWrapper, BoxPS, GPUPS, PSCORE):
# an op whose own code includes one is part of the PS stack
_PS_LIB_INCLUDE_RE = re.compile(
    r'^[ \t]*#[ \t]*include[ \t]*"(paddle/fluid/(?:framework/fleet/(?:fleet_wrapper|box_wrapper|ps_gpu_wrapper|'
    r'heter_\w+)|distributed/ps/[^"]+)\.h)"',
    re.M,
)
# kernels that dispatch on the variable's type (tensor arrays, fetch lists): PHI function kernels
# take typed tensors, so such a kernel cannot move without a framework change
_VARIABLE_TYPES_RE = re.compile(r"\b(?:LoDTensorArray|TensorArray|FetchList|FetchUnmergedList)\b")
_SETTYPE_RE = re.compile(r"SetType\(\s*\"(\w+)\"\s*\)")
PS_OP_NAMES = re.compile(r"_box_(?:extended_)?sparse$|(?:^|_)gpups(?:_|$)|(?:^|_)pslib(?:_|$)")


def area(path: str) -> str:
    """Where a file lives, in the terms the decision rules use."""
    if path.endswith((".yaml", ".yml")):
        return "yaml"
    name = path.rsplit("/", 1)[-1]
    if name == "CMakeLists.txt" or path.endswith(".cmake"):
        return "cmake"
    if path.startswith("paddle/fluid/operators/ops_signature/"):
        return "sig"  # KernelSignature mappings: references to kernels, not registrations
    if path.startswith("paddle/fluid/operators/"):
        return "fluid_op"
    if path.startswith("paddle/phi/kernels/"):
        return "phi_kernel"
    if path.startswith("paddle/phi/infermeta/"):
        return "infermeta"
    if path.startswith("paddle/phi/ops/compat/"):
        return "sig"
    if path.startswith("paddle/fluid/pir/"):
        return "pir"
    if path.startswith("paddle/fluid/inference/tensorrt/"):
        return "trt"
    if (
        path.startswith("paddle/fluid/inference/")
        or "/ir/" in path
        and path.startswith("paddle/fluid/framework/ir")
    ):
        return "inference"
    if path.startswith("test/cpp/inference/"):
        return "analyzer_test"
    if path.endswith(".py"):
        if path.startswith("test/") or "/tests/" in path or name.startswith("test_"):
            return "py_test"
        return "py_api" if path.startswith("python/paddle/") else "py_other"
    if path.startswith("test/") or name.endswith("_test.cc") or "/test/" in path:
        return "cpp_test"
    if path.startswith("paddle/fluid/framework/"):
        return "framework"
    return "cpp_other"


@dataclass
class Site:
    kind: str  # macro or reference kind
    name: str
    path: str
    line: int
    end_line: int = 0
    area: str = ""
    arg2: str = ""
    macro: str = ""  # the macro actually written, for LOCAL_REGISTER_MACRO
    conditions: list[str] = field(default_factory=list)
    ps_header: str = ""  # the op's own header compiles its kernel only for a PS build
    traits: list[str] = field(default_factory=list)  # facts of the registering code (see scan)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class YamlOp:
    name: str  # PHI name (or the fluid name in op_compat without alias)
    fluid: str  # fluid name (op_compat "phi (fluid)"), equal to name otherwise
    path: str
    line: int
    comm: bool = False


class Index:
    """Everything the scan found, keyed by name."""

    def __init__(self) -> None:
        self.sites: dict[str, list[Site]] = defaultdict(list)
        self.yaml_ops: list[YamlOp] = []
        self.cmake_sources: list[tuple[str, int, str]] = []  # (cmake path, line, source path)
        self.files = 0
        self.lines = 0
        self.warnings: list[str] = []
        self.conflicts: list[str] = []
        self.includes: dict[str, list[str]] = defaultdict(list)  # fluid header -> ["path:line"]
        self.ps_headers: set[str] = set()  # fluid headers whose code is under a PS build macro
        self.ps_links: dict[str, str] = {}  # fluid file -> PS client header it includes
        self.variable_types: set[str] = set()  # fluid files whose kernels handle tensor arrays

    def add(self, site: Site) -> None:
        self.sites[site.name].append(site)


def _iter_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.startswith(TXN_PREFIX)
        )
        for fn in sorted(filenames):
            if (
                fn.endswith(CPP_EXT)
                or fn.endswith((".py", ".yaml", ".yml", ".cmake"))
                or fn == "CMakeLists.txt"
            ):
                yield os.path.join(dirpath, fn)


def check_tree(root: Path) -> list[str]:
    """Raise for something that is not a Paddle checkout; return warnings otherwise."""
    if not root.is_dir():
        raise MigratorError(f"{root}: not a directory")
    if not (root / "paddle").is_dir() or not (
        (root / "paddle/phi").is_dir() or (root / "paddle/fluid").is_dir()
    ):
        raise MigratorError(
            f"{root}: not a Paddle source tree (expected paddle/phi or paddle/fluid "
            "under it; pass the root of a PaddlePaddle/Paddle clone)"
        )
    warnings = []
    leftovers = sorted(p.name for p in root.iterdir() if p.name.startswith(TXN_PREFIX))
    if leftovers:
        warnings.append(
            f"{root}/{leftovers[0]}: an interrupted 'apply --write' left the tree half "
            "edited; the next 'apply' puts the files back first"
        )
    if not (root / "paddle/fluid/operators").is_dir():
        warnings.append(
            f"{root}/paddle/fluid/operators is gone: every list entry will be reported absent"
        )
    return warnings


def build_index(root: Path, interest: set[str], progress: bool = False) -> Index:
    root = Path(root)
    idx = Index()
    idx.warnings.extend(check_tree(root))
    paths = list(_iter_files(root))
    bar = None
    if progress and sys.stderr.isatty():
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(paths), unit="file", desc="scan", leave=False)
        except ImportError:  # pragma: no cover
            bar = None
    rootlen = len(str(root)) + 1
    for full in paths:
        if bar:
            bar.update(1)
        rel = full[rootlen:].replace(os.sep, "/")
        try:
            st = os.stat(full)
            if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read forever
                idx.warnings.append(f"{rel}: not a regular file (FIFO, device or socket), skipped")
                continue
            with open(full, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            idx.warnings.append(f"{rel}: unreadable, skipped ({exc.strerror or exc})")
            continue
        if b"\0" in raw[:8192]:
            idx.warnings.append(f"{rel}: binary file, skipped")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            idx.warnings.append(f"{rel}: not UTF-8 (byte {exc.start}), skipped")
            continue
        idx.files += 1
        if "<<<<<<< " in text:
            m = re.search(r"^<<<<<<< ", text, re.M)
            if m:
                where = f"{rel}:{text.count(chr(10), 0, m.start()) + 1}"
                idx.conflicts.append(where)
                idx.warnings.append(f"{where}: merge-conflict marker")
        idx.lines += text.count("\n")
        kind = area(rel)
        if kind == "yaml":
            _scan_yaml(idx, rel, text, interest)
        elif kind == "cmake":
            _scan_cmake(idx, rel, text, interest)
        elif rel.endswith(".py"):
            _scan_py(idx, rel, kind, text, interest)
        else:
            _scan_cpp(idx, rel, kind, text, interest)
    if bar:
        bar.close()
    return idx


class _LineCounter:
    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def __call__(self, pos: int) -> int:
        if pos < self.pos:
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _is_comment_or_define(text: str, pos: int) -> bool:
    ls = text.rfind("\n", 0, pos) + 1
    head = text[ls:pos].lstrip()
    if ls >= 2 and text[ls - 2] == "\\":
        return True  # a continuation line: inside a #define body
    return head.startswith(("//", "#define", "*", "/*"))


_MACRO_TOKENS = ("REGISTER_", "USE_", "DECLARE_")


def _macro_matches(text: str):
    """``_MACRO_RE`` matches, found from fast substring searches of the macro name stems."""
    starts = set()
    for token in _MACRO_TOKENS:
        pos = text.find(token)
        while pos >= 0:
            start = pos
            while start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                start -= 1
            starts.add(start)
            pos = text.find(token, pos + len(token))
    for start in sorted(starts):
        m = _MACRO_RE.match(text, start)
        if m:
            yield m


def _scan_cpp(idx: Index, rel: str, kind: str, text: str, interest: set[str]) -> None:
    if "paddle/fluid/operators/" in text:
        at = _LineCounter(text)
        for m in _INCLUDE_RE.finditer(text):
            idx.includes[m.group(1)].append(f"{rel}:{at(m.start())}")
    if (
        kind == "fluid_op"
        and rel.endswith(".h")
        and "PADDLE_WITH_" in text
        and _PS_GUARD_RE.search(text)
    ):
        idx.ps_headers.add(rel)
    if kind == "fluid_op":
        m = _PS_LIB_INCLUDE_RE.search(text)
        if m:
            idx.ps_links[rel] = m.group(1)
        if _VARIABLE_TYPES_RE.search(text):
            idx.variable_types.add(rel)
        if "SetType(" in text and interest:  # a grad maker that emits an op of interest
            at = _LineCounter(text)
            for m in _SETTYPE_RE.finditer(text):
                if m.group(1) in interest and not _is_comment_or_define(text, m.start()):
                    idx.add(Site("grad_maker_type", m.group(1), rel, at(m.start()), area=kind))
    at = _LineCounter(text)
    regs: list[Site] = []
    for m in _macro_matches(text):
        if _is_comment_or_define(text, m.start()):
            continue
        macro, name, arg2 = m.group(1), m.group(2), m.group(3) or ""
        written = ""
        if macro not in ALL_MACROS:
            if kind != "fluid_op":
                continue
            macro, written = "LOCAL_REGISTER_MACRO", macro
        line = at(m.start())
        site = Site(macro, name, rel, line, area=kind, arg2=arg2, macro=written)
        if macro in REGISTRATION_MACROS:
            end = statement_end(text, m.start())
            site.end_line = line + text.count("\n", m.start(), max(m.start(), end - 1))
            regs.append(site)
        idx.add(site)
    if regs and "#if" in text:
        conds = conditions_at(text, [s.line for s in regs])
        for s in regs:
            s.conditions = conds[s.line]
    if kind == "pir" and "::name()" in text:
        at = _LineCounter(text)
        for m in _OPCLASS_RE.finditer(text):
            name = snake_from_op_class(m.group(1))
            if name in interest:
                idx.add(Site("pir_op_class", name, rel, at(m.start()), area=kind, arg2=m.group(1)))
    if kind not in ("fluid_op", "phi_kernel") and interest:
        at = _LineCounter(text)
        for m in _STRING_RE.finditer(text):
            if m.group(1) in interest and not _is_comment_or_define(text, m.start()):
                kind_ = "cpp_table" if _in_table(text, m.start(), m.end()) else "cpp_string"
                idx.add(Site(kind_, m.group(1), rel, at(m.start()), area=kind))


_TABLE_BEFORE = re.compile(r"[{,\[][ \t\n]*(?:(?://|#)[^\n]*\n[ \t\n]*)*$")
_TABLE_AFTER = re.compile(r"[ \t\n]*(?:\][ \t]*=[^=]|[,}\]]|:)")  # ":" a Python dict key


def _in_table(text: str, start: int, end: int) -> bool:
    """Is the string literal at ``start:end`` an element of a brace initializer (``{"a", "b"}``,
    ``{"seed", 1}``)? Such tables (op-version maps, allow- and skip-lists, pass op-type lists)
    name an op type without depending on the op's implementation; a comparison, a ``SetType``
    or a call argument does depend on it."""
    before = _TABLE_BEFORE.search(text, max(0, start - 200), start)
    if not before:
        return False
    after = _TABLE_AFTER.match(text, end)
    if not after:
        return False
    if text[before.start()] == "[":  # map["x"] = ... (a table row); map["x"] alone is a lookup
        return after.group(0).lstrip().startswith("]") and "=" in after.group(0)
    return not after.group(0).lstrip().startswith("]") or text[before.start()] in "[,"


# Each pattern starts with a literal, so ``re`` can skip ahead with a fast substring search
# (an alternation or a leading \b would be tried at every position: 10x slower).
_PY_RES = [
    ("legacy_c_ops", re.compile(r"_legacy_C_ops\.(\w+)")),
    ("c_ops", re.compile(r"_C_ops\.(\w+)")),
    ("core_ops", re.compile(r"core\.ops\.(\w+)")),
    ("append_op", re.compile(r"type\s*=\s*['\"](\w+)['\"]")),
]
_PY_QUOTED_RE = re.compile(r"['\"](\w+)['\"]")


def _scan_py(idx: Index, rel: str, kind: str, text: str, interest: set[str]) -> None:
    """Op namespaces, append_op(type=...), OpTest.op_type, other string mentions."""
    taken: set[int] = set()
    found: list[tuple[int, str, str]] = []
    for ref, rx in _PY_RES:
        for m in rx.finditer(text):
            name, start = m.group(1), m.start()
            if (
                ref != "append_op"
                and name not in interest
                and name.endswith("_")
                and name[:-1] in interest
            ):
                name = name[:-1]  # the inplace API (_C_ops.c_allreduce_sum_) calls the op
            if name not in interest or start in taken:
                continue
            prev = text[start - 1] if start else " "
            if ref == "c_ops" and text.endswith("_legacy", 0, start):
                continue
            if ref == "append_op":
                if prev.isalnum() or prev == "_":
                    if not text.endswith("op_", 0, start) or (
                        start > 3 and (text[start - 4].isalnum() or text[start - 4] == "_")
                    ):
                        continue
                    ref_kind = "op_type"
                else:
                    ref_kind = "append_op"
                taken.add(m.start(1) - 1)
                found.append((start, ref_kind, name))
                continue
            found.append((start, ref, name))
    for m in _PY_QUOTED_RE.finditer(text):
        if m.group(1) in interest and m.start() not in taken:
            found.append(
                (
                    m.start(),
                    "py_table" if _in_table(text, m.start(), m.end()) else "py_string",
                    m.group(1),
                )
            )
    at = _LineCounter(text)
    for start, ref, name in sorted(found):
        idx.add(Site(ref, name, rel, at(start), area=kind))


def _yaml_kind(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    if name == "op_compat.yaml":
        return "op_compat"
    if name == "op_version.yaml":
        return "op_version"
    if "/legacy/" in rel:
        return "yaml_legacy"
    if "/inconsistent/" in rel:
        return "yaml_static"
    if "sparse" in name:
        return "yaml_sparse"
    if "fused" in name:
        return "yaml_fused"
    return "yaml_ops"


def _scan_yaml(idx: Index, rel: str, text: str, interest: set[str]) -> None:
    if not rel.startswith("paddle/"):
        return
    kind = _yaml_kind(rel)
    at = _LineCounter(text)
    ms = list(_YAML_OP_RE.finditer(text))
    for i, m in enumerate(ms):
        phi, fluid = m.group(2), m.group(3) or m.group(2)
        line = at(m.start())
        block = text[m.end() : ms[i + 1].start() if i + 1 < len(ms) else len(text)]
        comm = kind in ("yaml_ops", "yaml_static", "yaml_legacy") and bool(
            re.search(r"^\s*args\s*:.*\bring_id\b", block, re.M)
        )
        # op_compat and op_version speak of fluid ops; the other yamls of PHI ops.
        if kind in ("op_compat", "op_version", "yaml_legacy"):
            idx.add(Site(kind, fluid, rel, line, area="yaml", arg2=phi))
        else:
            idx.add(Site(kind, phi, rel, line, area="yaml"))
        idx.yaml_ops.append(YamlOp(phi, fluid, rel, line, comm))
    if kind not in ("op_compat", "op_version") and "func" in text:
        at = _LineCounter(text)
        for m in _YAML_FUNC_RE.finditer(text):  # kernel : func : a, b  (kernels a yaml op calls)
            for fn in re.findall(r"\w+", m.group(1)):
                if fn in interest:
                    idx.add(Site("yaml_kernel_func", fn, rel, at(m.start()), area="yaml"))
    if kind == "op_compat":
        at = _LineCounter(text)
        for m in _YAML_BWD_RE.finditer(text):
            phi, fluid = m.group(1), m.group(2) or m.group(1)
            idx.yaml_ops.append(YamlOp(phi, fluid, rel, at(m.start()), False))


def _scan_cmake(idx: Index, rel: str, text: str, interest: set[str]) -> None:
    at = _LineCounter(text)
    for m in _CMAKE_TOKEN_RE.finditer(text):
        if m.group(1) in interest:
            idx.add(Site("cmake", m.group(1), rel, at(m.start()), area="cmake"))
    at = _LineCounter(text)
    for m in _CMAKE_SRC_RE.finditer(text):
        idx.cmake_sources.append((rel, at(m.start()), m.group(1)))


# --- the inventory --------------------------------------------------------------------------


def interest_names(entries: list[ListEntry]) -> set[str]:
    names: set[str] = set()
    for e in entries:
        for c in candidate_ops(e.name):
            names.update({c, c + "_grad", c + "_grad_grad", "legacy_" + c})
    return names


def _fluid_op_names(idx: Index) -> set[str]:
    return {
        name
        for name, sites in idx.sites.items()
        if any(
            s.kind in OP_MACROS | {"LOCAL_REGISTER_MACRO"} and s.area == "fluid_op" for s in sites
        )
    }


def resolve_entry(name: str, idx: Index, fluid_ops: set[str]) -> tuple[str, list[Site]]:
    """The op an entry belongs to, and the entry's registration sites in the fluid library."""
    sites = [
        s
        for s in idx.sites.get(name, [])
        if s.area == "fluid_op"
        and (s.kind in FLUID_KERNEL_MACROS | FUNCTION_KERNEL_MACROS | OP_MACROS)
    ]
    kernel_sites = [s for s in sites if s.kind not in OP_MACROS]
    cands = candidate_ops(name)
    for c in cands[1:] + cands[:1]:
        if c in fluid_ops:
            return c, kernel_sites or sites
    # a kernel name registered from a fluid file: the op of that file
    for s in kernel_sites:
        for other in idx_ops_in_file(idx, s.path):
            if name.startswith(other):
                return other, kernel_sites
    return (cands[1] if len(cands) > 1 and name.endswith("_grad") else name), kernel_sites or sites


_file_ops_cache: dict[int, dict[str, list[str]]] = {}


def idx_ops_in_file(idx: Index, path: str) -> list[str]:
    cache = _file_ops_cache.setdefault(id(idx), {})
    if not cache:
        for name, sites in idx.sites.items():
            for s in sites:
                if s.kind in OP_MACROS:
                    cache.setdefault(s.path, []).append(name)
    return cache.get(path, [])


def scan(paddle_src: str | Path, entries: list[ListEntry], progress: bool = False) -> dict:
    """Scan ``paddle_src`` for the ops of ``entries``; return the inventory (JSON-ready)."""
    root = Path(paddle_src)
    t0 = time.perf_counter()
    interest = interest_names(entries)
    idx = build_index(root, interest, progress=progress)
    _file_ops_cache.pop(id(idx), None)
    fluid_ops = _fluid_op_names(idx)
    for sites in idx.sites.values():
        for s in sites:
            if s.area == "fluid_op" and s.kind in REGISTRATION_MACROS:
                hdr = re.sub(r"(\.cu)?\.(cc|cu)$", ".h", s.path)
                if hdr in idx.ps_headers:  # kernels in a header compiled only for a PS build
                    s.ps_header = hdr
                link = idx.ps_links.get(s.path) or idx.ps_links.get(hdr)
                if link:
                    s.traits.append("ps_client:" + link)
                if s.path in idx.variable_types or hdr in idx.variable_types:
                    s.traits.append("variable_types")
    ops: dict[str, dict] = {}
    out_entries = []
    for e in entries:
        op, sites = resolve_entry(e.name, idx, fluid_ops)
        out_entries.append(
            {
                "list": e.list_name,
                "row": e.row,
                "name": e.name,
                "op": op,
                "status": "found" if sites else "absent",
                "sites": sorted({s.where for s in sites}),
            }
        )
        rec = ops.setdefault(op, {"op": op, "entries": [], "names": set()})
        rec["entries"].append(f"{e.list_name}:{e.row}")
        rec["names"].add(e.name)
    # grad entries registered through their op's macro (REGISTER_ACTIVATION_OP(x) makes x_grad)
    for e in out_entries:
        if e["status"] == "absent" and any(
            s.area == "fluid_op" and s.kind in OP_MACROS | FLUID_KERNEL_MACROS
            for s in idx.sites.get(e["op"], [])
        ):
            e["status"] = "found_via_op"
    # PHI names that op_compat gives to another fluid op (bilinear_interp -> bilinear_interp_v2)
    phi_alias = {
        y.name: y.fluid
        for y in idx.yaml_ops
        if y.path.endswith("op_compat.yaml") and y.fluid != y.name
    }
    for op, rec in ops.items():
        names = {op, op + "_grad", op + "_grad_grad"} | rec.pop("names")
        rec["names"] = sorted(names)
        rec["sites"] = []
        for n in sorted(names | {"legacy_" + op}):
            for s in idx.sites.get(n, []):
                if _belongs(s, op, phi_alias):
                    rec["sites"].append(asdict(s))
        rec["sites"].sort(key=lambda d: (d["path"], d["line"]))
    comm_ops = sorted({y.name for y in idx.yaml_ops if y.comm})
    phi_ops = sorted(
        {
            y.name
            for y in idx.yaml_ops
            if not y.path.endswith(("op_compat.yaml", "op_version.yaml"))
            and "/legacy/" not in y.path
        }
    )
    return {
        "schema": SCHEMA,
        "paddle_src": str(root.resolve()),
        "files_scanned": idx.files,
        "lines_scanned": idx.lines,
        "seconds": round(time.perf_counter() - t0, 3),
        "warnings": idx.warnings,
        "entries": out_entries,
        "ops": ops,
        "phi_aliases": phi_alias,
        "phi_comm_ops": comm_ops,
        "phi_yaml_ops": phi_ops,
        "cmake_sources": [{"cmake": c, "line": ln, "source": s} for c, ln, s in idx.cmake_sources],
    }


PHI_NAMESPACE_KINDS = {
    "c_ops",
    "PD_DECLARE_KERNEL",
    "yaml_ops",
    "yaml_static",
    "yaml_sparse",
    "yaml_fused",
    "yaml_kernel_func",
}


def _belongs(s: Site, op: str, phi_alias: dict[str, str]) -> bool:
    """Does this site speak of fluid op ``op`` (and not of a PHI op with a colliding name)?"""
    name = s.name
    stem = (
        name[:-10] if name.endswith("_grad_grad") else name[:-5] if name.endswith("_grad") else name
    )
    phi_side = s.kind in PHI_NAMESPACE_KINDS or s.path.startswith("paddle/phi/")
    if phi_side and stem in phi_alias and phi_alias[stem] != stem:
        return False  # e.g. PHI bilinear_interp is fluid bilinear_interp_v2, not v1
    return True
