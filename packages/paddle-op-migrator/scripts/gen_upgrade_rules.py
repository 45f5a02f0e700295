"""Regenerate ``src/paddle_op_migrator/upgrade/rules.json`` from a Paddle source tree.

The upgrade rules of ``paddle-op-migrator upgrade-program`` are data read from the evidence the
planner reads, at a tree from before the retirements (the fluid OpMakers still exist):

* the retired op's own OpMaker (``paddle/fluid/operators/**``): its inputs, outputs, attributes
  and their defaults, and which attributes are ``AsExtra()``;
* ``op_compat.yaml``: which fluid op now carries the PHI name (``- op : matmul (matmul_v2)``:
  the v1 op collides with the PHI name, so its successor is ``matmul_v2``; ``- op : embedding
  (lookup_table_v2)``: the ``_v2`` successor of ``lookup_table``), the PHI <-> fluid names of
  every argument, and the successor's extra attributes;
* the op yaml (``ops.yaml``, ``inconsistent/static_ops.yaml``, ...): the successor's arguments;
* the new-communication ops (a yaml op with a ``ring_id`` argument whose name, underscores
  removed, is the collective's name without ``c_``/``mp_`` and reduce suffix) and
  ``phi::ReduceType`` (``paddle/phi/common/reduce_type.h``) for ``reduce_type``.

Slots and attributes are paired by name (fluid name, else lower-cased / snake-cased old name =
PHI name, then op_compat's PHI -> fluid name). An old attribute without a counterpart is kept in
``defaults``: the upgrade accepts it only at that default unless the op's transform consumes it.

    python scripts/gen_upgrade_rules.py --paddle-src ~/Paddle
    python scripts/gen_upgrade_rules.py --git-dir Paddle.git --commit b35679ee58fe
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from paddle_op_migrator.codegen import parse_op, snake  # noqa: E402
from paddle_op_migrator.lists import load_list  # noqa: E402

OUT = HERE.parent / "src" / "paddle_op_migrator" / "upgrade" / "rules.json"
YAMLS = (
    "paddle/phi/ops/yaml/inconsistent/static_ops.yaml",
    "paddle/phi/ops/yaml/ops.yaml",
    "paddle/phi/ops/yaml/legacy/static_ops.yaml",
    "paddle/phi/ops/yaml/fused_ops.yaml",
)
# Transforms implemented in ``upgrade/rewrite.py`` (semantics that no yaml states: the v1
# kernels' own arithmetic, read from their fluid sources).
TRANSFORMS = {
    "matmul": "fold_alpha",
    "lookup_table": "squeeze_ids",
    "crop": "crop_reference",
    "reshape": "add_xshape",
    "generate_proposals": "im_info_to_im_shape",
    **{
        f"{m}_interp": "interp_v1"
        for m in ("bilinear", "nearest", "linear", "bicubic", "trilinear")
    },
}
# no successor op: rebuilt from current ops (lod_reset only relabels LoD, which PIR tensors lack;
# Paddle 3.3.1 still registers it but its translated program fails at run time)
DECOMPOSE = {"soft_relu", "data_norm", "lod_reset"}
SINGLE_CARD_IDENTITY = {"c_identity", "c_sync_calc_stream", "c_sync_comm_stream", "c_concat",
                        "c_split", "c_broadcast"}  # fmt: skip


class Tree:
    def __init__(self, root: str | None, git_dir: str | None, commit: str | None) -> None:
        self.root, self.git_dir, self.commit = root, git_dir, commit
        self._texts: dict[str, dict[str, str]] = {}

    def read(self, path: str) -> str:
        if self.root:
            return (Path(self.root) / path).read_text(encoding="utf-8", errors="replace")
        out = subprocess.run(["git", "--git-dir", self.git_dir, "show", f"{self.commit}:{path}"],
                             capture_output=True, check=True)  # fmt: skip
        return out.stdout.decode("utf-8", "replace")

    def files(self, prefix: str) -> list[str]:
        if self.root:
            base = Path(self.root)
            return sorted(
                str(p.relative_to(base)) for p in (base / prefix).rglob("*") if p.is_file()
            )
        out = subprocess.run(["git", "--git-dir", self.git_dir, "ls-tree", "-r", "--name-only",
                              self.commit, prefix], capture_output=True, check=True, text=True)  # fmt: skip
        return out.stdout.split()

    def grep(self, pattern: str, prefix: str) -> list[str]:
        if self.root:
            rx = re.compile(pattern)
            if prefix not in self._texts:  # read the C++ sources once, then search in memory
                self._texts[prefix] = {f: self.read(f) for f in self.files(prefix)
                                       if f.endswith((".cc", ".h"))}  # fmt: skip
            return [f for f, text in self._texts[prefix].items() if rx.search(text)]
        out = subprocess.run(["git", "--git-dir", self.git_dir, "grep", "-l", "-E", pattern,
                              self.commit, "--", prefix], capture_output=True, text=True)  # fmt: skip
        return [line.split(":", 1)[1] for line in out.stdout.split()]


def _line(text: str, needle: str) -> int:
    i = text.find(needle)
    return text.count("\n", 0, i) + 1 if i >= 0 else 0


def parse_compat(text: str) -> dict:
    """PHI name -> {fluid, inputs/outputs/attrs (PHI -> fluid), extra, line}."""
    out = {}
    for entry in yaml.safe_load(text) or []:
        m = re.match(r"\s*(\w+)\s*(?:\((\w+)\))?", str(entry.get("op", "")))
        if not m:
            continue
        phi, fluid = m.group(1), m.group(2) or m.group(1)
        maps = {}
        for key in ("inputs", "outputs", "attrs"):
            v = entry.get(key) or {}
            maps[key] = {str(k): str(x) for k, x in v.items()} if isinstance(v, dict) else {}
        extra = [
            str(a).split("=")[0].split()[-1] for a in (entry.get("extra") or {}).get("attrs", [])
        ]
        # IntArray / Scalar arguments that a tensor input may carry (crop_tensor's Offsets)
        tensors = [str(t[k]) for key in ("int_array", "scalar") for t in (entry.get(key) or {}).values()
                   if isinstance(t, dict) for k in ("tensor_name", "tensors_name") if k in t]  # fmt: skip
        out[phi] = {"fluid": fluid, **maps, "extra": extra, "tensor_args": tensors,
                    "line": _line(text, f"- op : {entry['op']}")}  # fmt: skip
    return out


def parse_yaml_args(text: str) -> dict:
    """PHI op -> [(type, name, default)] of its args."""
    out = {}
    for entry in yaml.safe_load(text) or []:
        op, args = entry.get("op"), entry.get("args")
        if not op or not args or op in out:
            continue
        items = []
        for part in re.split(r",(?![^{(]*[})])", args.strip()[1:-1]):
            part = part.strip()
            if not part:
                continue
            decl, _, default = part.partition("=")
            bits = decl.split()
            items.append((" ".join(bits[:-1]), bits[-1], default.strip() or None))
        out[op] = items
    return out


def cpp_literal(text: str):
    """A C++ default value as JSON (``1.0f`` -> 1.0, ``"NCHW"``, ``{}`` -> [], ``false``)."""
    t = text.strip()
    t = re.sub(r"^(?:static_cast<[^>]+>|(?:std::)?\w+(?:<[^>]*>)?)\((.*)\)$", r"\1", t).strip()
    if t in ("true", "false"):
        return t == "true"
    if t.startswith('"') and t.endswith('"'):
        return t[1:-1]
    if t.startswith("{") and t.endswith("}"):
        inner = t[1:-1].strip()
        return [cpp_literal(x) for x in inner.split(",")] if inner else []
    m = re.fullmatch(r"([-+]?[\d.]+(?:e[-+]?\d+)?)[fFlLuU]*", t)
    if m:
        num = m.group(1)
        return float(num) if any(c in num for c in ".e") else int(num)
    return None  # not a literal: such an attribute can never be checked, so it is a hard stop


def _extra_attrs(text: str) -> set[str]:
    found = set()
    for m in re.finditer(r'AddAttr\s*<[^>]+>\s*\(\s*"(\w+)"', text):
        end = text.find(";", m.start())
        if ".AsExtra()" in text[m.start() : end]:
            found.add(m.group(1))
    return found


def _local_headers(tree: Tree, text: str) -> str:
    out = []
    for inc in re.findall(r'#include\s+"(paddle/fluid/operators/[\w/]+\.h)"', text):
        try:
            out.append(tree.read(inc))
        except (OSError, subprocess.CalledProcessError):
            pass
    return "\n".join(out)


def find_maker(tree: Tree, op: str):
    """(path, OpSpec, text) of the fluid op's OpMaker: its registration (any macro form, the
    maker possibly in an included header), else the ``<Camel>OpMaker`` class by convention."""
    camel = "".join(w.capitalize() for w in op.split("_"))
    candidates = [
        f for f in tree.grep(r"\b" + op + r"\b", "paddle/fluid/operators") if f.endswith(".cc")
    ]
    candidates.sort(key=lambda f: (Path(f).name != f"{op}_op.cc", len(f)))
    for path in candidates:
        text = tree.read(path)
        headers = _local_headers(tree, text)
        spec = parse_op(text, op, headers)
        if spec is None and re.search(r"class\s+" + camel + r"OpMaker\b", text):
            spec = parse_op(
                text + f"\nREGISTER_OPERATOR({op}, {camel}Op, {camel}OpMaker);\n", op, headers
            )
        if spec is None:  # a maker that only names itself (GetName) over a base maker
            reg = re.search(r"REGISTER_OP\w*\(\s*" + op + r"\s*,([^;]*?)\)", text, re.S)
            for maker in re.findall(r"(\w+OpMaker)\b", reg.group(1) if reg else ""):
                base = re.search(
                    r"class\s+" + maker + r"\s*:\s*public\s+(?:\w+::)*(\w+OpMaker)\b", text
                )
                if base:
                    fake = f"\nREGISTER_OPERATOR({op}, {camel}Op, {base.group(1)});\n"
                    spec = parse_op(fake + text.replace(f"({op},", "(_,"), op, headers)
                    break
        if spec is not None and (spec.inputs or spec.attrs):
            return path, spec, text + "\n" + headers
    return None


def _pair(old: str, new_fluid: list[str], phi_to_fluid: dict) -> str | None:
    if old in new_fluid:
        return old
    for cand in (old.lower(), snake(old)):
        if cand in phi_to_fluid:
            return phi_to_fluid[cand]
        if cand in new_fluid:
            return cand
    return None


def successor(op: str, compat: dict, yaml_args: dict, reduce_types: list[str]):
    """(kind, new fluid type, PHI name, extra attrs) for a retired op, or None."""
    if op in compat and compat[op]["fluid"] != op:  # v1 collides with the PHI name
        return "rename", compat[op]["fluid"], op, {}
    for phi, c in compat.items():
        if c["fluid"] == f"{op}_v2":
            return "rename", c["fluid"], phi, {}
    norm = re.sub(r"^(c|mp)_", "", op)
    m = re.search(r"_(sum|max|min|prod|avg)$", norm)
    suffix = m.group(1) if m else None
    norm = re.sub(r"_(sum|max|min|prod|avg)$", "", norm).replace("_", "")
    if norm != op.replace("_", ""):
        for phi, args in yaml_args.items():
            if phi.replace("_", "") == norm and any(a[1] == "ring_id" for a in args):
                extra = {}
                if suffix and any(a[1] == "reduce_type" for a in args):
                    key = "kRed" + suffix.capitalize()
                    if key not in reduce_types:
                        return None
                    extra["reduce_type"] = reduce_types.index(key)
                return "new-comm", compat.get(phi, {}).get("fluid", phi), phi, extra
    return None


def build(tree: Tree, label: str) -> dict:
    compat_text = tree.read("paddle/phi/ops/yaml/op_compat.yaml")
    compat = parse_compat(compat_text)
    yaml_args: dict = {}
    for path in YAMLS:
        try:
            for k, v in parse_yaml_args(tree.read(path)).items():
                yaml_args.setdefault(k, v)
        except (OSError, subprocess.CalledProcessError):
            pass
    try:
        rt = tree.read("paddle/phi/common/reduce_type.h")
    except (OSError, subprocess.CalledProcessError):
        rt = ""  # no enum: reducing collectives get no rule (their reduce_type would be a guess)
    reduce_types = re.findall(r"\b(kRed\w+)", rt[rt.find("enum class ReduceType") :].split("}")[0])
    ops = sorted({e.name for e in load_list("all") if not e.name.endswith("_grad")})
    rules, skipped = {}, {}
    for op in ops:
        found = find_maker(tree, op)
        succ = successor(op, compat, yaml_args, reduce_types)
        if found is None:
            skipped[op] = (
                "no fluid OpMaker registers it in this tree (kernel name, or already gone)"
            )
            continue
        path, spec, text = found
        extra = _extra_attrs(text)
        old_attrs = {a.name: cpp_literal(a.default) if a.default else None for a in spec.attrs}
        rule = {
            "old_inputs": [a.name for a in spec.inputs],
            "old_outputs": [a.name for a in spec.outputs],
            "evidence": [f"{path}:{_line(text, 'AddInput') or _line(text, 'AddAttr')}"],
        }
        if succ is not None and succ[1] in ops:
            skipped[op] = f"its successor {succ[1]} is retired too"
            continue
        if succ is None and op not in DECOMPOSE and op not in SINGLE_CARD_IDENTITY:
            skipped[op] = "no successor in op_compat.yaml / the op yaml, and no decomposition"
            continue
        if succ is None:
            kind, new, phi, fixed = "decompose" if op in DECOMPOSE else "identity", None, None, {}
        else:
            kind, new, phi, fixed = succ
        rule.update(kind=kind, new_type=new, phi=phi, transform=TRANSFORMS.get(op))
        if op in SINGLE_CARD_IDENTITY:
            rule["single_card"] = "identity"
        inputs, outputs, attrs, defaults, dropped = {}, {}, {}, {}, []
        if phi:
            c = compat.get(phi, {"inputs": {}, "outputs": {}, "attrs": {}, "extra": []})
            args = yaml_args.get(phi, [])
            new_in = [c["inputs"].get(n, n) for t, n, _ in args if t.startswith("Tensor")]
            new_in += c.get("tensor_args", [])
            new_attr = [c["attrs"].get(n, n) for t, n, _ in args if not t.startswith("Tensor")]
            if phi in compat:
                rule["evidence"].append(f"paddle/phi/ops/yaml/op_compat.yaml:{compat[phi]['line']}")
            for a in spec.inputs:
                inputs[a.name] = _pair(a.name, new_in, c["inputs"])
            outs = list(c["outputs"].values()) or ["out"]
            for a in spec.outputs:
                outputs[a.name] = _pair(a.name, outs, c["outputs"])
            for a in spec.attrs:
                target = _pair(a.name, new_attr, c["attrs"])
                if target:
                    attrs[a.name] = target
                elif a.name in extra or a.name in c["extra"] or kind == "new-comm":
                    # new-comm ops keep only what they declare (stream and calc-stream choices
                    # belong to the new communication library), as the planner's replacement does
                    dropped.append(a.name)
                else:
                    defaults[a.name] = old_attrs[a.name]
            rule["new_attrs"] = {
                c["attrs"].get(n, n): d for t, n, d in args if not t.startswith("Tensor")
            }
        else:
            for a in spec.attrs:
                (
                    dropped.append(a.name)
                    if a.name in extra
                    else defaults.__setitem__(a.name, old_attrs[a.name])
                )
        rule.update(inputs=inputs, outputs=outputs, attrs=attrs, defaults=defaults,
                    dropped=sorted(dropped), fixed_attrs=fixed)  # fmt: skip
        rules[op] = rule
    return {"schema": "paddle-op-migrator/upgrade-rules/1", "evidence_tree": label,
            "rules": rules, "not_rewritten": skipped}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--paddle-src", help="a PaddlePaddle/Paddle checkout from before the retirements"
    )
    p.add_argument("--git-dir", help="or a (bare) git directory of Paddle ...")
    p.add_argument("--commit", help="... and the commit to read")
    p.add_argument("--out", default=str(OUT), help="rules JSON to write (default: the package's)")
    a = p.parse_args(argv)
    if not a.paddle_src and not (a.git_dir and a.commit):
        p.error("give --paddle-src DIR, or --git-dir DIR and --commit C")
    tree = Tree(a.paddle_src, a.git_dir, a.commit)
    label = f"PaddlePaddle/Paddle@{a.commit}" if a.commit else "PaddlePaddle/Paddle checkout"
    data = build(tree, label)
    Path(a.out).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(
        f"{len(data['rules'])} rules, {len(data['not_rewritten'])} ops without a rule; wrote {a.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
