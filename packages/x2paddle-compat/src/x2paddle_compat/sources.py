"""Source-framework runtimes used by verification: onnxruntime and TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_ONNX_NP = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
}


# Verification inputs larger than this are refused before anything is allocated (a model
# may declare a huge static input; -isd then gives a smaller shape where the model allows)
MAX_INPUT_BYTES = 1 << 30

# Realistic sizes for dimensions a model leaves open: a batch of 1, images at 224x224 (a
# typical classifier/detector size, a multiple of 32), 16 tokens, one second of 16 kHz audio
DEFAULT_BATCH = 1
DEFAULT_IMAGE_SIDE = 224
DEFAULT_TOKENS = 16
DEFAULT_SAMPLES = 16000
DEFAULT_STEPS = 16


def _random(shape, dtype, rng, low: int = 0, high: int = 4) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(low, high, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def default_shape(dims: list, dtype, named: dict[str, int]) -> list[int]:
    """Concrete sizes for one input's declared dims (ints, or names / None for unknown).

    A symbolic name keeps one size across all inputs (``batch``, ``sequence``); otherwise
    dim 0 is the batch, an NCHW image (channels 1, 3 or 4 at dim 1 of a rank-4 float input)
    gets 224 for an unknown side, integer inputs get 16 tokens, a rank-2 float input 16000
    samples, anything else 16 steps.
    """
    rank = len(dims)
    image = (
        rank == 4
        and np.issubdtype(np.dtype(dtype), np.floating)
        and isinstance(dims[1], int)
        and dims[1] in (1, 3, 4)
    )
    out = []
    for i, d in enumerate(dims):
        if isinstance(d, int) and d > 0:
            out.append(d)
            continue
        if isinstance(d, str) and d in named:
            out.append(named[d])
            continue
        if i == 0:
            size = DEFAULT_BATCH
        elif image and i >= 2:
            size = DEFAULT_IMAGE_SIDE
        elif np.issubdtype(np.dtype(dtype), np.integer):
            size = DEFAULT_TOKENS
        elif rank == 2:
            size = DEFAULT_SAMPLES
        else:
            size = DEFAULT_STEPS
        if isinstance(d, str) and d:
            named[d] = size
        out.append(size)
    return out


def integer_ranges(model) -> dict[str, tuple[int, int]]:
    """Valid value ranges ``[low, high)`` of integer graph inputs, read from the graph.

    An input that indexes an embedding table (``Gather`` of an initializer, through Cast /
    Unsqueeze / Reshape) gets ``[0, rows)``; one compared with a constant (``Equal``, e.g. a
    sample rate) gets exactly that constant; an input whose name says it is a mask, 0/1.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consts = {
        n.output[0]: numpy_helper.to_array(a.t)
        for n in graph.node
        if n.op_type == "Constant"
        for a in n.attribute
        if a.name == "value"
    }
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    ranges: dict[str, tuple[int, int]] = {}
    for value in graph.input:
        if value.name in inits:
            continue
        frontier, seen = [value.name], set()
        while frontier:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            for node in consumers.get(name, []):
                if node.op_type in (
                    "Cast",
                    "Unsqueeze",
                    "Reshape",
                    "Squeeze",
                    "Flatten",
                    "Identity",
                ):
                    frontier.extend(node.output)
                elif (
                    node.op_type == "Gather"
                    and len(node.input) > 1
                    and node.input[1] == name
                    and node.input[0] in inits
                ):
                    rows = int(inits[node.input[0]].dims[0])
                    low, high = ranges.get(value.name, (0, rows))
                    ranges[value.name] = (0, min(high, rows))
                elif node.op_type == "Equal":
                    other = [i for i in node.input if i != name]
                    const = consts.get(other[0]) if other else None
                    if const is None and other and other[0] in inits:
                        const = numpy_helper.to_array(inits[other[0]])
                    if const is not None and np.asarray(const).size == 1:
                        c = int(np.asarray(const).reshape(-1)[0])
                        ranges.setdefault(value.name, (c, c + 1))
        if value.name not in ranges and "mask" in value.name.lower():
            ranges[value.name] = (0, 2)
    return ranges


