"""Conversion time per model and Paddle Inference latency against the source runtime.

    python benchmarks/bench_convert.py [--repeat 50]

For each model (random weights, small inputs): seconds to convert, then the median
latency of one forward on the same input in the source runtime (torch CPU eager,
onnxruntime CPU) and in the Paddle Inference predictor configured by verification
(deploy.json). Everything single-threaded on the same machine in the same run; the
ratios (paddle / source) are what to read. Writes benchmarks/results/bench_convert.local.json
(``--record``: the committed bench_convert.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

MODELS = [
    ("torch", "resnet"),
    ("torch", "mobilenet_v3"),
    ("torch", "vit"),
    ("torch", "lstm"),
    ("onnx", "resnet"),
    ("onnx", "mobilenet_v2"),
    ("onnx", "gru"),
    ("onnx", "vit"),
]


def _median_ms(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _predictor_fn(folder, inputs):
    from x2paddle_compat.verify import create_predictor

    predictor = create_predictor(folder)
    handles = []
    for name, value in zip(predictor.get_input_names(), inputs.values()):
        h = predictor.get_input_handle(name)
        h.reshape(list(value.shape))
        handles.append((h, value))

    def run():
        for h, value in handles:
            h.copy_from_cpu(value)
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    return run


def bench(kind, family, repeat, tmp):
    import numpy as np
    import torch
    import torch_models
    from harness import export_onnx, torch_reference

    import x2paddle_compat as xc
    from x2paddle_compat import sources
    from x2paddle_compat.verify import verify

    torch.set_num_threads(1)
    module, inputs = torch_models.build(family)
    out = Path(tmp) / f"{kind}_{family}"
    if kind == "torch":
        start = time.perf_counter()
        xc.convert_torch(module, inputs, out)
        convert_s = time.perf_counter() - start
        feed = {f"x{i}": t.numpy() for i, t in enumerate(inputs)}
        refs = torch_reference(module, inputs)

        def source():
            with torch.no_grad():
                module(*inputs)

        source_name = "torch"
    else:
        path = export_onnx(module, inputs, Path(tmp) / f"{family}.onnx", 17)
        start = time.perf_counter()
        xc.convert_onnx(path, out)
        convert_s = time.perf_counter() - start
        feed = sources.onnx_inputs(path)
        refs = sources.run_onnx(path, feed)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

        def source():
            session.run(None, feed)

        source_name = "onnxruntime"
    report = verify(out, feed, refs)
    feed = {k: np.ascontiguousarray(v) for k, v in feed.items()}
    source_ms = _median_ms(source, repeat)
    paddle_ms = _median_ms(_predictor_fn(out, feed), repeat)
    return {
        "model": family,
        "source": source_name,
        "convert_s": round(convert_s, 2),
        "verified": report.ok,
        "use_onednn": report.predictor_config.get("use_onednn"),
        "source_ms": round(source_ms, 3),
        "paddle_ms": round(paddle_ms, 3),
        "latency_ratio_paddle_over_source": round(paddle_ms / source_ms, 2),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument(
        "--record",
        action="store_true",
        help="update the committed results (default: write results/<name>.local.json)",
    )
    args = p.parse_args(argv)
    import paddle

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, family in MODELS:
            rows.append(bench(kind, family, args.repeat, tmp))
            print(json.dumps(rows[-1]), flush=True)
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
    out = HERE / "results" / ("bench_convert.json" if args.record else "bench_convert.local.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(
        f"{'model':<14}{'source':<13}{'convert s':>10}{'source ms':>11}{'paddle ms':>11}"
        f"{'ratio':>7}"
    )
    for r in rows:
        print(
            f"{r['model']:<14}{r['source']:<13}{r['convert_s']:>10}{r['source_ms']:>11}"
            f"{r['paddle_ms']:>11}{r['latency_ratio_paddle_over_source']:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
