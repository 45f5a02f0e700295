"""Checks of a tree after ``apply``: dangling references, CMake sources, yaml, and a real
``g++ -std=c++17 -fsyntax-only`` of every generated C++ file against an installed Paddle wheel's
``paddle/include`` (skipped, with the reason, when there is no compiler or no wheel)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from .codegen import MARK, TODO
from .cpp import snake_from_op_class, statement_end
from .errors import MigratorError
from .scanner import FLUID_KERNEL_MACROS, FUNCTION_KERNEL_MACROS, OP_MACROS, build_index

_BLOCK_RE = re.compile(r"// " + MARK + r": begin (\w+)\n(.*?)// " + MARK + r": end \1\n", re.S)


def paddle_include() -> tuple[Path | None, str]:
    """The installed wheel's ``paddle/include``, found without importing paddle."""
    spec = importlib.util.find_spec("paddle")
    if spec is None or not spec.origin:
        return None, (
            "no installed Paddle wheel: pip install paddlepaddle (or paddlepaddle-gpu) "
            "to compile-check generated files against its paddle/include"
        )
    inc = Path(spec.origin).parent / "include"
    if not (inc / "paddle/phi/core/kernel_registry.h").exists():
        return None, f"{inc}: the installed paddle has no paddle/include/paddle/phi headers"
    return inc, ""


def _gxx(files: list[Path], inc: Path, root: Path) -> tuple[bool, str]:
    cmd = [
        shutil.which("g++") or "g++",
        "-std=c++17",
        "-fsyntax-only",
        "-w",
        f"-I{root}",
        f"-I{inc}",
        f"-I{inc / 'third_party'}",
    ]  # the tree first: its (generated) headers win
    proc = subprocess.run(
        cmd + ["-x", "c++"] + [str(f) for f in files], capture_output=True, text=True
    )
    return proc.returncode == 0, proc.stderr


# Lets g++ read a .cu kernel file: the CUDA keywords and built-in variables defined away.
CUDA_PRELUDE = """#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__
#define __launch_bounds__(...)
struct PomCudaDim3 { unsigned x, y, z; };
static const PomCudaDim3 threadIdx{}, blockIdx{}, blockDim{}, gridDim{};
"""


def cuda_as_cpp(text: str) -> str:
    """A ``.cu`` kernel file as C++ for ``g++ -fsyntax-only``: ``<<<grid, block>>>`` launch
    configurations dropped (the call and its arguments stay), GPU kernel registrations put under
    ``#if 0`` (``phi::GPUContext`` only exists in a CUDA build of the headers)."""
    text = re.sub(r"<<<(?:[^;<>]|<[^<>]*>|\([^()]*\))*?>>>", "", text)
    out, pos = [], 0
    for m in re.finditer(r"^PD_REGISTER_KERNEL\((?:[^()]|\([^()]*\))*?\bGPU\b", text, re.M):
        if m.start() < pos:
            continue
        end = statement_end(text, m.start())
        out += [
            text[pos : m.start()],
            "#if 0  // GPU registration: needs a CUDA build\n",
            text[m.start() : end],
            "\n#endif\n",
        ]
        pos = end
    return "".join(out) + text[pos:]


