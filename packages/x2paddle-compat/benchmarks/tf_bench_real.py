"""Real-size Keras models (random weights) frozen TF2-style: conversion time and Paddle
Inference latency against TensorFlow (tf.compat.v1 Session on the frozen graph), same input.

    python benchmarks/tf_bench_real.py [--repeat 10]   # in the TensorFlow venv
    nox -s bench-x2paddle-compat-tf

Keras applications ResNet50 and MobileNetV2 (alpha 1.0) at 224x224, BatchNorm statistics
randomized. Verified first (1e-5 + 1e-5 * max|reference|), then the latency of each
predictor configuration verification found correct. Single-threaded (TF intra/inter op
threads 1), median of ``--repeat`` runs after a warm-up. Writes
benchmarks/results/bench_real_tf.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "tf"))

from bench_real import _median_ms, timing_row  # noqa: E402

MODELS = {"resnet50": ("ResNet50", {}), "mobilenet_v2": ("MobileNetV2", {"alpha": 1.0})}


def bench(name, repeat, tmp):
    import keras
    import keras_zoo
    import tensorflow as tf

    import x2paddle_compat as xc
    from x2paddle_compat import sources
    from x2paddle_compat.verify import verify

    app, kwargs = MODELS[name]
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, app)(weights=None, input_shape=(224, 224, 3), **kwargs)
    keras_zoo.randomize(model)
    pb = keras_zoo.freeze(model, Path(tmp) / f"{name}.pb")
    del model
    out = Path(tmp) / name
    start = time.perf_counter()
    xc.convert_tensorflow(pb, out)
    convert_s = time.perf_counter() - start
    feed = sources.tf_inputs(pb)
    refs = sources.run_tensorflow(pb, feed)
    report = verify(out, feed, refs)

    graph_def, _, outputs = sources.tf_graph_io(pb)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=1, inter_op_parallelism_threads=1
    )
    sess = tf.compat.v1.Session(graph=graph, config=config)
    fetches = [graph.get_tensor_by_name(o + ":0") for o in outputs]
    tf_feed = {graph.get_tensor_by_name(k + ":0"): v for k, v in feed.items()}
    source_ms = _median_ms(lambda: sess.run(fetches, tf_feed), repeat)
    return timing_row(name, "tensorflow", convert_s, report, out, feed, source_ms, repeat)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument(
        "--record",
        action="store_true",
        help="update the committed results (default: write results/<name>.local.json)",
    )
    args = p.parse_args(argv)
    import paddle
    import tensorflow as tf

    rows = []
    for name in MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(bench(name, args.repeat, tmp))
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": 1,
            "python": platform.python_version(),
            "paddle": paddle.__version__,
            "tensorflow": tf.__version__,
        },
        "repeat": args.repeat,
        "rows": rows,
    }
    out = HERE / "results" / ("bench_real_tf.json" if args.record else "bench_real_tf.local.json")
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
