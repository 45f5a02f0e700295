"""Child process of the static shape folding pass: SRC.onnx DST.onnx.

onnxruntime's graph optimizer runs here, not in the converter's process, so a crash of
onnxruntime (seen on a real model) is reported instead of killing the conversion.
"""

import sys


def main(argv):
    src, dst = argv
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = dst
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
