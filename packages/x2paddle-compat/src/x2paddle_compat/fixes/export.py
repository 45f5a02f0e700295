"""Fixes in X2Paddle's export step (dygraph code -> Paddle 3 inference model)."""

from __future__ import annotations

import contextlib
import functools
import io
import os

from .registry import register


@register(
    "export-exit0", "R10", "dygraph2static's exit(0) / printed ValueError becomes a ConversionError"
)
def _export_exit0(fix) -> None:
    from x2paddle.core.program import PaddleGraph

    from ..errors import ConversionError

    original = PaddleGraph.dygraph2static

    @functools.wraps(original)
    def dygraph2static(self, save_dir, input_shapes=(), input_types=()):
        import paddle

        printed = io.StringIO()
        try:
            # a fresh name scope: Paddle refuses a parameter name already used in the
            # process, so a second conversion in one process would fail otherwise
            with contextlib.redirect_stdout(printed), paddle.utils.unique_name.guard():
                result = original(self, save_dir, list(input_shapes), list(input_types))
        except SystemExit as exc:
            lines = [ln.strip() for ln in printed.getvalue().splitlines() if ln.strip()]
            errors = [ln for ln in lines if "Error" in ln] or lines[-1:]
            raise ConversionError(
                f"exporting the Paddle inference model failed: {errors[-1] if errors else exc}"
                f" (generated code: {save_dir}/x2paddle_code.py; full message: "
                f"{' / '.join(lines[-12:])})"
            ) from None
        model_json = os.path.join(save_dir, "inference_model", "model.json")
        if not os.path.exists(model_json):
            raise ConversionError(
                f"X2Paddle wrote no inference model ({model_json} is missing): "
                f"{printed.getvalue().strip() or 'no message'}"
            )
        return result

    fix.patch(PaddleGraph, "dygraph2static", dygraph2static)


def _wrap_op_checker(fix, cls, framework: str) -> None:
    from ..errors import UnsupportedOpsError

    original = cls.op_checker

    @functools.wraps(original)
    def op_checker(self, *args, **kwargs):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            ok = original(self, *args, **kwargs)
        if ok:
            return ok
        ops = []
        for line in printed.getvalue().splitlines():
            line = line.strip()
            if line.startswith("==========") and "OPs are not supported" not in line:
                name = line.strip("= ").strip()
                if name:
                    ops.append(name)
        raise UnsupportedOpsError(framework, ops or ["<unknown>"])

    fix.patch(cls, "op_checker", op_checker)


@register(
    "unsupported-ops",
    "R10",
    "all unsupported operators are raised in one UnsupportedOpsError, not printed",
)
def _unsupported_ops(fix) -> None:
    import importlib

    for module, cls_name, framework in [
        ("x2paddle.op_mapper.pytorch2paddle.pytorch_op_mapper", "PyTorchOpMapper", "PyTorch"),
        ("x2paddle.op_mapper.onnx2paddle.onnx_op_mapper", "ONNXOpMapper", "ONNX"),
        ("x2paddle.op_mapper.caffe2paddle.caffe_op_mapper", "CaffeOpMapper", "Caffe"),
        ("x2paddle.op_mapper.tf2paddle.tf_op_mapper", "TFOpMapper", "TensorFlow"),
    ]:
        try:
            mod = importlib.import_module(module)
        except ImportError:  # e.g. tensorflow mapper needs nothing at import, but be safe
            continue
        _wrap_op_checker(fix, getattr(mod, cls_name), framework)


@register(
    "tf-fresh-graph",
    "N1",
    "each TensorFlow conversion decodes into its own tf.Graph (X2Paddle used the "
    "process-wide default graph, so a second conversion saw the first one's nodes)",
)
def _tf_fresh_graph(fix) -> None:
    from x2paddle.decoder import tf_decoder  # ImportError without tensorflow

    original = tf_decoder.TFDecoder.__init__
    tf = tf_decoder.tf

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        graph = tf.Graph()
        with graph.as_default():
            original(self, *args, **kwargs)

    fix.patch(tf_decoder.TFDecoder, "__init__", __init__)


