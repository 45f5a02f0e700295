"""Write old inference models with Paddle 2.6.2 (run inside a Paddle 2.6.2 environment).

Each case is a small static program that uses retired operators the way Paddle 2.x programs
carried them (operators without a Python API any more are appended by type, as the old fluid
layers did), plus real architectures from ``paddle.vision`` saved with ``paddle.jit.save``.
Every model is run here, in 2.6.2, on fixed random inputs; inputs and outputs go to ``io.npz``
next to the model, and ``manifest.json`` lists the cases, the retired operators each program
really contains (read back from the saved file) and why a case has no reference, if so.

    python tests/upgrade/make_old_models.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np
import paddle

paddle.enable_static()
from paddle.base.layer_helper import LayerHelper  # noqa: E402

OUT = sys.argv[1]
RNG = np.random.default_rng(2026)
CASES = []


def case(name, feeds, retired=()):
    """feeds: [(name, shape in the program, dtype, value)]."""

    def deco(fn):
        CASES.append((name, feeds, fn, retired))
        return fn

    return deco


def legacy(type_, inputs, attrs, outs=("Out",), dtype="float32"):
    h = LayerHelper(type_)
    made = {k: h.create_variable_for_type_inference(dtype) for k in outs}
    h.append_op(type=type_, inputs=inputs, outputs=made, attrs=attrs)
    return made[outs[0]] if len(outs) == 1 else [made[k] for k in outs]


def f32(*shape, lo=-2.0, hi=2.0):
    return RNG.uniform(lo, hi, size=shape).astype("float32")


def param(name, shape, value):
    p = paddle.static.create_parameter(
        shape, "float32", name=name,
        default_initializer=paddle.nn.initializer.Assign(value.astype("float32")),
    )  # fmt: skip
    return p


# ---- matmul (v1) -----------------------------------------------------------------------------
@case(
    "matmul_alpha_transpose_x",
    [("a", [2, 3, 4], "float32", f32(2, 3, 4)), ("b", [2, 3, 5], "float32", f32(2, 3, 5))],
)
def _(a, b):
    return [legacy("matmul", {"X": a, "Y": b}, {"transpose_X": True, "alpha": 0.5})]


@case(
    "matmul_broadcast_transpose_y",
    [("a", [-1, 3, 4], "float32", f32(2, 3, 4)), ("b", [5, 4], "float32", f32(5, 4))],
)
def _(a, b):
    return [legacy("matmul", {"X": a, "Y": b}, {"transpose_Y": True, "alpha": -1.25})]


@case("matmul_plain_2d", [("a", [3, 4], "float32", f32(3, 4)), ("b", [4, 6], "float32", f32(4, 6))])
def _(a, b):
    return [legacy("matmul", {"X": a, "Y": b}, {})]


@case("matmul_vectors", [("a", [4], "float32", f32(4)), ("b", [4], "float32", f32(4))])
def _(a, b):
    return [legacy("matmul", {"X": a, "Y": b}, {"alpha": 2.0})]


# ---- lookup_table (v1) -------------------------------------------------------------------------
@case(
    "lookup_table_padding",
    [("ids", [-1, 1], "int64", np.array([[0], [3], [7], [0], [9]], "int64"))],
)
def _(ids):
    w = param("emb_w", [10, 6], f32(10, 6))
    return [legacy("lookup_table", {"Ids": ids, "W": w}, {"padding_idx": 0})]


@case(
    "lookup_table_3d_ids",
    [("ids", [-1, 4, 1], "int64", RNG.integers(0, 20, (3, 4, 1)).astype("int64"))],
)
def _(ids):
    w = param("emb_w", [20, 8], f32(20, 8))
    return [legacy("lookup_table", {"Ids": ids, "W": w}, {"padding_idx": -1})]


# ---- v1 interpolation --------------------------------------------------------------------------
X4 = f32(2, 3, 5, 7)


def interp(kind, x, **attrs):
    ins = {"X": x}
    for slot in ("OutSize", "Scale"):
        if slot in attrs:
            ins[slot] = attrs.pop(slot)
    attrs.setdefault("interp_method", kind)
    return legacy(f"{kind}_interp", ins, attrs)


@case("bilinear_interp_size", [("x", [2, 3, 5, 7], "float32", X4)])
def _(x):
    return [interp("bilinear", x, out_h=9, out_w=4, align_corners=False, align_mode=1)]


@case("bilinear_interp_scale_align_mode0", [("x", [2, 3, 5, 7], "float32", X4)])
def _(x):
    return [interp("bilinear", x, scale=1.7, align_corners=False, align_mode=0)]


@case("bilinear_interp_align_corners", [("x", [2, 3, 5, 7], "float32", X4)])
def _(x):
    return [interp("bilinear", x, out_h=11, out_w=13, align_corners=True)]


@case("bilinear_interp_dynamic_scale", [("x", [-1, 3, -1, -1], "float32", X4)])
def _(x):
    return [interp("bilinear", x, scale=2.3, align_corners=False, align_mode=1)]


@case(
    "bilinear_interp_outsize_tensor",
    [("x", [2, 3, 5, 7], "float32", X4), ("size", [2], "int32", np.array([6, 10], "int32"))],
)
def _(x, size):
    return [interp("bilinear", x, OutSize=size, scale=3.0, align_corners=False, align_mode=0)]


@case(
    "bilinear_interp_scale_tensor",
    [("x", [2, 3, 5, 7], "float32", X4), ("s", [1], "float32", np.array([1.8], "float32"))],
)
def _(x, s):
    return [interp("bilinear", x, Scale=s, scale=0.5, align_corners=False, align_mode=1)]


@case("bilinear_interp_nhwc", [("x", [2, 5, 7, 3], "float32", f32(2, 5, 7, 3))])
def _(x):
    return [
        interp(
            "bilinear", x, out_h=8, out_w=3, data_layout="NHWC", align_corners=False, align_mode=1
        )
    ]


@case("nearest_interp_scale", [("x", [2, 3, 5, 7], "float32", X4)])
def _(x):
    return [interp("nearest", x, scale=1.5, align_corners=False)]


@case("nearest_interp_align_corners", [("x", [2, 3, 5, 7], "float32", X4)])
def _(x):
    return [interp("nearest", x, out_h=8, out_w=12, align_corners=True)]


@case("linear_interp", [("x", [2, 3, 7], "float32", f32(2, 3, 7))])
def _(x):
    return [interp("linear", x, out_w=12, align_corners=False, align_mode=0, data_layout="NCHW")]


@case("linear_interp_scale", [("x", [2, 3, 7], "float32", f32(2, 3, 7))])
def _(x):
    return [interp("linear", x, scale=0.6, align_corners=False, align_mode=1, data_layout="NCHW")]


@case("bicubic_interp", [("x", [2, 3, 5, 7], "float32", X4)])
def _(x):
    return [interp("bicubic", x, out_h=9, out_w=6, align_corners=False)]


@case("bicubic_interp_align_corners", [("x", [2, 3, 5, 7], "float32", X4)])
def _(x):
    return [interp("bicubic", x, out_h=10, out_w=14, align_corners=True)]


@case("trilinear_interp", [("x", [1, 2, 3, 4, 5], "float32", f32(1, 2, 3, 4, 5))])
def _(x):
    return [interp("trilinear", x, out_d=5, out_h=6, out_w=3, align_corners=False, align_mode=1)]


@case("trilinear_interp_scale", [("x", [1, 2, 3, 4, 5], "float32", f32(1, 2, 3, 4, 5))])
def _(x):
    return [interp("trilinear", x, scale=1.6, align_corners=False, align_mode=0)]


# ---- reshape (v1), crop (v1) -------------------------------------------------------------------
@case("reshape_v1", [("x", [2, 3, 4], "float32", f32(2, 3, 4))])
def _(x):
    return [legacy("reshape", {"X": x}, {"shape": [4, -1]})]


@case("crop_shape_offsets", [("x", [3, 6, 7], "float32", f32(3, 6, 7))])
def _(x):
    return [legacy("crop", {"X": x}, {"shape": [2, 3, 4], "offsets": [1, 2, 3]})]


@case(
    "crop_reference",
    [("x", [3, 6, 7], "float32", f32(3, 6, 7)), ("y", [2, 2, 5], "float32", f32(2, 2, 5))],
)
def _(x, y):
    return [legacy("crop", {"X": x, "Y": y}, {"offsets": [0, 3, 1]})]


# ---- soft_relu, data_norm ----------------------------------------------------------------------
@case("soft_relu", [("x", [4, 6], "float32", f32(4, 6, lo=-12, hi=12))])
def _(x):
    return [legacy("soft_relu", {"X": x}, {"threshold": 5.0})]


def _data_norm(x, shift):
    c = 6
    size = param("dn_size", [c], RNG.uniform(5, 20, c))
    bsum = param("dn_sum", [c], RNG.uniform(-10, 10, c))
    sq = param("dn_square_sum", [c], RNG.uniform(50, 100, c))
    ins = {"X": x, "BatchSize": size, "BatchSum": bsum, "BatchSquareSum": sq}
    attrs = {"epsilon": 1e-4, "slot_dim": -1, "enable_scale_and_shift": shift}
    if shift:
        ins["scale_w"] = param("dn_w", [c], f32(c))
        ins["bias"] = param("dn_b", [c], f32(c))
    return legacy("data_norm", ins, attrs, outs=("Y", "Means", "Scales"))[0]


@case("data_norm", [("x", [-1, 6], "float32", f32(5, 6))])
def _(x):
    return [_data_norm(x, False)]


@case("data_norm_scale_shift", [("x", [-1, 6], "float32", f32(5, 6))])
def _(x):
    return [_data_norm(x, True)]


# ---- collectives of a single-card program ------------------------------------------------------
for _op, _attrs in (
    ("c_identity", {"ring_id": 0, "use_calc_stream": True, "use_model_parallel": True}),
    ("c_allreduce_sum", {"ring_id": 0, "use_calc_stream": True}),
    ("c_allreduce_max", {"ring_id": 0, "use_calc_stream": True}),
    ("c_allreduce_min", {"ring_id": 0, "use_calc_stream": True}),
    ("c_allreduce_prod", {"ring_id": 0, "use_calc_stream": True}),
    ("c_reduce_sum", {"ring_id": 0, "root_id": 0, "use_calc_stream": True}),
    ("c_reduce_max", {"ring_id": 0, "root_id": 0, "use_calc_stream": True}),
    ("c_reduce_min", {"ring_id": 0, "root_id": 0, "use_calc_stream": True}),
    ("c_reduce_prod", {"ring_id": 0, "root_id": 0, "use_calc_stream": True}),
    ("c_reducescatter", {"ring_id": 0, "nranks": 1, "use_calc_stream": True}),
    ("mp_allreduce_sum", {"ring_id": 0, "use_calc_stream": True}),
    ("c_broadcast", {"ring_id": 0, "root": 0, "use_calc_stream": True}),
    ("c_allgather", {"ring_id": 0, "nranks": 1, "use_calc_stream": True}),
    ("c_concat", {"ring_id": 0, "nranks": 1, "rank": 0, "use_calc_stream": True, "use_model_parallel": True}),
    ("c_split", {"ring_id": 0, "nranks": 1, "rank": 0, "use_calc_stream": True, "use_model_parallel": True}),
    ("c_sync_calc_stream", {}),
    ("c_sync_comm_stream", {"ring_id": 0}),
):  # fmt: skip

    def _coll(x, op=_op, attrs=_attrs):
        y = paddle.nn.functional.relu(x)
        return [paddle.scale(legacy(op, {"X": y}, attrs), 2.0)]

    case(f"collective_{_op}", [("x", [2, 3], "float32", f32(2, 3))])(_coll)


# ---- list operators that Paddle 3 still registers (checked to load as they are) ----------------
@case("lod_reset", [("x", [6, 2], "float32", f32(6, 2))])
def _(x):
    return [paddle.scale(legacy("lod_reset", {"X": x}, {"target_lod": [0, 2, 6]}), 1.5)]


@case("row_conv", [("x", [-1, 5, 4], "float32", f32(2, 5, 4))])
def _(x):
    w = param("row_conv_w", [3, 4], f32(3, 4))
    return [legacy("row_conv", {"X": x, "Filter": w}, {})]


@case("moving_average_abs_max_scale", [("x", [3, 4], "float32", f32(3, 4))])
def _(x):
    out = legacy(
        "moving_average_abs_max_scale",
        {"X": x},
        {"moving_rate": 0.9, "is_test": True},
        outs=("Out", "OutScale"),
    )
    return [paddle.scale(out[0], 3.0)]


@case("anchor_generator", [("feat", [1, 8, 4, 5], "float32", f32(1, 8, 4, 5))])
def _(feat):
    attrs = {"anchor_sizes": [32.0, 64.0], "aspect_ratios": [0.5, 1.0, 2.0], "variances": [0.1, 0.1, 0.2, 0.2],
             "stride": [16.0, 16.0], "offset": 0.5}  # fmt: skip
    return legacy("anchor_generator", {"Input": feat}, attrs, outs=("Anchors", "Variances"))


def _proposals(scores, deltas, im_info):
    anchors, var = legacy("anchor_generator", {"Input": scores}, {
        "anchor_sizes": [16.0], "aspect_ratios": [0.5, 1.0, 2.0], "variances": [1.0, 1.0, 1.0, 1.0],
        "stride": [16.0, 16.0], "offset": 0.5}, outs=("Anchors", "Variances"))  # fmt: skip
    rois, probs = legacy("generate_proposals", {"Scores": scores, "BboxDeltas": deltas, "ImInfo": im_info,
                                                "Anchors": anchors, "Variances": var},
                         {"pre_nms_topN": 50, "post_nms_topN": 10, "nms_thresh": 0.7, "min_size": 0.0, "eta": 1.0},
                         outs=("RpnRois", "RpnRoiProbs"))  # fmt: skip
    return [rois, probs]


for _name, _info in (
    ("generate_proposals_v1", [[64, 80, 1.0]]),
    ("generate_proposals_v1_im_scale", [[64, 80, 2.5]]),
):
    case(_name, [
        ("scores", [1, 3, 4, 5], "float32", RNG.uniform(0, 1, (1, 3, 4, 5)).astype("float32")),
        ("deltas", [1, 12, 4, 5], "float32", f32(1, 12, 4, 5, lo=-0.2, hi=0.2)),
        ("im_info", [1, 3], "float32", np.array(_info, "float32")),
    ])(_proposals)  # fmt: skip


@case("seed", [("x", [3], "float32", f32(3))])
def _(x):
    s = legacy("seed", {}, {"seed": 1234, "force_cpu": True}, dtype="int32")
    return [x + paddle.cast(s, "float32")]


for _op, _attrs in (("memcpy_d2h", {"dst_place_type": 0}), ("memcpy_h2d", {"dst_place_type": 0})):

    def _memcpy(x, op=_op, attrs=_attrs):
        return [paddle.scale(legacy(op, {"X": paddle.nn.functional.relu(x)}, attrs), 2.0)]

    case(_op, [("x", [2, 3], "float32", f32(2, 3))])(_memcpy)


@case("margin_cross_entropy", [("logits", [4, 6], "float32", f32(4, 6, lo=-0.9, hi=0.9)),
                               ("label", [4], "int64", np.array([1, 0, 5, 2], "int64"))])  # fmt: skip
def _(logits, label):
    attrs = {"margin1": 1.0, "margin2": 0.5, "margin3": 0.0, "scale": 64.0, "return_softmax": True,
             "ring_id": 0, "rank": 0, "nranks": 1}  # fmt: skip
    return legacy(
        "margin_cross_entropy", {"Logits": logits, "Label": label}, attrs, outs=("Softmax", "Loss")
    )


@case("class_center_sample", [("label", [6], "int64", np.array([3, 1, 3, 7, 0, 9], "int64"))])
def _(label):
    attrs = {
        "num_classes": 12,
        "num_samples": 8,
        "ring_id": 0,
        "rank": 0,
        "nranks": 1,
        "fix_seed": True,
        "seed": 5,
    }
    return legacy(
        "class_center_sample",
        {"Label": label},
        attrs,
        outs=("RemappedLabel", "SampledLocalClassCenter"),
        dtype="int64",
    )


# ---- realistic static models -------------------------------------------------------------------
def _text_classifier(ids, old_ops):
    """Embedding, one attention layer, pooling, two fc: written with the retired operators
    (``old_ops``) as Paddle 1.x/2.x programs carried them, or with their current forms (the
    control model that tells Paddle 3's own defects from the upgrade's)."""
    d = 16
    w = param("word_emb", [50, d], f32(50, d, lo=-0.5, hi=0.5))
    if old_ops:
        emb = legacy("lookup_table", {"Ids": ids, "W": w}, {"padding_idx": 0})
    else:
        emb = paddle.nn.functional.embedding(paddle.squeeze(ids, [-1]), w, padding_idx=0)
    q = paddle.static.nn.fc(emb, d, num_flatten_dims=2, name="q")
    k = paddle.static.nn.fc(emb, d, num_flatten_dims=2, name="k")
    v = paddle.static.nn.fc(emb, d, num_flatten_dims=2, name="v")
    if old_ops:
        att = legacy("matmul", {"X": q, "Y": k}, {"transpose_Y": True, "alpha": 1.0 / np.sqrt(d)})
        ctx = legacy("matmul", {"X": paddle.nn.functional.softmax(att), "Y": v}, {})
    else:
        att = paddle.scale(paddle.matmul(q, k, transpose_y=True), 1.0 / np.sqrt(d))
        ctx = paddle.matmul(paddle.nn.functional.softmax(att), v)
    pooled = paddle.mean(ctx, axis=1)
    h = paddle.static.nn.fc(pooled, 24, name="h")
    if old_ops:
        hidden = legacy("soft_relu", {"X": h}, {"threshold": 20.0})
    else:
        hidden = paddle.nn.functional.softplus(paddle.clip(h, -20.0, 20.0))
    return [paddle.nn.functional.softmax(paddle.static.nn.fc(hidden, 4, name="cls"))]


IDS = RNG.integers(0, 50, (3, 12, 1)).astype("int64")
case("text_classifier_lookup_table", [("ids", [-1, 12, 1], "int64", IDS)])(
    lambda ids: _text_classifier(ids, True)
)
case("control_text_classifier", [("ids", [-1, 12, 1], "int64", IDS)])(
    lambda ids: _text_classifier(ids, False)
)


def _seg_head(img, old_ops):
    f = paddle.nn.functional.relu(
        paddle.static.nn.conv2d(img, 8, 3, stride=2, padding=1, name="c1")
    )
    f = paddle.nn.functional.relu(paddle.static.nn.conv2d(f, 8, 3, stride=2, padding=1, name="c2"))
    resize = paddle.nn.functional.interpolate
    if old_ops:
        up = interp("bilinear", f, scale=2.0, align_corners=False, align_mode=0)
    else:
        up = resize(f, scale_factor=2.0, mode="bilinear", align_corners=False, align_mode=0)
    up = paddle.static.nn.conv2d(up, 5, 1, name="c3")
    if old_ops:
        logits = interp("bilinear", up, out_h=16, out_w=20, align_corners=True)
        mask = interp(
            "nearest", paddle.nn.functional.sigmoid(logits), out_h=8, out_w=10, align_corners=False
        )
    else:
        logits = resize(up, size=[16, 20], mode="bilinear", align_corners=True)
        mask = resize(paddle.nn.functional.sigmoid(logits), size=[8, 10], mode="nearest")
    return [logits, mask]


IMG = f32(2, 3, 16, 20)
case("segmentation_head_v1_interp", [("img", [-1, 3, 16, 20], "float32", IMG)])(
    lambda x: _seg_head(x, True)
)
case("control_segmentation_head", [("img", [-1, 3, 16, 20], "float32", IMG)])(
    lambda x: _seg_head(x, False)
)


@case("control_matmul_v2_vectors", [("a", [4], "float32", f32(4)), ("b", [4], "float32", f32(4))])
def _(a, b):
    return [paddle.scale(paddle.matmul(a, b), 2.0)]


class Unbuildable(Exception):
    pass


def build_static(name, feeds, fn):
    main, startup = paddle.static.Program(), paddle.static.Program()
    try:
        with paddle.static.program_guard(main, startup):
            xs = [paddle.static.data(n, s, d) for n, s, d, _ in feeds]
            outs = fn(*xs)
    except Exception as exc:  # noqa: BLE001 - 2.6.2 itself refuses the program: recorded
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip() and "[operator" not in ln]
        raise Unbuildable(lines[0] if lines else repr(exc)) from None
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    paddle.static.save_inference_model(os.path.join(folder, "model"), xs, outs, exe, program=main)
    feed = {n: v for n, _, _, v in feeds}
    # the reference runs the program as saved, loaded back by 2.6.2
    prog, names, fetch = paddle.static.load_inference_model(os.path.join(folder, "model"), exe)
    try:
        res = exe.run(prog, feed=feed, fetch_list=fetch, return_numpy=False)
        return folder, feed, [np.array(t) for t in res], None
    except Exception as exc:  # noqa: BLE001 - recorded in the manifest
        lines = [
            ln.strip()
            for ln in str(exc).strip().splitlines()
            if ln.strip() and "[operator" not in ln
        ]
        return folder, feed, None, lines[-1] if lines else repr(exc)


def build_vision(name, ctor, shape):
    paddle.disable_static()
    paddle.seed(7)
    net = ctor()
    net.eval()
    x = f32(*shape)
    ref = net(paddle.to_tensor(x)).numpy()
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    spec = [paddle.static.InputSpec([None, *shape[1:]], "float32", "image")]
    paddle.jit.save(paddle.jit.to_static(net, input_spec=spec), os.path.join(folder, "model"))
    paddle.enable_static()
    return folder, {"image": x}, [ref], None


def ops_in(path):
    from paddle.base import core

    desc = core.ProgramDesc(open(path, "rb").read())
    return sorted(
        {
            desc.block(b).op(i).type()
            for b in range(desc.num_blocks())
            for i in range(desc.block(b).op_size())
        }
    )


def main():
    os.makedirs(OUT, exist_ok=True)
    lists = set()
    for fname in sys.argv[2:]:
        lists |= {ln.strip() for ln in open(fname) if ln.strip() and not ln.startswith("#")}
    manifest = []
    jobs = [(n, lambda n=n, f=f, fn=fn: build_static(n, f, fn)) for n, f, fn, _ in CASES]
    jobs += [
        ("vision_resnet18", lambda: build_vision("vision_resnet18", lambda: paddle.vision.models.resnet18(num_classes=10), (2, 3, 32, 32))),
        ("vision_mobilenet_v2", lambda: build_vision("vision_mobilenet_v2", lambda: paddle.vision.models.mobilenet_v2(scale=0.5, num_classes=10), (2, 3, 32, 32))),
        ("vision_shufflenet_v2", lambda: build_vision("vision_shufflenet_v2", lambda: paddle.vision.models.shufflenet_v2_x0_25(num_classes=10), (2, 3, 32, 32))),
    ]  # fmt: skip
    for name, job in jobs:
        try:
            folder, feed, res, why = job()
        except Unbuildable as exc:
            manifest.append({"name": name, "unbuildable": str(exc)})
            print(f"{name}: Paddle 2.6.2 cannot build it: {exc}")
            continue
        except Exception:  # noqa: BLE001
            print(f"FAILED to build {name}:\n{traceback.format_exc()}", file=sys.stderr)
            raise
        ops = ops_in(os.path.join(folder, "model.pdmodel"))
        arrays = {f"in_{k}": v for k, v in feed.items()}
        if res is not None:
            arrays.update({f"out_{i}": np.asarray(r) for i, r in enumerate(res)})
        np.savez(os.path.join(folder, "io.npz"), **arrays)
        manifest.append({
            "name": name, "ops": ops, "listed_ops": [o for o in ops if o in lists],
            "inputs": list(feed), "outputs": 0 if res is None else len(res), "no_reference": why,
        })  # fmt: skip
        print(
            f"{name}: {', '.join(o for o in ops if o in lists) or '-'}"
            + (f" (no 2.6.2 run: {why})" if why else "")
        )
    info = {"paddle": paddle.__version__, "commit": paddle.version.commit, "cases": manifest}
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(info, fh, indent=1)


if __name__ == "__main__":
    main()
