"""Rewrite every retired operator of a program into its current equivalent.

The rules are data (``rules.json``, regenerated from a Paddle tree by
``scripts/gen_upgrade_rules.py``): which op succeeds the retired one and how slots and
attributes are renamed. What no yaml states, the retired kernels' own arithmetic, is a named
transform here (v1 interp sizes, ``alpha`` of ``matmul``, the trailing 1 of ``lookup_table``
ids, ...). An op instance that no rule can carry over exactly is a *problem*; all problems of a
program are reported together and nothing is written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .program import (
    FRAMEWORK_ATTRS,
    PROVENANCE_ATTRS,
    BlockEditor,
    attrs_of,
    make_op,
    set_attr,
    slot_args,
)

FLOAT32, INT32, INT64 = 5, 2, 3
_KIND_OF = {0: "INT", 1: "FLOAT", 2: "STRING", 3: "INTS", 4: "FLOATS", 5: "STRINGS", 6: "BOOLEAN",
            7: "BOOLEANS", 9: "LONG", 11: "LONGS", 15: "FLOAT64", 12: "FLOAT64S"}  # fmt: skip


def load_rules() -> dict:
    text = resources.files(__package__).joinpath("rules.json").read_text(encoding="utf-8")
    return json.loads(text)


@dataclass
class Report:
    rewritten: dict = field(default_factory=dict)  # old type -> count
    created: list = field(default_factory=list)  # (block, op index) of ops made by a rewrite
    problems: list = field(default_factory=list)  # "block b op i (type): why"
    notes: list = field(default_factory=list)


class Unmappable(Exception):
    pass


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


class Rewriter:
    def __init__(self, rules: dict | None = None, *, collectives: str = "single-card") -> None:
        data = rules or load_rules()
        self.rules = data["rules"]
        self.collectives = collectives

    # -- generic renaming -------------------------------------------------------------------
    def _renamed(self, op, rule, consumed: set[str], new_type: str | None = None):
        attrs = attrs_of(op)
        kinds = {a.name: a.type for a in op.attrs}
        inputs, outputs = {}, {}
        for slots, mapping, out, what in ((op.inputs, rule["inputs"], inputs, "input"),
                                          (op.outputs, rule["outputs"], outputs, "output")):  # fmt: skip
            for s in slots:
                if not s.arguments or s.parameter in consumed:
                    continue
                target = mapping.get(s.parameter)
                if target is None:
                    raise Unmappable(
                        f"{what} {s.parameter} has no counterpart in {rule['new_type']}"
                    )
                out[target] = list(s.arguments)
        new_attrs = []
        for name, value in attrs.items():
            if name in consumed or name in rule["dropped"]:
                continue
            if name in rule["attrs"]:
                new_attrs.append((rule["attrs"][name], _KIND_OF[kinds[name]], value))
            elif name in FRAMEWORK_ATTRS:
                continue
            elif name in rule["defaults"]:
                if not _same(value, rule["defaults"][name]):
                    raise Unmappable(
                        f"attribute {name}={value!r} has no counterpart in {rule['new_type']} "
                        f"(only the default {rule['defaults'][name]!r} can be carried over)"
                    )
            elif value not in (None, False, 0, 0.0, "", []):
                # not in the OpMaker the rule was made from (an older or newer op version):
                # an empty value is harmless, anything else could change the result
                raise Unmappable(f"attribute {name}={value!r} is not known to the rule")
        for name, value in rule.get("fixed_attrs", {}).items():
            new_attrs.append((name, "INT", value))
        return make_op(new_type or rule["new_type"], inputs, outputs, new_attrs, like=op)

    def _check_defaults(self, op, rule, consumed: set[str]) -> None:
        for name, value in attrs_of(op).items():
            if name in consumed or name not in rule["defaults"]:
                continue
            if not _same(value, rule["defaults"][name]):
                raise Unmappable(
                    f"attribute {name}={value!r} (only {rule['defaults'][name]!r} is supported)"
                )

    # -- the program ------------------------------------------------------------------------
    def rewrite(self, prog, known_ops: set[str] | None = None) -> Report:
        """Rewrite ``prog`` in place. ``known_ops``: op types the target Paddle registers (an
        op with a rule that cannot be carried over is kept when the target still knows it)."""
        rep = Report()
        for b, block in enumerate(prog.blocks):
            ed = BlockEditor(block)
            old_ops = list(block.ops)
            new_ops, created = [], []
            for i, op in enumerate(old_ops):
                rule = self.rules.get(op.type)
                if rule is None:
                    new_ops.append(op)
                    continue
                try:
                    made = self._apply(op, rule, ed)
                except Unmappable as exc:
                    if known_ops is not None and op.type in known_ops:
                        rep.notes.append(f"block {b} op {i} ({op.type}) kept as is: {exc}")
                        new_ops.append(op)
                    else:
                        rep.problems.append(f"block {b} op {i} ({op.type}): {exc}")
                    continue
                rep.rewritten[op.type] = rep.rewritten.get(op.type, 0) + 1
                for m in made:
                    created.append(len(new_ops))
                    new_ops.append(m)
            copies = [type(old_ops[0])() for _ in new_ops] if new_ops else []
            for c, o in zip(copies, new_ops):
                c.CopyFrom(o)
            del block.ops[:]
            block.ops.extend(copies)
            rep.created += [(b, i) for i in created]
        return rep

    def _apply(self, op, rule, ed: BlockEditor) -> list:
        kind = rule["kind"]
        if (
            kind in ("identity", "new-comm")
            and self.collectives == "single-card"
            and (rule.get("single_card") == "identity" or kind == "new-comm")
        ):
            return self._single_card_identity(op, rule)
        if kind == "new-comm":
            return [self._renamed(op, rule, set())]
        if kind == "identity":
            raise Unmappable(
                "a collective without a new-communication op (use --collectives single-card)"
            )
        if kind == "decompose":
            return getattr(self, f"_t_{op.type}")(op, rule, ed)
        transform = rule.get("transform")
        if transform:
            return getattr(self, f"_t_{transform}")(op, rule, ed)
        return [self._renamed(op, rule, set())]

    # -- transforms -------------------------------------------------------------------------
    def _single_card_identity(self, op, rule) -> list:
        """On one card every collective of the lists returns its input: ``assign``."""
        attrs = attrs_of(op)
        if attrs.get("nranks", 1) not in (1, 0):
            raise Unmappable(f"nranks={attrs['nranks']}: not a single-card program")
        ins = [s for s in op.inputs if s.arguments]
        outs = [s for s in op.outputs if s.arguments]
        if (
            len(ins) != 1
            or len(outs) != 1
            or len(ins[0].arguments) != 1
            or len(outs[0].arguments) != 1
        ):
            raise Unmappable("expected one input and one output")
        x, out = ins[0].arguments[0], outs[0].arguments[0]
        return [make_op("assign", {"X": [x]}, {"Out": [out]}, [], like=op)]

    def _t_fold_alpha(self, op, rule, ed) -> list:
        """matmul v1 -> matmul_v2 (transposes renamed) and ``scale`` by ``alpha`` when != 1."""
        alpha = attrs_of(op).get("alpha", 1.0)
        new = self._renamed(op, rule, {"alpha"})
        xs, ys = ed.dims(slot_args(op.inputs, "X")[0]), ed.dims(slot_args(op.inputs, "Y")[0])
        out = slot_args(op.outputs, "Out")[0]
        made = [new]
        # two vectors: matmul_v2 gives a 0-d tensor; programs saved before Paddle 2.5 declare
        # the v1 result as [1] (their readers expect that shape), later ones as 0-d
        vectors = (
            xs is not None
            and ys is not None
            and len(xs) == 1
            and len(ys) == 1
            and ed.dims(out) == [1]
        )
        if _same(alpha, 1.0) and not vectors:
            return made
        tmp = ed.new_var(out, ed.dtype(out), ed.dims(out))
        _rename_output(new, "Out", tmp)
        cur = tmp
        if not _same(alpha, 1.0):
            nxt = out if not vectors else ed.new_var(out, ed.dtype(out), ed.dims(out))
            made.append(make_op("scale", {"X": [cur]}, {"Out": [nxt]},
                                [("scale", "FLOAT", float(alpha)), ("bias", "FLOAT", 0.0),
                                 ("bias_after_scale", "BOOLEAN", True)], like=op))  # fmt: skip
            cur = nxt
        if vectors:
            made.append(self._reshape(cur, out, [1], ed, op))
        return made

    def _reshape(self, x, out, shape, ed, like):
        xshape = ed.new_var(out + ".xshape", ed.dtype(x), [0, *(ed.dims(x) or [])])
        return make_op("reshape2", {"X": [x]}, {"Out": [out], "XShape": [xshape]},
                       [("shape", "INTS", list(shape))], like=like)  # fmt: skip

    def _t_squeeze_ids(self, op, rule, ed) -> list:
        """lookup_table v1 requires ids [..., 1] and drops that 1; lookup_table_v2 keeps every
        ids dimension: squeeze the last axis first."""
        ids = slot_args(op.inputs, "Ids")[0]
        dims = ed.dims(ids) or [-1, 1]
        sq_dims = dims[:-1] or [1]
        sq = ed.new_var(ids, ed.dtype(ids), sq_dims)
        xshape = ed.new_var(ids + ".xshape", ed.dtype(ids), [0, *dims])
        squeeze = make_op("squeeze2", {"X": [ids]}, {"Out": [sq], "XShape": [xshape]},
                          [("axes", "INTS", [len(dims) - 1])], like=op)  # fmt: skip
        new = self._renamed(op, rule, set())
        for s in new.inputs:
            if s.parameter == "Ids":
                del s.arguments[:]
                s.arguments.append(sq)
        return [squeeze, new]

    def _t_add_xshape(self, op, rule, ed) -> list:
        """reshape v1 -> reshape2, which also outputs XShape."""
        new = self._renamed(op, rule, set())
        x = slot_args(op.inputs, "X")[0]
        xshape = ed.new_var(x + ".xshape", ed.dtype(x), [0, *(ed.dims(x) or [])])
        s = new.outputs.add()
        s.parameter = "XShape"
        s.arguments.append(xshape)
        return [new]

    def _t_crop_reference(self, op, rule, ed) -> list:
        """crop v1 -> crop_tensor; a reference input Y gives its shape as the Shape tensor."""
        y = slot_args(op.inputs, "Y")
        new = self._renamed(op, rule, {"Y"})
        if not y:
            return [new]
        shape = ed.new_var(y[0] + ".shape", INT32, [len(ed.dims(y[0]) or [0])])
        made = [make_op("shape", {"Input": [y[0]]}, {"Out": [shape]}, [], like=op)]
        s = new.inputs.add()
        s.parameter = "Shape"
        s.arguments.append(shape)
        return [*made, new]

    def _t_im_info_to_im_shape(self, op, rule, ed) -> list:
        """generate_proposals v1 -> v2. v1 clips to ImInfo's (h, w) as v2 clips to ImShape, but
        filters box sizes after dividing by ImInfo's image scale (a run-time value); both clamp
        ``min_size`` to at least 1, and with ``min_size <= 1`` the scale drops out of the test
        (w / scale + 1 >= 1 iff w + 1 >= 1), so only then are the two the same."""
        min_size = float(attrs_of(op).get("min_size", 0.1))
        if min_size > 1.0:
            raise Unmappable(
                f"min_size={min_size:g} > 1 is divided by ImInfo's run-time image scale in v1, "
                "which generate_proposals_v2 cannot express"
            )
        im_info = slot_args(op.inputs, "ImInfo")
        new = self._renamed(op, rule, {"ImInfo"})
        made = []
        if im_info:
            dims = ed.dims(im_info[0]) or [-1, 3]
            shape = ed.new_var(im_info[0] + ".hw", ed.dtype(im_info[0]), [dims[0], 2])
            made.append(make_op("slice", {"Input": [im_info[0]]}, {"Out": [shape]},
                                [("axes", "INTS", [1]), ("starts", "INTS", [0]), ("ends", "INTS", [2]),
                                 ("decrease_axis", "INTS", []), ("infer_flags", "INTS", [1])], like=op))  # fmt: skip
            s = new.inputs.add()
            s.parameter = "ImShape"
            s.arguments.append(shape)
        set_attr(new, "pixel_offset", "BOOLEAN", True)
        return [*made, new]

    def _t_interp_v1(self, op, rule, ed) -> list:
        """v1 interp -> *_interp_v2 with the v1 kernel's own size and ratio rules.

        v1 computes the output size from ``SizeTensor``, else ``OutSize``, else ``Scale`` /
        ``scale`` (``int(in * scale)``), else ``out_d/h/w``, and always derives the sampling
        ratio from the two sizes. v2 derives the ratio from ``scale`` whenever one is given, so
        the upgraded op gets sizes only: static sizes as attributes, otherwise an ``OutSize``
        tensor computed as v1 did."""
        a = attrs_of(op)
        consumed = {"scale", "Scale"}
        has_size = bool(slot_args(op.inputs, "SizeTensor") or slot_args(op.inputs, "OutSize"))
        new = self._renamed(op, rule, consumed)
        set_attr(new, "scale", "FLOATS", [])
        if has_size:
            return [new]
        scale_t = slot_args(op.inputs, "Scale")
        scale = float(a.get("scale", 0.0) or 0.0)
        if not scale_t and scale <= 0:
            return [new]
        x = slot_args(op.inputs, "X")[0]
        dims = ed.dims(x)
        if dims is None:
            raise Unmappable("the input's rank is unknown")
        layout = a.get("data_layout", "NCHW")
        spatial = (
            list(range(2, len(dims))) if layout.startswith("NC") else list(range(1, len(dims) - 1))
        )
        names = {3: ["out_w"], 4: ["out_h", "out_w"], 5: ["out_d", "out_h", "out_w"]}[len(dims)]
        if not scale_t and all(dims[i] > 0 for i in spatial):
            for name, i in zip(names, spatial):
                set_attr(new, name, "INT", int(np.float32(dims[i]) * np.float32(scale)))
            return [new]
        # dynamic: OutSize = int32(float32(shape(x)[spatial]) * scale)
        made = []
        shp = ed.new_var(x + ".shape", INT32, [len(dims)])
        made.append(make_op("shape", {"Input": [x]}, {"Out": [shp]}, [], like=op))
        sl = ed.new_var(x + ".spatial", INT32, [len(spatial)])
        made.append(make_op("slice", {"Input": [shp]}, {"Out": [sl]},
                            [("axes", "INTS", [0]), ("starts", "INTS", [spatial[0]]),
                             ("ends", "INTS", [spatial[-1] + 1]), ("decrease_axis", "INTS", []),
                             ("infer_flags", "INTS", [1])], like=op))  # fmt: skip
        fl = ed.new_var(x + ".spatial_f", FLOAT32, [len(spatial)])
        made.append(make_op("cast", {"X": [sl]}, {"Out": [fl]},
                            [("in_dtype", "INT", INT32), ("out_dtype", "INT", FLOAT32)], like=op))  # fmt: skip
        sc = ed.new_var(x + ".scaled", FLOAT32, [len(spatial)])
        if scale_t:
            made.append(make_op("elementwise_mul", {"X": [fl], "Y": [scale_t[0]]}, {"Out": [sc]},
                                [("axis", "INT", -1)], like=op))  # fmt: skip
        else:
            made.append(make_op("scale", {"X": [fl]}, {"Out": [sc]},
                                [("scale", "FLOAT", scale), ("bias", "FLOAT", 0.0),
                                 ("bias_after_scale", "BOOLEAN", True)], like=op))  # fmt: skip
        size = ed.new_var(x + ".out_size", INT32, [len(spatial)])
        made.append(make_op("cast", {"X": [sc]}, {"Out": [size]},
                            [("in_dtype", "INT", FLOAT32), ("out_dtype", "INT", INT32)], like=op))  # fmt: skip
        s = new.inputs.add()
        s.parameter = "OutSize"
        s.arguments.append(size)
        return [*made, new]

    def _t_soft_relu(self, op, rule, ed) -> list:
        """soft_relu(x) = log(1 + exp(clip(x, -t, t))): ``clip`` then ``softplus`` whose own
        threshold is never reached (inputs are at most t)."""
        self._check_defaults(op, rule, {"threshold"})
        t = float(attrs_of(op).get("threshold", rule["defaults"].get("threshold", 40.0)))
        x, out = slot_args(op.inputs, "X")[0], slot_args(op.outputs, "Out")[0]
        clipped = ed.new_var(x + ".clipped", ed.dtype(x), ed.dims(x))
        return [
            make_op("clip", {"X": [x]}, {"Out": [clipped]},
                    [("min", "FLOAT", -t), ("max", "FLOAT", t)], like=op),
            make_op("softplus", {"X": [clipped]}, {"Out": [out]},
                    [("beta", "FLOAT", 1.0), ("threshold", "FLOAT", max(t, 0.0) + 1.0)], like=op),
        ]  # fmt: skip

    def _t_lod_reset(self, op, rule, ed) -> list:
        """lod_reset changes only the LoD of X (from ``target_lod`` or Y); the data is X. PIR
        tensors carry no LoD, so the op becomes ``assign``."""
        x, out = slot_args(op.inputs, "X")[0], slot_args(op.outputs, "Out")[0]
        return [make_op("assign", {"X": [x]}, {"Out": [out]}, [], like=op)]

    def _t_data_norm(self, op, rule, ed) -> list:
        """data_norm at inference: y = (x - sum/size) * sqrt(size/square_sum) [* w + b]."""
        a = attrs_of(op)
        if int(a.get("slot_dim", -1)) > 0:
            raise Unmappable("slot_dim > 0 (per-slot show filtering) has no current equivalent")
        if a.get("data_layout", "NCHW") not in ("NCHW", "AnyLayout"):
            raise Unmappable(f"data_layout={a['data_layout']!r} is not supported")
        x = slot_args(op.inputs, "X")[0]
        size, bsum, sqsum = (
            slot_args(op.inputs, n)[0] for n in ("BatchSize", "BatchSum", "BatchSquareSum")
        )
        y = slot_args(op.outputs, "Y")[0]
        means = (slot_args(op.outputs, "Means") or [None])[0]
        scales = (slot_args(op.outputs, "Scales") or [None])[0]
        dt, c = ed.dtype(x), ed.dims(bsum)

        def ew(kind, u, v, out=None):
            out = out or ed.new_var(y + "." + kind, dt, c)
            made.append(
                make_op(kind, {"X": [u], "Y": [v]}, {"Out": [out]}, [("axis", "INT", -1)], like=op)
            )
            return out

        made: list = []
        m = ew("elementwise_div", bsum, size, means)
        ratio = ew("elementwise_div", size, sqsum)
        s = scales or ed.new_var(y + ".scales", dt, c)
        made.append(make_op("sqrt", {"X": [ratio]}, {"Out": [s]}, [], like=op))
        centred = ed.new_var(y + ".centred", dt, ed.dims(x))
        made.append(
            make_op(
                "elementwise_sub",
                {"X": [x], "Y": [m]},
                {"Out": [centred]},
                [("axis", "INT", -1)],
                like=op,
            )
        )
        if a.get("enable_scale_and_shift"):
            normed = ed.new_var(y + ".normed", dt, ed.dims(x))
            ew("elementwise_mul", centred, s, normed)
            w, bias = slot_args(op.inputs, "scale_w")[0], slot_args(op.inputs, "bias")[0]
            shifted = ed.new_var(y + ".scaled", dt, ed.dims(x))
            ew("elementwise_mul", normed, w, shifted)
            ew("elementwise_add", shifted, bias, y)
        else:
            ew("elementwise_mul", centred, s, y)
        return made


def _rename_output(op, slot: str, name: str) -> None:
    for s in op.outputs:
        if s.parameter == slot:
            del s.arguments[:]
            s.arguments.append(name)


__all__ = ["Rewriter", "Report", "load_rules", "PROVENANCE_ATTRS"]