def run_compile_check(root: Path, generated: list[str], infermeta_blocks: list[str]) -> dict:
    if not generated and not infermeta_blocks:
        return {"status": "skipped", "reason": "no generated C++ files", "files": []}
    if not shutil.which("g++"):
        return {"status": "skipped", "reason": "g++ not found on PATH", "files": []}
    inc, why = paddle_include()
    if inc is None:
        return {"status": "skipped", "reason": why, "files": []}
    cc = [g for g in generated if not g.endswith(".cu")]
    cu = [g for g in generated if g.endswith(".cu")]
    notes = []
    failures = []
    with tempfile.TemporaryDirectory(prefix="pom-gxx-") as tmp:
        # one translation unit per backend (CPU and GPU files define the same kernel templates)
        units = []
        lines = [f'#include "{(root / g).resolve()}"' for g in cc]
        if infermeta_blocks:
            lines += [
                "#include <string>",
                "#include <vector>",
                '#include "paddle/phi/core/meta_tensor.h"',
                '#include "paddle/common/enforce.h"',
                "namespace phi {",
                *infermeta_blocks,
                "}",
            ]
        units.append((Path(tmp) / "generated_cpu.cc", lines, cc))
        if cu:
            # .cu files are checked as C++ (no nvcc here): the kernel function, its body and the
            # __global__/__device__ helpers it carries; a live GPU registration is not compiled
            gpu_lines = [CUDA_PRELUDE]
            for g in cu:
                text = (root / g).read_text(encoding="utf-8")
                conv = cuda_as_cpp(text)
                if "#if 0  // GPU registration" in conv and "#if 0\nPD_REGISTER_KERNEL" not in text:
                    notes.append(
                        f"{g}: GPU registration not compiled (needs a CUDA build of the headers); "
                        "kernel and device helpers checked as C++"
                    )
                copy = Path(tmp) / "cu" / g
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_text(conv, encoding="utf-8")
                gpu_lines.append(f'#include "{copy}"')
            units.append((Path(tmp) / "generated_gpu.cc", gpu_lines, cu))
        for tu, lines, members in units:
            if not lines:
                continue
            tu.write_text("\n".join(lines) + "\n", encoding="utf-8")
            ok, err = _gxx([tu], inc, root)
            if ok:
                continue
            # attribute errors to files from the compiler's own "file:line:col: error" lines
            bad = sorted(
                {
                    g
                    for g in members
                    for m in re.finditer(r"^(\S+?):\d+:\d+: error", err, re.M)
                    if m.group(1).endswith(g)
                }
            )
            for g in bad or [
                "(InferMeta blocks)"
                if tu.name == "generated_cpu.cc" and infermeta_blocks
                else "(" + tu.name + ")"
            ]:
                failures.append({"file": g, "error": err[-2000:]})
    return {
        "status": "failed" if failures else "passed",
        "files": cc + cu + ["InferMeta blocks"] * bool(infermeta_blocks),
        "failures": failures,
        "include": str(inc),
        "not_compiled": notes,
    }


# --- the tree's own problems (computed for the tree and for its baseline) ----------------------

_KERNEL_SIG_RE = re.compile(r'KernelSignature\(\s*"(\w+)"')
_UNREGISTERED_KERNEL_RE = re.compile(r"kernel '(\w+)', which is not registered$")
_LINE_RE = re.compile(r":\d+(?=[:\s]|$)")


def _index(root: Path):
    return build_index(root, set())


def _registered(idx) -> tuple[set[str], set[str], set[str]]:
    fluid_ops = {n for n, ss in idx.sites.items() if any(s.kind in OP_MACROS for s in ss)}
    kernels = {
        n
        for n, ss in idx.sites.items()
        if any(s.kind in FUNCTION_KERNEL_MACROS | FLUID_KERNEL_MACROS for s in ss)
    }
    # ops that a yaml *defines* (op_compat/op_version only describe ops defined elsewhere)
    yaml_names = {
        y.name for y in idx.yaml_ops if not y.path.endswith(("op_compat.yaml", "op_version.yaml"))
    }
    return fluid_ops, kernels, yaml_names


def _dangling_macros(idx, fluid_ops, kernels, yaml_names) -> list[str]:
    out = []
    for name, sites in sorted(idx.sites.items()):
        for s in sites:
            if (
                s.kind in ("USE_OP_ITSELF", "USE_OP", "USE_OP_DEVICE_KERNEL", "USE_NO_KERNEL_OP")
                and name not in fluid_ops
                and name not in yaml_names
            ):
                out.append(f"{s.where}: {s.kind}({name}) names an op that is not registered")
            elif s.kind == "PD_DECLARE_KERNEL" and name not in kernels:
                out.append(
                    f"{s.where}: PD_DECLARE_KERNEL({name}) names a kernel that is not registered"
                )
            elif s.kind == "REGISTER_TRT_OP_CONVERTER" and name not in fluid_ops | yaml_names:
                out.append(f"{s.where}: TRT converter for unregistered op {name}")
            elif (
                s.kind in ("PD_REGISTER_ARG_MAPPING_FN", "PD_REGISTER_BASE_KERNEL_NAME")
                and name not in fluid_ops | yaml_names | kernels
            ):
                out.append(f"{s.where}: {s.kind}({name}) maps an op that is not registered")
    return out


def _missing_includes(root: Path, idx) -> list[str]:
    return [
        f"{u}: includes {target}, which does not exist"
        for target, users in sorted(idx.includes.items())
        if not (root / target).exists()
        for u in users
    ]


def _missing_cmake_sources(root: Path, idx) -> list[str]:
    out = []
    for cm, line, src in idx.cmake_sources:
        if "$" in src or "*" in src:
            continue
        if not ((root / cm).parent / src).exists() and not (root / src).exists():
            out.append(f"{cm}:{line}: CMake source {src} does not exist")
    return out