@register(
    "caffe-bn-affine",
    "R13",
    "Caffe BatchNorm is emitted with explicit scale 1 / shift 0 parameters instead of "
    "BatchNorm2D(weight_attr=False, bias_attr=False), which Paddle 3.3.1's oneDNN "
    "predictor rejects ('Only support DenseTensorType...') or crashes on",
)
def _caffe_bn_affine(fix) -> None:
    from x2paddle.op_mapper.caffe2paddle import caffe_op_mapper

    mapper = caffe_op_mapper.CaffeOpMapper
    original = mapper.BatchNorm

    @functools.wraps(original)
    def BatchNorm(self, node):
        import numpy as np

        before = set(self.paddle_graph.layers)
        result = original(self, node)
        for layer_id in set(self.paddle_graph.layers) - before:
            layer = self.paddle_graph.layers[layer_id]
            if layer.kernel != "paddle.nn.BatchNorm2D" or layer.attrs.get("weight_attr", 1):
                continue
            name = layer.outputs[0]
            channels = int(layer.attrs["num_features"])
            layer.attrs.pop("weight_attr", None)
            layer.attrs.pop("bias_attr", None)
            self.params[name + ".weight"] = np.ones([channels], "float32")
            self.params[name + ".bias"] = np.zeros([channels], "float32")
        return result

    fix.patch(mapper, "BatchNorm", BatchNorm)


@register(
    "graph-del-layer-lists",
    "N8",
    "X2Paddle's PaddleGraph.del_layer rewired a removed layer's consumers only where the "
    "input was a single name, not inside list inputs (paddle.concat's x): after the "
    "TF conv+BatchNorm fusion and transpose elimination, a Concat of BatchNorm outputs "
    "referred to deleted variables (NameError in the emitted code)",
)
def _del_layer_lists(fix) -> None:
    from x2paddle.core.program import PaddleGraph

    original = PaddleGraph.del_layer

    @functools.wraps(original)
    def del_layer(self, layer_id):
        layer = self.layers[layer_id]
        if len(self.edges_in.get(layer_id, [])) == 1 and layer.inputs and layer.outputs:
            src, gone = list(layer.inputs.values())[0], layer.outputs[0]
            for out in self.edges_out.get(layer_id, []):
                consumer = self.layers[out]
                for key, value in consumer.inputs.items():
                    if isinstance(value, list) and gone in value:
                        consumer.inputs[key] = [src if v == gone else v for v in value]
        return original(self, layer_id)

    fix.patch(PaddleGraph, "del_layer", del_layer)


_NON_FINITE_TEXT = {"'inf'": "inf", "'-inf'": "-inf", "'nan'": "nan"}


def _non_finite_source(value):
    """Python source for a non-finite float attribute, else None."""
    import math

    import numpy as np

    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return f"float('{float(value)}')"
    return None


@register(
    "emit-non-finite-constants",
    "N22",
    "non-finite float constants (torch's clamp(min=...) exports Clip with max=+inf): "
    "X2Paddle emitted paddle.full(fill_value='inf') as a string, which Paddle 3's full "
    "rejects ('must be double, but got str'), and a NaN as a bare nan (NameError); both "
    "become float('inf') / float('nan') in the emitted code",
)
def _non_finite(fix) -> None:
    from x2paddle.core.program import PaddleGraph

    original = PaddleGraph.add_layer

    @functools.wraps(original)
    def add_layer(self, kernel, inputs, outputs, scope_name="", **kwargs):
        for key, value in kwargs.items():
            text = _non_finite_source(value)
            if text is None and kernel == "paddle.full" and key == "fill_value":
                word = _NON_FINITE_TEXT.get(value) if isinstance(value, str) else None
                text = f"float('{word}')" if word else None
            if text is not None:
                kwargs[key] = text
        return original(self, kernel, inputs, outputs, scope_name=scope_name, **kwargs)

    fix.patch(PaddleGraph, "add_layer", add_layer)