def onnx_inputs(model_path, input_shape_dict: dict | None = None, seed: int = 0):
    """Inputs for the graph inputs of an ONNX model: shapes from ``input_shape_dict`` or
    realistic defaults (:func:`default_shape`), integers from their valid range
    (:func:`integer_ranges`), floats standard normal."""
    import onnx

    from .errors import InvalidModelError

    model = onnx.load(str(model_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    ranges = integer_ranges(model)
    rng = np.random.default_rng(seed)
    named: dict[str, int] = {}
    inputs = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        tensor_type = value.type.tensor_type
        dtype = _ONNX_NP.get(tensor_type.elem_type, np.float32)
        if input_shape_dict and value.name in input_shape_dict:
            given = list(input_shape_dict[value.name])
            dims = [d.dim_param if d.HasField("dim_param") else None for d in tensor_type.shape.dim]
            if len(dims) != len(given):
                dims = [None] * len(given)
            shape = default_shape(
                [g if g > 0 else dims[i] for i, g in enumerate(given)], dtype, named
            )
        else:
            dims = [
                d.dim_value
                if d.HasField("dim_value") and d.dim_value > 0
                else (d.dim_param or None)
                for d in tensor_type.shape.dim
            ]
            shape = default_shape(dims, dtype, named)
        size = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
        if size > MAX_INPUT_BYTES:
            raise InvalidModelError(
                f"input '{value.name}' of shape {shape} would need {size / 2**30:.1f} GiB for "
                f"verification (limit {MAX_INPUT_BYTES / 2**30:.0f} GiB); give a smaller "
                "shape with -isd if the model allows one",
                model_path,
            )
        low, high = ranges.get(value.name, (0, 4))
        inputs[value.name] = _random(shape, dtype, rng, low, high)
    return inputs


def run_onnx(
    model_path, inputs: dict[str, np.ndarray], *, optimize: bool = True
) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def run_onnx_isolated(
    model_path, inputs: dict[str, np.ndarray], *, optimize: bool = True, timeout: float = 600
) -> list[np.ndarray]:
    """:func:`run_onnx` in a child process: a failure or crash of onnxruntime becomes a
    :class:`SourceRuntimeError` naming it, not a traceback or a dead converter."""
    import os
    import subprocess
    import sys
    import tempfile

    from .errors import SourceRuntimeError

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, **inputs)
        worker = Path(__file__).with_name("_source_worker.py")
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    str(worker),
                    str(model_path),
                    str(src),
                    str(dst),
                    "1" if optimize else "0",
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
        except subprocess.TimeoutExpired as exc:
            raise SourceRuntimeError(
                f"onnxruntime did not finish in {timeout:g} s on the verification inputs",
                model_path,
            ) from exc
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            tail = lines[-1][:300] if lines else "no message"
            how = f"crashed (signal {-proc.returncode})" if proc.returncode < 0 else "failed"
            shapes = ", ".join(f"{k} {list(v.shape)} {v.dtype}" for k, v in inputs.items())
            raise SourceRuntimeError(
                f"onnxruntime {how} on the verification inputs ({shapes}): {tail}; give "
                "shapes the model accepts with -isd",
                model_path,
            )
        data = np.load(dst)
        return [data[f"out{i}"] for i in range(len(data.files))]


def tf_graph_io(model_path):
    """(inputs, outputs) of a frozen TF graph: placeholders and the nodes nobody consumes."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(model_path).read_bytes())
    consumed = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
    placeholders = [n for n in graph_def.node if n.op == "Placeholder"]
    outputs = [
        n.name
        for n in graph_def.node
        if n.name not in consumed and n.op not in ("Placeholder", "Const", "NoOp")
    ]
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