def _kernel_signatures(root: Path, idx, kernels) -> list[str]:
    """KernelSignature("k", ...) of the signature-mapping files naming a kernel nobody registers."""
    out = []
    for rel in sorted({s.path for ss in idx.sites.values() for s in ss if s.area == "sig"}):
        text = (root / rel).read_text(encoding="utf-8", errors="replace")
        for m in _KERNEL_SIG_RE.finditer(text):
            if m.group(1) not in kernels:
                out.append(
                    f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: KernelSignature names kernel "
                    f"'{m.group(1)}', which is not registered"
                )
    return out


def _yaml_checks(root: Path, kernels) -> tuple[list[str], list[str]]:
    """(problems, todos): every yaml parses, defines each op once, and names registered kernels."""
    problems, todos = [], []
    ydir = root / "paddle/phi/ops/yaml"
    for yf in sorted(ydir.rglob("*.yaml")) if ydir.is_dir() else []:
        rel = yf.relative_to(root).as_posix()
        try:
            ytext = yf.read_text(encoding="utf-8")
            todos += [
                f"{rel}:{i}: {ln.strip().lstrip('# ')}"
                for i, ln in enumerate(ytext.splitlines(), 1)
                if TODO in ln
            ]
            data = yaml.safe_load(ytext)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.append(f"{rel}: does not parse: {str(exc).splitlines()[0]}")
            continue
        seen: dict[str, int] = {}
        for item in data if isinstance(data, list) else []:
            if not isinstance(item, dict):
                continue
            key = item.get("op") or item.get("backward_op")
            if key:
                key = str(key).split("(")[0].strip()
                seen[key] = seen.get(key, 0) + 1
            kern = item.get("kernel")
            funcs = kern.get("func") if isinstance(kern, dict) else None
            for fn in re.findall(r"\w+", str(funcs or "")):
                if fn not in kernels and not fn[:1].isupper():
                    problems.append(
                        f"{rel}: op '{key}' names kernel '{fn}', which is not registered"
                    )
        problems += [f"{rel}: op '{k}' defined {n} times" for k, n in seen.items() if n > 1]
    return problems, todos


def _legacy_op_list(root: Path, fluid_ops, yaml_names) -> list[str]:
    legacy = root / "paddle/fluid/pir/dialect/operator/utils/utils.cc"
    if not legacy.exists():
        return []
    out = []
    text = legacy.read_text(encoding="utf-8", errors="replace")
    for m in re.finditer(r"\b(\w+Op)::name\(\)", text):
        n = snake_from_op_class(m.group(1))
        if n not in fluid_ops and n not in yaml_names and not n.endswith("_grad"):
            line = text.count("\n", 0, m.start()) + 1
            out.append(
                f"{legacy.relative_to(root).as_posix()}:{line}: LegacyOpList names "
                f"{m.group(1)} but op '{n}' is not registered"
            )
    return out


def tree_problems(root: Path) -> tuple[list[str], list[str], list[str], set[str]]:
    """(problems, todos, warnings, registered kernels) of one tree, whatever their origin."""
    idx = _index(root)
    fluid_ops, kernels, yaml_names = _registered(idx)
    problems = [f"{c}: merge-conflict marker" for c in idx.conflicts]
    problems += _dangling_macros(idx, fluid_ops, kernels, yaml_names)
    problems += _missing_includes(root, idx)
    problems += _missing_cmake_sources(root, idx)
    problems += _kernel_signatures(root, idx, kernels)
    yaml_problems, todos = _yaml_checks(root, kernels)
    problems += yaml_problems
    problems += _legacy_op_list(root, fluid_ops, yaml_names)
    return problems, todos, idx.warnings, kernels


def _key(problem: str) -> str:
    """A problem without its line numbers (edits above it move it)."""
    return _LINE_RE.sub("", problem)


def new_problems(now: list[str], before: list[str]) -> list[str]:
    """The problems of ``now`` that ``before`` did not have (counted, so a second copy is new)."""
    left: dict[str, int] = {}
    for p in before:
        left[_key(p)] = left.get(_key(p), 0) + 1
    out = []
    for p in now:
        k = _key(p)
        if left.get(k):
            left[k] -= 1
        else:
            out.append(p)
    return out


# --- the baseline: the untouched tree --------------------------------------------------------


