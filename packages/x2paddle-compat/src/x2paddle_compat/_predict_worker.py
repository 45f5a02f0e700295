"""Child process of verify.run_predictor_isolated: FOLDER IN.npz OUT.npz USE_ONEDNN.

Run as a script (not ``-m``) so that only paddle and numpy are imported: no X2Paddle,
torch or onnx start-up cost in the child.
"""

import os
import sys

import numpy as np


def main(argv):
    folder, src, dst, onednn = argv
    import paddle.inference as paddle_infer

    inf = os.path.join(folder, "inference_model")
    params = os.path.join(inf, "model.pdiparams")
    config = paddle_infer.Config(
        os.path.join(inf, "model.json"), params if os.path.exists(params) else ""
    )
    config.disable_gpu()
    config.disable_glog_info()
    config.set_cpu_math_library_num_threads(1)
    if onednn == "1":
        config.enable_mkldnn()
    else:
        config.disable_mkldnn()
    predictor = paddle_infer.create_predictor(config)
    data = np.load(src)
    values = [data[k] for k in data.files]
    for i, name in enumerate(predictor.get_input_names()):
        value = data[name] if name in data.files else values[i]
        handle = predictor.get_input_handle(name)
        handle.reshape(list(value.shape))
        handle.copy_from_cpu(np.ascontiguousarray(value))
    predictor.run()
    outs = [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]
    np.savez(dst, **{f"out{i}": o for i, o in enumerate(outs)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
