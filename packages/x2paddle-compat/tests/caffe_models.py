"""Caffe nets for the tests and the zoo: random .caffemodel writer and a torch reference.

There is no Caffe runtime for Python 3.11, so the reference implements the Caffe layer
semantics used by these nets in torch (ceil-mode pooling, BatchNorm's moving-average
scale factor, Scale with bias, ...) and runs the same random weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F


def _pb2():
    from x2paddle.decoder import caffe_pb2

    import x2paddle_compat  # noqa: F401  (installs the regenerated caffe_pb2)

    return caffe_pb2


def parse_prototxt(text: str):
    from google.protobuf import text_format

    net = _pb2().NetParameter()
    text_format.Merge(text, net)
    return net


def _input_shape(net):
    if net.input_shape:
        return [list(net.input_shape[0].dim)]
    if net.input_dim:
        return [list(net.input_dim)]
    for layer in net.layer:
        if layer.type == "Input":
            return [list(s.dim) for s in layer.input_param.shape]
    raise ValueError("no input shape")


def _pair(param, name, default):
    single = getattr(param, name, None)
    h, w = getattr(param, name + "_h", 0), getattr(param, name + "_w", 0)
    if h or w:
        return h, w
    if single is not None and not isinstance(single, int):
        single = list(single)
        return (single[0], single[0]) if single else (default, default)
    return (single, single) if single else (default, default)


class TooLarge(ValueError):
    pass


def random_caffemodel(
    net, path: Path, seed: int = 0, batch: int = 1, max_params: int | None = None
):
    """Write random blobs for every parameterised layer; returns {layer: [arrays]}."""
    rng = np.random.default_rng(seed)
    pb2 = _pb2()
    shapes = {}
    in_shape = _input_shape(net)[0]
    in_shape[0] = batch
    blobs_out = {}
    model = pb2.NetParameter(name=net.name)
    # shape propagation by running the torch reference with zero weights
    tops = {}
    first_input = (
        net.input[0]
        if net.input
        else [layer for layer in net.layer if layer.type == "Input"][0].top[0]
    )
    tops[first_input] = torch.zeros(in_shape)
    for layer in net.layer:
        if layer.type == "Input":
            continue
        x = tops[layer.bottom[0]] if layer.bottom else None
        blobs = []
        if layer.type in _DEPTHWISE:
            p = layer.convolution_param
            k = _pair(p, "kernel_size", 1)
            cin = x.shape[1]
            w = rng.standard_normal((p.num_output, 1, *k)) / math.sqrt(k[0] * k[1])
            blobs = [w.astype("float32")]
            if p.bias_term:
                blobs.append((rng.standard_normal(p.num_output) * 0.1).astype("float32"))
        elif layer.type == "Deconvolution":
            p = layer.convolution_param
            k = _pair(p, "kernel_size", 1)
            g = p.group or 1
            cin = x.shape[1]
            w = rng.standard_normal((cin, p.num_output // g, *k)) / math.sqrt(cin * k[0] * k[1])
            blobs = [w.astype("float32")]
            if p.bias_term:
                blobs.append((rng.standard_normal(p.num_output) * 0.1).astype("float32"))
        elif layer.type == "Convolution":
            p = layer.convolution_param
            k = _pair(p, "kernel_size", 1)
            g = p.group or 1
            cin = x.shape[1]
            w = rng.standard_normal((p.num_output, cin // g, *k)) / math.sqrt(
                cin // g * k[0] * k[1]
            )
            blobs = [w.astype("float32")]
            if p.bias_term:
                blobs.append((rng.standard_normal(p.num_output) * 0.1).astype("float32"))
        elif layer.type == "InnerProduct":
            p = layer.inner_product_param
            cin = int(np.prod(x.shape[1:]))
            blobs = [(rng.standard_normal((p.num_output, cin)) / math.sqrt(cin)).astype("float32")]
            if p.bias_term:
                blobs.append((rng.standard_normal(p.num_output) * 0.1).astype("float32"))
        elif layer.type == "BatchNorm":
            c = x.shape[1]
            factor = 2.0
            blobs = [
                (rng.standard_normal(c) * 0.1 * factor).astype("float32"),
                ((rng.random(c) + 0.5) * factor).astype("float32"),
                np.array([factor], "float32"),
            ]
        elif layer.type == "Scale":
            c = x.shape[1]
            blobs = [(rng.random(c) + 0.5).astype("float32")]
            if layer.scale_param.bias_term:
                blobs.append((rng.standard_normal(c) * 0.1).astype("float32"))
        elif layer.type == "PReLU":
            blobs = [(rng.random(x.shape[1]) * 0.3).astype("float32")]
        blobs_out[layer.name] = blobs
        if max_params is not None:
            total = sum(b.size for bs in blobs_out.values() for b in bs)
            if total > max_params:
                raise TooLarge(f"more than {max_params / 1e6:.0f}M parameters")
        out = _forward_layer(layer, [tops[b] for b in layer.bottom], blobs)
        for name, value in zip(layer.top, out):
            tops[name] = value
        entry = model.layer.add(name=layer.name, type=layer.type)
        for b in blobs:
            blob = entry.blobs.add()
            blob.shape.dim.extend(b.shape)
            blob.data.extend(b.reshape(-1).tolist())
    del shapes
    Path(path).write_bytes(model.SerializeToString())
    return blobs_out


_DEPTHWISE = ("ConvolutionDepthwise", "DepthwiseConvolution")


def _pool(x, p):
    k = _pair(p, "kernel_size", 1)
    s = _pair(p, "stride", 1)
    pad = _pair(p, "pad", 0)
    if p.global_pooling:
        k, s, pad = tuple(x.shape[2:]), (1, 1), (0, 0)
    if p.pool == 0:  # MAX: Caffe rounds the output size up and allows pad >= kernel / 2
        h, w = x.shape[2:]
        y = F.max_pool2d(
            F.pad(x, (pad[1], pad[1], pad[0], pad[0]), value=float("-inf")), k, s, 0, ceil_mode=True
        )
        oh = math.ceil((h + 2 * pad[0] - k[0]) / s[0]) + 1
        ow = math.ceil((w + 2 * pad[1] - k[1]) / s[1]) + 1
        if pad[0] and (oh - 1) * s[0] >= h + pad[0]:
            oh -= 1
        if pad[1] and (ow - 1) * s[1] >= w + pad[1]:
            ow -= 1
        return y[:, :, :oh, :ow]
    return F.avg_pool2d(x, k, s, pad, ceil_mode=True, count_include_pad=True)


def _forward_layer(layer, xs, blobs):
    t = [torch.from_numpy(b) for b in blobs]
    x = xs[0] if xs else None
    kind = layer.type
    if kind == "Convolution":
        p = layer.convolution_param
        return [
            F.conv2d(
                x,
                t[0],
                t[1] if len(t) > 1 else None,
                _pair(p, "stride", 1),
                _pair(p, "pad", 0),
                _pair(p, "dilation", 1),
                p.group or 1,
            )
        ]
    if kind in _DEPTHWISE:
        p = layer.convolution_param
        return [
            F.conv2d(
                x,
                t[0],
                t[1] if len(t) > 1 else None,
                _pair(p, "stride", 1),
                _pair(p, "pad", 0),
                _pair(p, "dilation", 1),
                x.shape[1],
            )
        ]
    if kind == "Deconvolution":
        p = layer.convolution_param
        return [
            F.conv_transpose2d(
                x,
                t[0],
                t[1] if len(t) > 1 else None,
                _pair(p, "stride", 1),
                _pair(p, "pad", 0),
                groups=p.group or 1,
                dilation=_pair(p, "dilation", 1),
            )
        ]
    if kind == "Crop":
        p = layer.crop_param
        axis = p.axis if p.HasField("axis") else 2
        ref = xs[1]
        out = x
        offsets = list(p.offset)
        for d in range(axis, x.dim()):
            off = offsets[0] if len(offsets) == 1 else (offsets[d - axis] if offsets else 0)
            out = out.narrow(d, off, ref.shape[d])
        return [out]
    if kind == "Permute":
        return [x.permute(*list(layer.permute_param.order))]
    if kind == "Reshape":
        dims = list(layer.reshape_param.shape.dim)
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
        return [x.reshape(dims)]
    if kind == "InnerProduct":
        return [F.linear(x.flatten(1), t[0], t[1] if len(t) > 1 else None)]
    if kind == "BatchNorm":
        f = float(t[2][0]) if float(t[2][0]) != 0 else 1.0
        mean, var = t[0] / f, t[1] / f
        eps = layer.batch_norm_param.eps if layer.batch_norm_param.HasField("eps") else 1e-5
        shape = (1, -1, 1, 1)
        return [(x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)]
    if kind == "Scale":
        y = x * t[0].view(1, -1, 1, 1)
        if len(t) > 1:
            y = y + t[1].view(1, -1, 1, 1)
        return [y]
    if kind == "ReLU":
        slope = layer.relu_param.negative_slope
        return [F.leaky_relu(x, slope) if slope else F.relu(x)]
    if kind == "PReLU":
        return [F.prelu(x, t[0])]
    if kind == "Sigmoid":
        return [torch.sigmoid(x)]
    if kind == "TanH":
        return [torch.tanh(x)]
    if kind == "Pooling":
        return [_pool(x, layer.pooling_param)]
    if kind == "Softmax":
        return [
            F.softmax(
                x, dim=layer.softmax_param.axis if layer.softmax_param.HasField("axis") else 1
            )
        ]
    if kind == "Eltwise":
        op = layer.eltwise_param.operation
        if op == 0:
            return [torch.stack(xs).prod(0)]
        if op == 2:
            return [torch.stack(xs).max(0).values]
        return [torch.stack(xs).sum(0)]
    if kind == "Concat":
        return [
            torch.cat(xs, layer.concat_param.axis if layer.concat_param.HasField("axis") else 1)
        ]
    if kind == "Dropout":
        return [x]
    if kind == "Reduction":
        p = layer.reduction_param
        axis = p.axis if p.axis >= 0 else x.dim() + p.axis
        dims = list(range(axis, x.dim()))
        op = p.operation or 1
        y = {
            1: lambda: x.sum(dims),
            2: lambda: x.abs().sum(dims),
            3: lambda: (x * x).sum(dims),
            4: lambda: x.mean(dims),
        }[op]()
        return [y * (p.coeff if p.HasField("coeff") else 1.0)]
    if kind == "LRN":
        p = layer.lrn_param
        return [F.local_response_norm(x, p.local_size, p.alpha, p.beta, p.k)]
    if kind == "Slice":
        p = layer.slice_param
        axis = p.axis if p.HasField("axis") else (p.slice_dim if p.HasField("slice_dim") else 1)
        points = list(p.slice_point)
        if not points:
            step = x.shape[axis] // len(layer.top)
            points = [step * i for i in range(1, len(layer.top))]
        bounds = [0, *points, x.shape[axis]]
        return [x.narrow(axis, a, b - a) for a, b in zip(bounds, bounds[1:])]
    if kind == "ShuffleChannel":
        g = layer.shuffle_channel_param.group
        n, c, h, w = x.shape
        return [x.reshape(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)]
    if kind == "Flatten":
        return [x.flatten(1)]
    raise NotImplementedError(f"reference has no Caffe layer {kind}")


def reference(net, caffemodel_blobs, x: np.ndarray):
    """Outputs of the net's unconsumed tops, in layer order."""
    tops = {}
    first = (
        net.input[0]
        if net.input
        else [layer for layer in net.layer if layer.type == "Input"][0].top[0]
    )
    tops[first] = torch.from_numpy(x)
    consumed = set()
    order = []
    with torch.no_grad():
        for layer in net.layer:
            if layer.type == "Input":
                continue
            consumed.update(layer.bottom)
            out = _forward_layer(
                layer, [tops[b] for b in layer.bottom], caffemodel_blobs[layer.name]
            )
            for name, value in zip(layer.top, out):
                tops[name] = value
                if name not in order:
                    order.append(name)
    return [tops[n].numpy() for n in order if n not in consumed]


SMALL_NETS = {
    "conv_bn_scale_pool_fc": """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 12 dim: 12 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 1 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
""",
    "residual_eltwise_concat": """
name: "res"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 8 dim: 8 } } }
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "a_relu" type: "ReLU" bottom: "a" top: "a" }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "data" top: "sum" }
layer { name: "b" type: "Convolution" bottom: "sum" top: "b"
        convolution_param { num_output: 4 kernel_size: 1 group: 2 } }
layer { name: "cat" type: "Concat" bottom: "sum" bottom: "b" top: "cat" }
layer { name: "gap" type: "Pooling" bottom: "cat" top: "gap" pooling_param { pool: AVE global_pooling: true } }
""",
}


def write_net(name_or_text: str, folder: Path, seed: int = 0):
    """(prototxt path, caffemodel path, parsed net, blobs) for a net in SMALL_NETS or text."""
    text = SMALL_NETS.get(name_or_text, name_or_text)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    proto, weights = folder / "net.prototxt", folder / "net.caffemodel"
    proto.write_text(text)
    net = parse_prototxt(text)
    blobs = random_caffemodel(net, weights, seed)
    return proto, weights, net, blobs
