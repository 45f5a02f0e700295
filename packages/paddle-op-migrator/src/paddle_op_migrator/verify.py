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
from .cpp import snake_from_op_class
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


def run_compile_check(root: Path, generated: list[str], infermeta_blocks: list[str]) -> dict:
    if not generated and not infermeta_blocks:
        return {"status": "skipped", "reason": "no generated C++ files", "files": []}
    if not shutil.which("g++"):
        return {"status": "skipped", "reason": "g++ not found on PATH", "files": []}
    inc, why = paddle_include()
    if inc is None:
        return {"status": "skipped", "reason": why, "files": []}
    cc = [g for g in generated if g.endswith(".cc")]
    skipped = []
    for g in (g for g in generated if g.endswith(".cu")):
        # a GPU kernel still under "#if 0" (TODO body) is plain C++: check it; a live GPU
        # registration needs nvcc and a CUDA build of the headers
        text = (root / g).read_text(encoding="utf-8")
        (cc if "#if 0\nPD_REGISTER_KERNEL" in text else skipped).append(g)
    cu = [g for g in cc if g.endswith(".cu")]
    cc = [g for g in cc if not g.endswith(".cu")]
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
            units.append((Path(tmp) / "generated_gpu.cc", [f'#include "{(root / g).resolve()}"' for g in cu], cu))
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
    cc = cc + cu
    return {"status": "failed" if failures else "passed", "files": cc + ["InferMeta blocks"] * bool(infermeta_blocks),
            "failures": failures, "include": str(inc),
            "not_compiled": [f"{g}: CUDA source, needs nvcc" for g in skipped]}


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
            data = yaml.safe_load(yf.read_text(encoding="utf-8"))
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
