"""Checks of a tree after ``apply``: dangling references, CMake sources, yaml, and a real
``g++ -std=c++17 -fsyntax-only`` of every generated C++ file against an installed Paddle wheel's
``paddle/include`` (skipped, with the reason, when there is no compiler or no wheel)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from .codegen import MARK, TODO
from .cpp import snake_from_op_class, statement_end
from .scanner import FLUID_KERNEL_MACROS, FUNCTION_KERNEL_MACROS, OP_MACROS, build_index

_BLOCK_RE = re.compile(r"// " + MARK + r": begin (\w+)\n(.*?)// " + MARK + r": end \1\n", re.S)


def paddle_include() -> tuple[Path | None, str]:
    """The installed wheel's ``paddle/include``, found without importing paddle."""
    spec = importlib.util.find_spec("paddle")
    if spec is None or not spec.origin:
        return None, ("no installed Paddle wheel: pip install paddlepaddle (or paddlepaddle-gpu) "
                      "to compile-check generated files against its paddle/include")
    inc = Path(spec.origin).parent / "include"
    if not (inc / "paddle/phi/core/kernel_registry.h").exists():
        return None, f"{inc}: the installed paddle has no paddle/include/paddle/phi headers"
    return inc, ""


def _gxx(files: list[Path], inc: Path, root: Path) -> tuple[bool, str]:
    cmd = [shutil.which("g++") or "g++", "-std=c++17", "-fsyntax-only", "-w", f"-I{root}", f"-I{inc}",
           f"-I{inc / 'third_party'}"]  # the tree first: its (generated) headers win
    proc = subprocess.run(cmd + ["-x", "c++"] + [str(f) for f in files], capture_output=True, text=True)
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
        out += [text[pos:m.start()], "#if 0  // GPU registration: needs a CUDA build\n",
                text[m.start():end], "\n#endif\n"]
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
            lines += ["#include <string>", "#include <vector>", '#include "paddle/phi/core/meta_tensor.h"',
                      '#include "paddle/common/enforce.h"', "namespace phi {", *infermeta_blocks, "}"]
        units.append((Path(tmp) / "generated_cpu.cc", lines, cc))
        if cu:
            # .cu files are checked as C++ (no nvcc here): the kernel function, its body and the
            # __global__/__device__ helpers it carries; a live GPU registration is not compiled
            gpu_lines = [CUDA_PRELUDE]
            for g in cu:
                text = (root / g).read_text(encoding="utf-8")
                conv = cuda_as_cpp(text)
                if "#if 0  // GPU registration" in conv and "#if 0\nPD_REGISTER_KERNEL" not in text:
                    notes.append(f"{g}: GPU registration not compiled (needs a CUDA build of the headers); "
                                 "kernel and device helpers checked as C++")
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
            bad = sorted({g for g in members for m in re.finditer(r"^(\S+?):\d+:\d+: error", err, re.M)
                          if m.group(1).endswith(g)})
            for g in bad or ["(InferMeta blocks)" if tu.name == "generated_cpu.cc" and infermeta_blocks
                             else "(" + tu.name + ")"]:
                failures.append({"file": g, "error": err[-2000:]})
    return {"status": "failed" if failures else "passed", "files": cc + cu + ["InferMeta blocks"] * bool(infermeta_blocks),
            "failures": failures, "include": str(inc), "not_compiled": notes}


