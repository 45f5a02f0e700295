"""Child process of sources.run_onnx_isolated: MODEL.onnx IN.npz OUT.npz OPTIMIZE.

The source runtime runs here so that a crash (segfault) of onnxruntime on the verification
inputs is reported as such instead of ending the converter without a word.
"""

import sys

import numpy as np


def main(argv):
    model, src, dst, optimize = argv
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    if optimize != "1":
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    data = np.load(src)
    outs = session.run(None, {k: data[k] for k in data.files})
    np.savez(dst, **{f"out{i}": np.asarray(o) for i, o in enumerate(outs)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