def baseline_tree(root: Path, baseline: Path | None, tmp: Path) -> tuple[Path | None, str]:
    """The untouched tree to compare with: ``baseline`` if given, else the checkout's ``HEAD``
    (extracted with ``git archive``), else none (every problem is reported)."""
    if baseline is not None:
        if not Path(baseline).is_dir():
            raise MigratorError(f"{baseline}: --baseline is not a folder")
        return Path(baseline), f"--baseline {baseline}"
    if not shutil.which("git") or not (root / ".git").exists():
        return (
            None,
            "none: not a git checkout and no --baseline; every problem of the tree is reported",
        )
    dst = tmp / "baseline"
    dst.mkdir()
    arch = subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "archive",
            "HEAD",
            "--",
            "paddle",
            "test",
            "python",
            "cmake",
            "CMakeLists.txt",
        ],
        capture_output=True,
    )
    if arch.returncode != 0:
        arch = subprocess.run(["git", "-C", str(root), "archive", "HEAD"], capture_output=True)
    if arch.returncode != 0:
        return (
            None,
            f"none: git archive HEAD failed: {arch.stderr.decode(errors='replace').strip()[:200]}",
        )
    tar = subprocess.run(["tar", "-x", "-C", str(dst)], input=arch.stdout, capture_output=True)
    if tar.returncode != 0:
        return None, "none: could not unpack git archive HEAD"
    return dst, "git HEAD"


def changed_files(root: Path, base: Path, suffixes=(".cc", ".cu", ".h")) -> list[str]:
    """Files with these suffixes under ``paddle/`` that differ between the two trees."""
    out = []
    for tree, other in ((root, base), (base, root)):
        top = tree / "paddle"
        for dirpath, _dirs, files in os.walk(top) if top.is_dir() else []:
            for fn in files:
                if not fn.endswith(suffixes):
                    continue
                p = Path(dirpath) / fn
                rel = p.relative_to(tree).as_posix()
                q = other / rel
                if tree is base:
                    if not q.exists():
                        out.append(rel)  # removed
                    continue
                try:
                    if (
                        not q.exists()
                        or p.stat().st_size != q.stat().st_size
                        or p.read_bytes() != q.read_bytes()
                    ):
                        out.append(rel)
                except OSError:
                    out.append(rel)
    return sorted(set(out))


# --- compiling edited files: only what the patch broke --------------------------------------


def include_dirs(root: Path, tmp: Path, extra: list[str]) -> list[str]:
    """``-I`` flags for a tree's own C++ files: the tree, the headers its build generates from its
    own ``.proto`` files (``protoc``, when installed), ``extra`` (e.g. a build folder), the
    installed wheel's ``paddle/include`` for other generated headers, the system's Eigen."""
    flags = [f"-I{root}"]
    if shutil.which("protoc"):
        gen = tmp / ("protos-" + root.name)
        gen.mkdir(exist_ok=True)
        for proto in sorted((root / "paddle").rglob("*.proto")):
            subprocess.run(
                ["protoc", f"-I{root}", f"--cpp_out={gen}", str(proto)], capture_output=True
            )
        flags.append(f"-I{gen}")
    flags += [f"-I{d}" for d in extra]
    inc, _ = paddle_include()
    if inc is not None:
        flags += [f"-I{inc}", f"-I{inc / 'third_party'}"]
    if Path("/usr/include/eigen3").is_dir():
        flags.append("-I/usr/include/eigen3")
    return flags


def _syntax_ok(path: Path, flags: list[str], cuda: bool) -> tuple[bool, str]:
    cmd = [shutil.which("g++") or "g++", "-std=c++17", "-fsyntax-only", "-w", *flags]
    if cuda:
        text = CUDA_PRELUDE + cuda_as_cpp(path.read_text(encoding="utf-8", errors="replace"))
        proc = subprocess.run(
            cmd + ["-iquote", str(path.parent), "-x", "c++", "-"],
            input=text,
            capture_output=True,
            text=True,
        )
    else:
        proc = subprocess.run(cmd + ["-x", "c++", str(path)], capture_output=True, text=True)
    return proc.returncode == 0, proc.stderr