def _removed_files(root: Path) -> tuple[set[str], str]:
    """Files removed relative to the checkout's HEAD (needs git; else the check is skipped)."""
    if not shutil.which("git") or not (root / ".git").exists():
        return set(), "skipped: not a git checkout, removed files unknown"
    proc = subprocess.run(["git", "-C", str(root), "diff", "--name-only", "--diff-filter=D", "HEAD"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return set(), f"skipped: git diff failed: {proc.stderr.strip()[:200]}"
    return set(proc.stdout.split()), "git diff --diff-filter=D HEAD"


def verify(root: Path, compile_check: bool = True) -> dict:
    root = Path(root)
    idx = build_index(root, set())
    problems: list[str] = [f"{c}: merge-conflict marker" for c in idx.conflicts]
    todos: list[str] = []
    fluid_ops = {n for n, ss in idx.sites.items() if any(s.kind in OP_MACROS for s in ss)}
    kernels = {n for n, ss in idx.sites.items()
               if any(s.kind in FUNCTION_KERNEL_MACROS | FLUID_KERNEL_MACROS for s in ss)}
    # ops that a yaml *defines* (op_compat/op_version only describe ops defined elsewhere)
    yaml_names = {y.name for y in idx.yaml_ops
                  if not y.path.endswith(("op_compat.yaml", "op_version.yaml"))}
    for name, sites in sorted(idx.sites.items()):
        for s in sites:
            if s.kind in ("USE_OP_ITSELF", "USE_OP", "USE_OP_DEVICE_KERNEL", "USE_NO_KERNEL_OP") \
                    and name not in fluid_ops and name not in yaml_names:
                problems.append(f"{s.where}: {s.kind}({name}) names an op that is not registered")
            elif s.kind == "PD_DECLARE_KERNEL" and name not in kernels:
                problems.append(f"{s.where}: PD_DECLARE_KERNEL({name}) names a kernel that is not registered")
            elif s.kind == "REGISTER_TRT_OP_CONVERTER" and name not in fluid_ops | yaml_names:
                problems.append(f"{s.where}: TRT converter for unregistered op {name}")
    removed, how = _removed_files(root)
    for target, users in sorted(idx.includes.items()):
        if target in removed:
            problems += [f"{u}: includes {target}, which was removed" for u in users]
    for cm, line, src in idx.cmake_sources:
        if "$" in src or "*" in src:
            continue
        base = (root / cm).parent
        if not (base / src).exists() and not (root / src).exists():
            problems.append(f"{cm}:{line}: CMake source {src} does not exist")
    ydir = root / "paddle/phi/ops/yaml"
    for yf in sorted(ydir.rglob("*.yaml")) if ydir.is_dir() else []:
        rel = yf.relative_to(root).as_posix()
        try:
            ytext = yf.read_text(encoding="utf-8")
            todos += [f"{rel}:{i}: {ln.strip().lstrip('# ')}" for i, ln in enumerate(ytext.splitlines(), 1)
                      if TODO in ln]
            data = yaml.safe_load(ytext)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.append(f"{rel}: does not parse: {str(exc).splitlines()[0]}")
            continue
        seen: dict[str, int] = {}
        for item in data or []:
            if isinstance(item, dict):
                key = item.get("op") or item.get("backward_op")
                if key:
                    key = str(key).split("(")[0].strip()
                    seen[key] = seen.get(key, 0) + 1
        problems += [f"{rel}: op '{k}' defined {n} times" for k, n in seen.items() if n > 1]
    legacy = root / "paddle/fluid/pir/dialect/operator/utils/utils.cc"
    if legacy.exists():
        text = legacy.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r"\b(\w+Op)::name\(\)", text):
            n = snake_from_op_class(m.group(1))
            if n not in fluid_ops and n not in yaml_names and not n.endswith("_grad"):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"{legacy.relative_to(root).as_posix()}:{line}: LegacyOpList names "
                                f"{m.group(1)} but op '{n}' is not registered")
    generated, blocks = [], []
    for dirpath, _dirs, files in os.walk(root / "paddle/phi") if (root / "paddle/phi").is_dir() else []:
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
    comp = (run_compile_check(root, sorted(generated), blocks) if compile_check
            else {"status": "skipped", "reason": "--no-compile", "files": []})
    if comp["status"] == "failed":
        problems += [f"{f['file']}: g++ -fsyntax-only failed" for f in comp["failures"]]
    return {"ok": not problems, "problems": problems, "todos": todos, "compile": comp,
            "removed_files": sorted(removed), "removed_files_check": how,
            "warnings": idx.warnings}
