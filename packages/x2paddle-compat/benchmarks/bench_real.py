"""Real-size models (random weights): conversion time and Paddle Inference latency against
torch CPU eager and onnxruntime on the same input.

    python benchmarks/bench_real.py [--repeat 10] [--only resnet50 bert_base ...]

Models are the ``transformers`` implementations at their published default sizes:
ResNet-50 (224x224), MobileNetV2 1.0 (224x224), BERT-base (12 layers, hidden 768,
sequence 128) and ViT-B/16 (224x224). For each: the PyTorch path (trace -> x2paddle) and
the ONNX path (opset 17 export -> x2paddle). Every converted model is verified first
(1e-5 + 1e-5 * max|reference|, relative for large outputs); latency is then measured for
each predictor configuration that verification found correct (oneDNN on / off), and the
one ``deploy.json`` chose is marked. Single-threaded, median of ``--repeat`` runs after a
warm-up. Writes benchmarks/results/bench_real.local.json; with ``--record`` the committed
bench_real.json and the README table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def _median_ms(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def timing_row(name, source_name, convert_s, report, out, feed, source_ms, repeat):
    """One result row: conversion time, what verification chose, and the predictor's latency
    with and without oneDNN (where that configuration is correct) as a ratio to the source's."""
    import numpy as np

    feed = {k: np.ascontiguousarray(v) for k, v in feed.items()}
    row = {
        "model": name,
        "source": source_name,
        "convert_s": round(convert_s, 1),
        "verified": report.ok,
        "chosen_onednn": report.predictor_config.get("use_onednn"),
        "max_abs_diff": {k: float(f"{v.max_abs:.2e}") for k, v in report.results.items()},
        "source_ms": round(source_ms, 2),
    }
    for key, onednn in (("predictor+onednn", True), ("predictor", False)):
        label = "paddle_onednn_ms" if onednn else "paddle_ms"
        if report.results[key].ok:
            row[label] = round(_median_ms(_predictor_fn(out, feed, onednn), repeat), 2)
            row[label.replace("_ms", "_ratio")] = round(row[label] / source_ms, 2)
        else:
            row[label] = None
            row[label.replace("_ms", "_error")] = (report.results[key].error or "wrong")[:120]
    return row


def build(name):
    import torch
    import transformers as t
    from torch import nn

    torch.manual_seed(0)

    class First(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *xs):
            return self.model(*xs)[0]

    if name == "resnet50":
        model, x = t.ResNetModel(t.ResNetConfig()), [torch.randn(1, 3, 224, 224)]
    elif name == "mobilenet_v2":
        model, x = t.MobileNetV2Model(t.MobileNetV2Config()), [torch.randn(1, 3, 224, 224)]
    elif name == "vit_b16":
        cfg = t.ViTConfig()
        cfg._attn_implementation = "eager"
        model, x = t.ViTModel(cfg, add_pooling_layer=False), [torch.randn(1, 3, 224, 224)]
    elif name == "bert_base":
        cfg = t.BertConfig()
        cfg._attn_implementation = "eager"
        g = torch.Generator().manual_seed(1)
        model = t.BertModel(cfg, add_pooling_layer=False)
        x = [torch.randint(0, cfg.vocab_size, (1, 128), generator=g)]
    else:
        raise KeyError(name)
    import torch_models

    module = torch_models.randomize(First(model.eval()))
    return module, x


def _predictor_fn(folder, inputs, use_onednn):
    import paddle

    from x2paddle_compat.verify import make_config

    predictor = paddle.inference.create_predictor(
        make_config(folder, use_onednn=use_onednn, threads=1)
    )
    handles = []
    for name, value in zip(predictor.get_input_names(), inputs.values()):
        h = predictor.get_input_handle(name)
        h.reshape(list(value.shape))
        handles.append((h, value))
    out = predictor.get_output_handle(predictor.get_output_names()[0])

    def run():
        for h, value in handles:
            h.copy_from_cpu(value)
        predictor.run()
        return out.copy_to_cpu()

    return run