def compile_edited(
    root: Path, base: Path, edited: list[str], tmp: Path, extra: list[str], progress: bool = False
) -> dict:
    """``g++ -fsyntax-only`` of each edited translation unit, before and after: a file that
    compiled untouched and does not compile edited is a problem; one that did not compile
    untouched either (a header this machine lacks) is listed as not checkable."""
    units = [
        r
        for r in edited
        if r.endswith((".cc", ".cu")) and (root / r).exists() and (base / r).exists()
    ]
    if not units:
        return {"status": "skipped", "reason": "no edited C++ translation unit", "files": []}
    if not shutil.which("g++"):
        return {"status": "skipped", "reason": "g++ not found on PATH", "files": []}
    now_flags, base_flags = include_dirs(root, tmp, extra), include_dirs(base, tmp, extra)
    passed, failed, unchecked = [], [], []
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(units), unit="file", desc="g++", leave=False)
    for rel in units:
        cuda = rel.endswith(".cu")
        ok_before, err_before = _syntax_ok(base / rel, base_flags, cuda)
        if not ok_before:
            first = next((ln for ln in err_before.splitlines() if "error" in ln), err_before[:200])
            unchecked.append({"file": rel, "reason": first[-300:]})
        else:
            ok, err = _syntax_ok(root / rel, now_flags, cuda)
            (passed if ok else failed).append(rel if ok else {"file": rel, "error": err[-2000:]})
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return {
        "status": "failed" if failed else "passed",
        "files": units,
        "passed": passed,
        "failures": failed,
        "not_checkable": unchecked,
    }


def _generated(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(generated kernel files, InferMeta blocks, TODO lines) written by ``apply``."""
    generated, blocks, todos = [], [], []
    for dirpath, _dirs, files in (
        os.walk(root / "paddle/phi") if (root / "paddle/phi").is_dir() else []
    ):
        for fn in files:
            p = Path(dirpath) / fn
            if not fn.endswith((".cc", ".cu", ".h")):
                continue
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if MARK not in text:
                continue
            rel = p.relative_to(root).as_posix()
            if text.startswith("// " + MARK) and fn.endswith((".cc", ".cu")):
                generated.append(rel)
            if "/infermeta/" in rel and fn.endswith(".cc"):
                blocks += [m.group(2) for m in _BLOCK_RE.finditer(text)]
            for i, line in enumerate(text.splitlines(), 1):
                if TODO in line:
                    todos.append(f"{rel}:{i}: {line.strip()[3:]}")
    return sorted(generated), blocks, todos


def verify(
    root: Path,
    compile_check: bool = True,
    baseline: Path | None = None,
    include: list[str] | None = None,
    progress: bool = False,
) -> dict:
    """Problems the edits introduced (against the untouched tree), TODOs left, and the compiler's
    word on generated and edited C++ files."""
    root = Path(root)
    with tempfile.TemporaryDirectory(prefix="pom-verify-") as tmpname:
        tmp = Path(tmpname)
        base, how = baseline_tree(root, baseline, tmp)
        now, todos, warnings, _kernels = tree_problems(root)
        before, _, _, base_kernels = tree_problems(base) if base is not None else ([], [], [], None)
        problems = []
        for p in new_problems(now, before):
            m = _UNREGISTERED_KERNEL_RE.search(p)
            if m and base_kernels is not None and m.group(1) not in base_kernels:
                todos.append(f"{p} yet (write it)")  # named by a new entry, never registered
            elif (
                base is not None
                and ", which does not exist" in p
                and (base / p.split(": includes ", 1)[-1].split(",", 1)[0]).exists()
            ):
                problems.append(p.replace(", which does not exist", ", which was removed"))
            else:
                problems.append(p)
        generated, blocks, gen_todos = _generated(root)
        todos += gen_todos
        comp = (
            run_compile_check(root, generated, blocks)
            if compile_check
            else {"status": "skipped", "reason": "--no-compile", "files": []}
        )
        if comp["status"] == "failed":
            problems += [f"{f['file']}: g++ -fsyntax-only failed" for f in comp["failures"]]
        edited = changed_files(root, base) if base is not None else []
        if compile_check and base is not None:
            comp_edit = compile_edited(
                root, base, [e for e in edited if e not in generated], tmp, include or [], progress
            )
        else:
            comp_edit = {
                "status": "skipped",
                "files": [],
                "reason": "--no-compile" if not compile_check else "no baseline to compare with",
            }
        problems += [
            f"{f['file']}: g++ -fsyntax-only fails after the edit (passed before)"
            for f in comp_edit.get("failures", [])
        ]
    return {
        "ok": not problems,
        "problems": problems,
        "todos": todos,
        "compile": comp,
        "compile_edited": comp_edit,
        "baseline": how,
        "baseline_problems": len(before),
        "edited_files": edited,
        "warnings": warnings,
    }
