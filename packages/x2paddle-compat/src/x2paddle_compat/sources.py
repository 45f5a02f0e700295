"""Source-framework runtimes used by verification: onnxruntime and TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_ONNX_NP = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
            9: np.bool_, 10: np.float16, 11: np.float64}


def _random(shape, dtype, rng) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 4, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def onnx_inputs(model_path, input_shape_dict: dict | None = None, seed: int = 0):
    """Random inputs for the graph inputs of an ONNX model (dynamic dims -> 1)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    inputs = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        tensor_type = value.type.tensor_type
        if input_shape_dict and value.name in input_shape_dict:
            shape = [int(d) if int(d) > 0 else 1 for d in input_shape_dict[value.name]]
        else:
            shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                     for d in tensor_type.shape.dim]
        inputs[value.name] = _random(shape, _ONNX_NP.get(tensor_type.elem_type, np.float32), rng)
    return inputs


def run_onnx(model_path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def tf_graph_io(model_path):
    """(inputs, outputs) of a frozen TF graph: placeholders and the nodes nobody consumes."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(model_path).read_bytes())
    consumed = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
    placeholders = [n for n in graph_def.node if n.op == "Placeholder"]
    outputs = [n.name for n in graph_def.node
               if n.name not in consumed and n.op not in ("Placeholder", "Const", "NoOp")]
    return graph_def, placeholders, outputs


def tf_inputs(model_path, seed: int = 0):
    import tensorflow as tf

    _, placeholders, _ = tf_graph_io(model_path)
    rng = np.random.default_rng(seed)
    inputs = {}
    for node in placeholders:
        shape = [d.size if d.size > 0 else 1 for d in node.attr["shape"].shape.dim]
        dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype
        inputs[node.name] = _random(shape, dtype, rng)
    return inputs


def run_tensorflow(model_path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import tensorflow as tf

    graph_def, _, outputs = tf_graph_io(model_path)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        fetches = [graph.get_tensor_by_name(o + ":0") for o in outputs]
        feed = {graph.get_tensor_by_name(k + ":0"): v for k, v in inputs.items()}
        return list(sess.run(fetches, feed))