def bench(name, kind, repeat, tmp):
    import numpy as np
    import torch
    from harness import export_onnx, torch_reference

    import x2paddle_compat as xc
    from x2paddle_compat import sources
    from x2paddle_compat.verify import verify

    torch.set_num_threads(1)
    module, inputs = build(name)
    out = Path(tmp) / f"{kind}_{name}"
    if kind == "torch":
        refs = torch_reference(module, inputs)
        start = time.perf_counter()
        xc.convert_torch(module, inputs, out)
        convert_s = time.perf_counter() - start
        feed = {f"x{i}": t.numpy() for i, t in enumerate(inputs)}

        def source():
            with torch.no_grad():
                module(*inputs)

        source_name = "torch"
    else:
        path = export_onnx(module, inputs, Path(tmp) / f"{name}.onnx", 17)
        start = time.perf_counter()
        xc.convert_onnx(path, out)
        convert_s = time.perf_counter() - start
        feed = sources.onnx_inputs(path)
        if name == "bert_base":  # token ids over the whole vocabulary, as the torch path
            feed = {k: inputs[0].numpy() for k in feed}
        refs = sources.run_onnx(path, feed)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

        def source():
            session.run(None, feed)

        source_name = "onnxruntime"
    report = verify(out, feed, refs)
    feed = {k: np.ascontiguousarray(v) for k, v in feed.items()}
    row = timing_row(
        name, source_name, convert_s, report, out, feed, _median_ms(source, repeat), repeat
    )
    shutil.rmtree(out, ignore_errors=True)
    return row


def render() -> str:
    """README table from bench_real.json and bench_real_tf.json (between bench-real markers)."""
    rows = []
    for name in ("bench_real.json", "bench_real_tf.json"):
        path = HERE / "results" / name
        if path.exists():
            rows += json.loads(path.read_text())["rows"]

    def cell(r, key):
        v = r.get(key + "_ms")
        if v is None:
            err = r.get(key + "_error", "")
            return "WRONG result (caught)" if err == "wrong" else "fails: " + err.split(":")[0]
        mark = " (chosen)" if r["chosen_onednn"] == (key == "paddle_onednn") else ""
        return f"{v} ms = {r[key + '_ratio']}x{mark}"

    lines = [
        "| model | source runtime | convert s | verified | source ms | Paddle oneDNN on | "
        "Paddle oneDNN off |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['source']} | {r['convert_s']} | "
            f"{'yes' if r['verified'] else 'NO'} | {r['source_ms']} | "
            f"{cell(r, 'paddle_onednn')} | {cell(r, 'paddle')} |"
        )
    md = "\n".join(lines) + "\n"
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench-real:start -->", "<!-- bench-real:end -->"
    if start in text and end in text:
        a, b = text.index(start) + len(start), text.index(end)
        readme.write_text(text[:a] + "\n" + md + text[b:])
    return md


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument("--kinds", default="torch,onnx")
    p.add_argument(
        "--render", action="store_true", help="only rewrite the README table from the JSON results"
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="update the committed results and the README table (default: write results/<name>.local.json)",
    )
    args = p.parse_args(argv)
    if args.render:
        print(render())
        return 0
    import paddle

    names = args.only or ["resnet50", "mobilenet_v2", "bert_base", "vit_b16"]
    out = HERE / "results" / "bench_real.json"
    old = json.loads(out.read_text())["rows"] if out.exists() and args.only else []
    rows = []
    for name in names:
        for kind in args.kinds.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(bench(name, kind, args.repeat, tmp))
            print(json.dumps(rows[-1]), flush=True)
    done = {(r["model"], r["source"]) for r in rows}
    rows = [r for r in old if (r["model"], r["source"]) not in done] + rows
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": 1,
            "python": platform.python_version(),
            "paddle": paddle.__version__,
        },
        "repeat": args.repeat,
        "rows": rows,
    }
    if not args.record:
        out = out.with_name("bench_real.local.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(render() if args.record else json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
