"""Zoo: rebuild the model families of X2Paddle's test_benchmark here, convert, verify.

    python tests/zoo/run_zoo.py [--manifest PATH] [--opsets 13,17,default] [--only NAME ...]

PyTorch and ONNX families are rebuilt from code in tests/torch_models.py (same
architecture family, reduced width, random weights; the "rebuilt as" column names the
builder); ONNX families are exported at each opset. Caffe families use the benchmark's
own prototxt with a random .caffemodel and the torch reference of Caffe layers. Results go
to benchmarks/results/zoo.local.json and the table is printed; with ``--record`` to the
committed benchmarks/results/zoo.json and the table between the zoo markers of README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
# Paddle 3.3.1's oneDNN predictor hangs on some graphs (3-D convolutions): a verdict after 2 min
os.environ.setdefault("X2PADDLE_COMPAT_PREDICTOR_TIMEOUT", "120")
HERE = Path(__file__).resolve().parent
PKG = HERE.parent
sys.path.insert(0, str(PKG / "tests"))  # the model builders and harness of the test tree


def _find_manifest() -> Path:
    """$X2PADDLE_TEST_BENCHMARK/manifest.csv, else shared/data/... in the nearest ancestor."""
    env = os.environ.get("X2PADDLE_TEST_BENCHMARK")
    if env:
        return Path(env) / "manifest.csv"
    rel = Path("shared/data/x2paddle-test_benchmark/manifest.csv")
    for parent in PKG.parents:
        if (parent / rel).exists():
            return parent / rel
    return PKG.parents[1] / rel


DEFAULT_MANIFEST = _find_manifest()

PYTORCH = {
    "AlexNet": "alexnet",
    "BertForMaskedLM_dccuchile": "t:bert",
    "BertModel_SpanBert": "t:bert",
    "CamembertForQuestionAnswering": "t:camembert",
    "DPRContextEncoder": "t:dpr",
    "ElectraModel": "t:electra",
    "FlaubertModel": "t:flaubert",
    "GRU": "gru",
    "InceptionV3": "inception",
    "MNasNet": "efficientnet",
    "MobileNetV2": "mobilenet_v2",
    "ResNet18": "resnet18",
    "ResNet18_2": "resnet18",
    "Roberta": "t:roberta",
    "ShuffleNetV2": "shufflenet",
    "SqueezeNet": "squeezenet",
    "SwinTransformer": "vit",
    "VGG16": "vgg16",
    "XLMRobertaForTokenClassification": "t:xlm-roberta",
    "mobilenetv3": "mobilenet_v3",
    "EasyOCR_recognizer": "crnn",
    "EasyOCR_detector": "unet",
    "DeepLabv3_ResNet50": "upsample_seg",
    "FCN_ResNet50": "upsample_seg",
    "DBFace": "detector",
    "BASNet": "unet",
    "MiniFasNet": "mobilenet_v3",
    "EDSR": "edsr",
    "ACG_UnitTest": "temporal_conv",
    "opadd": "opadd",
    "Mobilestereonet": "stereo",
    "MockingBird": "speaker_encoder",
    "Saicinpainting_LaMa": "lama_ffc",
}
PYTORCH_MISSING: dict = {}
ONNX = {
    "alexnet": "alexnet",
    "densenet121": "densenet",
    "efficientnet_b0": "efficientnet",
    "inceptionv1": "inception",
    "inceptionv2": "inception",
    "mnasnet_a1": "efficientnet",
    "mobilenet_v2": "mobilenet_v2",
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "shufflenet": "shufflenet",
    "squeezenet": "squeezenet",
    "vgg11": "vgg11",
    "vgg11_bn": "vgg11_bn",
    "vgg16_bn": "vgg16_bn",
    "vgg19": "vgg19",
    "vgg19_bn": "vgg19_bn",
    "crnn_lstm": "crnn",
    "transformer": "transformer_encoder",
    "SwinTransformer": "vit",
    "VIT_online": "vit",
    "bert6": "t:bert",
    "face_cyclegan_34": "generator",
    "GPEN": "generator",
    "MLPerf_ResNet50": "resnet50",
    "basnet": "unet",
    "yolov5s": "detector",
    "yolov5s_fix_resize": "upsample_seg",
    "best_float32": "detector",
    "circledet": "detector",
    "facedetector": "detector",
    "mobilefacenet": "mobilenet_v2",
    "modelGen": "generator",
    "Seg": "unet",
    "FaceNet": "inception",
    "cifarnet": "small_cnn",
    "hand_landmark_ar": "mobilenet_v2",
    "pnasnet_mobile": "inception",
    "ronin_2d_cp9": "resnet18",
    "Poselandmarks": "mobilenet_v2",
}
_IDG = (
    "Baidu IDG internal model: only its ONNX file existed (unreachable dataset); the "
    "architecture is not published"
)
ONNX_MISSING = {
    **{
        f"IDG_{n}": _IDG
        for n in (
            "detection_registration_p1",
            "detection_registration_p2",
            "keypoint_selection",
            "local_vis",
            "multi_modal_crop_cnn_model",
            "multi_modal_fully_cnn_model",
            "multi_modal_sequential_model",
            "test_process",
            "test_sim_feat_new",
        )
    },
    "mmdetection_fasterrcnn": "two-stage detector with RoIAlign/NMS post-processing not rebuilt",
    "mmdetection_fcos": "mmdetection code not available offline",
    "mmdetection_fsaf": "mmdetection code not available offline",
    "mmdetection_retina": "mmdetection code not available offline",
    "mmdetection_ssd": "mmdetection code not available offline",
    "mmdetection_yolov3": "mmdetection code not available offline",
}
TF_REASON = (
    "TensorFlow needs its own venv (numpy<2, protobuf<5): run "
    "`nox -s zoo-x2paddle-compat-tf` (tests/zoo/run_zoo_tf.py)"
)
RESULTS = PKG / "benchmarks" / "results"
TF_JSON = RESULTS / "zoo_tf.json"
MAX_CAFFE_PARAMS = 64_000_000


def _verify_torch(builder, tmp):
    import torch_models
    from harness import check_torch

    module, inputs = (
        torch_models.build_transformer(builder[2:])
        if builder.startswith("t:")
        else torch_models.build(builder)
    )
    return check_torch(module, inputs, tmp)


def _verify_onnx(builder, tmp, opset):
    import torch_models
    from harness import check_onnx, export_onnx

    module, inputs = (
        torch_models.build_transformer(builder[2:], "eager")
        if builder.startswith("t:")
        else torch_models.build(builder)
    )
    try:
        path = export_onnx(module, inputs, Path(tmp) / "m.onnx", opset)
    except Exception as exc:  # torch's exporter, not X2Paddle, refused this opset
        raise _NotRebuilt(
            f"torch cannot export it at opset {opset or 'default'} "
            f"({type(exc).__name__}: {str(exc)[:90]})"
        ) from None
    return check_onnx(path, tmp)


def _verify_caffe(proto_path, tmp):
    import caffe_models
    import numpy as np

    import x2paddle_compat as xc
    from x2paddle_compat.verify import input_names, verify

    text = Path(proto_path).read_text()
    net = caffe_models.parse_prototxt(text)
    supported = {
        "Input",
        "Convolution",
        "BatchNorm",
        "Scale",
        "ReLU",
        "PReLU",
        "Pooling",
        "InnerProduct",
        "Softmax",
        "Eltwise",
        "Concat",
        "Dropout",
        "Flatten",
        "Sigmoid",
        "TanH",
        "Deconvolution",
        "Crop",
        "Permute",
        "Reshape",
        "ConvolutionDepthwise",
        "DepthwiseConvolution",
        "LRN",
        "Slice",
        "ShuffleChannel",
        "Reduction",
    }
    kinds = {layer.type for layer in net.layer}
    if net.layers:
        raise _NotRebuilt("V1 'layers' prototxt format not handled by the reference")
    missing = sorted(kinds - supported)
    if missing:
        raise _NotRebuilt("torch reference lacks Caffe layer(s) " + ", ".join(missing))
    src = Path(tmp) / "src"
    src.mkdir()
    proto = src / "net.prototxt"
    proto.write_text(text)
    weights = src / "net.caffemodel"
    try:
        blobs = caffe_models.random_caffemodel(net, weights, max_params=MAX_CAFFE_PARAMS)
    except caffe_models.TooLarge as exc:
        raise _NotRebuilt(
            f"{exc}: too large for a random caffemodel within the zoo's time budget"
        ) from None
    except Exception as exc:  # the harness's shape walk, not the conversion, failed
        raise _NotRebuilt(
            f"the random-caffemodel writer of the test tree cannot walk this "
            f"net ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    out = xc.convert_caffe(proto, weights, Path(tmp) / "paddle")
    shape = caffe_models._input_shape(net)[0]
    if "Reshape" not in kinds:  # reshapes may fold the batch (segments of TSM nets)
        shape[0] = 1
    x = np.random.default_rng(1).standard_normal(shape).astype("float32")
    try:
        refs = caffe_models.reference(net, blobs, x)
    except Exception as exc:  # the harness's torch reference, not the conversion, failed
        raise _NotRebuilt(
            f"torch reference of the Caffe layers cannot run this net "
            f"({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    return verify(out, {input_names(out)[0]: x}, refs, atol=1e-5, rtol=1e-5)


class _NotRebuilt(Exception):
    pass


def _row(framework, family, builder, report=None, error=None, not_rebuilt=None, secs=0.0):
    row = {
        "family": family,
        "framework": framework,
        "rebuilt_as": builder or "",
        "converted": False,
        "dygraph": "",
        "jit": "",
        "predictor": "",
        "verdict": "",
        "reason": "",
        "seconds": round(secs, 1),
    }
    if not_rebuilt:
        row.update(verdict="not rebuilt", reason=not_rebuilt)
    elif error:
        row.update(verdict="FAIL", reason=error[:160].replace("|", "/").replace("\n", " "))
    else:
        row["converted"] = True
        r = report.results
        row["dygraph"] = f"{r['dygraph'].max_abs:.1e}" if "dygraph" in r else ""
        row["jit"] = f"{r['jit'].max_abs:.1e}"
        cfg = report.predictor_config
        if cfg:
            key = "predictor+onednn" if cfg["use_onednn"] else "predictor"
            row["predictor"] = f"{r[key].max_abs:.1e}" + (
                "" if cfg["use_onednn"] else " (no oneDNN)"
            )
        row["verdict"] = "pass" if report.ok else "FAIL"
        if not report.ok:
            bad = [f"{k}: {v.error or 'wrong'}" for k, v in r.items() if not v.ok]
            row["reason"] = "; ".join(bad)[:160].replace("|", "/")
        elif cfg and not cfg["use_onednn"]:
            err = r["predictor+onednn"].error
            if err.startswith("TimeoutExpired"):
                err = "hung (killed after the predictor timeout)"
            row["reason"] = "oneDNN predictor " + (err[:60] or "gives a WRONG result")
    return row


def run(manifest: Path, opsets: list, only: set) -> list[dict]:
    import x2paddle_compat  # noqa: F401  (applies the fixes)

    rows = []
    with open(manifest, newline="") as fh:
        entries = [(r["framework"], r["model"]) for r in csv.DictReader(fh)]
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover

        def tqdm(x, **_):
            return x

    for framework, family in tqdm(entries, desc="zoo"):
        if only and family not in only:
            continue
        jobs = []
        if framework == "PyTorch":
            if family in PYTORCH:
                jobs.append(
                    (family, PYTORCH[family], lambda t, b=PYTORCH[family]: _verify_torch(b, t))
                )
            else:
                rows.append(
                    _row(
                        framework,
                        family,
                        None,
                        not_rebuilt=PYTORCH_MISSING.get(family, "no builder"),
                    )
                )
        elif framework == "ONNX":
            if family in ONNX:
                for opset in opsets:
                    label = f"{family} (opset {opset or 'default'})"
                    jobs.append(
                        (
                            label,
                            ONNX[family],
                            lambda t, b=ONNX[family], o=opset: _verify_onnx(b, t, o),
                        )
                    )
            else:
                rows.append(
                    _row(
                        framework, family, None, not_rebuilt=ONNX_MISSING.get(family, "no builder")
                    )
                )
        elif framework == "Caffe":
            protos = sorted((manifest.parent / "Caffe" / family).glob("*.prototxt"))
            if protos:
                jobs.append((family, protos[0].name, lambda t, p=protos[0]: _verify_caffe(p, t)))
            else:
                rows.append(_row(framework, family, None, not_rebuilt="no prototxt"))
        else:
            rows.append(_row(framework, family, None, not_rebuilt=TF_REASON))
        for label, builder, fn in jobs:
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    rows.append(
                        _row(
                            framework,
                            label,
                            builder,
                            report=fn(tmp),
                            secs=time.perf_counter() - start,
                        )
                    )
                except _NotRebuilt as exc:
                    rows.append(_row(framework, label, builder, not_rebuilt=str(exc)))
                except Exception as exc:  # a failure is a result of the zoo, not a crash
                    traceback.print_exc()
                    rows.append(
                        _row(
                            framework,
                            label,
                            builder,
                            error=f"{type(exc).__name__}: {exc}",
                            secs=time.perf_counter() - start,
                        )
                    )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    order = {"PyTorch": 0, "ONNX": 1, "Caffe": 2, "TensorFlow": 3}
    rows = sorted(rows, key=lambda r: (order.get(r["framework"], 9), r["family"].lower()))
    head = (
        "| family | framework | rebuilt as | converted | dygraph | jit | predictor | "
        "verdict | reason |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['family']} | {r['framework']} | {r['rebuilt_as']} | "
        f"{'yes' if r['converted'] else 'no'} | {r['dygraph']} | {r['jit']} | {r['predictor']} | "
        f"{r['verdict']} | {r['reason']} |\n"
        for r in rows
    )
    rebuilt = [r for r in rows if r["verdict"] != "not rebuilt"]
    passed = [r for r in rebuilt if r["verdict"] == "pass"]
    fam = summarize(rows)
    per_fw = ", ".join(f"{fw} {n}" for fw, n in fam["rebuilt_by_framework"].items())
    summary = (
        f"\n{fam['families']} families: {fam['rebuilt']} rebuilt ({per_fw}), "
        f"{fam['passed']} of them pass every conversion "
        f"({100 * fam['passed'] / max(fam['rebuilt'], 1):.1f} %); "
        f"{len(passed)} of {len(rebuilt)} conversions pass (max abs diff <= 1e-5 + "
        f"1e-5 * max|reference|); {fam['families'] - fam['rebuilt']} families not "
        f"rebuilt (reason given).\n"
    )
    return head + body + summary


def summarize(rows: list[dict]) -> dict:
    """Per family (ONNX opsets folded): rebuilt / passing counts."""
    families: dict = {}
    for r in rows:
        key = (r["framework"], r["family"].split(" (opset")[0])
        families.setdefault(key, []).append(r["verdict"])
    rebuilt = {k: v for k, v in families.items() if any(x != "not rebuilt" for x in v)}
    passed = [k for k, v in rebuilt.items() if all(x == "pass" for x in v if x != "not rebuilt")]
    by_fw: dict = {}
    for fw, _ in rebuilt:
        by_fw[fw] = by_fw.get(fw, 0) + 1
    return {
        "families": len(families),
        "rebuilt": len(rebuilt),
        "passed": len(passed),
        "rebuilt_by_framework": by_fw,
    }


def combined_rows(rows: list[dict]) -> list[dict]:
    """The PyTorch/ONNX/Caffe rows plus the TensorFlow rows of zoo_tf.json when present."""
    if not TF_JSON.exists():
        return rows
    tf_rows = json.loads(TF_JSON.read_text())
    return [r for r in rows if r["framework"] != "TensorFlow"] + tf_rows


def write_readme(rows: list[dict]) -> str:
    md = table(rows)
    readme = PKG / "README.md"
    if readme.exists():
        text = readme.read_text()
        start, end = "<!-- zoo:start -->", "<!-- zoo:end -->"
        if start in text and end in text:
            a, b = text.index(start) + len(start), text.index(end)
            readme.write_text(text[:a] + "\n" + md + text[b:])
    return md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--opsets", default="13,17,default")
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument("--no-readme", action="store_true")
    p.add_argument(
        "--record",
        action="store_true",
        help="update the committed results/zoo.json and the README table (default: results/zoo.local.json, table printed)",
    )
    p.add_argument(
        "--render",
        action="store_true",
        help="only rewrite the README table from benchmarks/results/zoo.json",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace those families' rows in the existing zoo.json",
    )
    args = p.parse_args(argv)
    if not args.manifest.exists():
        print(f"manifest not found: {args.manifest}", file=sys.stderr)
        return 2
    opsets = [None if o == "default" else int(o) for o in args.opsets.split(",")]
    out = RESULTS / "zoo.json"
    rows = (
        json.loads(out.read_text()) if args.render else run(args.manifest, opsets, set(args.only))
    )
    if args.merge and args.only and out.exists():
        new = {(r["framework"], r["family"]): r for r in rows}
        old = json.loads(out.read_text())
        rows = [new.pop((r["framework"], r["family"]), r) for r in old] + list(new.values())
        args.only = []
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.render and not args.only:  # a partial run only prints (or --merge)
        (out if args.record else out.with_name("zoo.local.json")).write_text(
            json.dumps(rows, indent=1)
        )
    if (args.record or args.render) and not args.no_readme and not args.only:
        print(write_readme(combined_rows(rows)))
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
