"""Frozen TensorFlow 1.x-style graphs with random constant weights (no variables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _w(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype("float32")


def cnn(tf, rng):
    """conv + bias_add + fused BN + relu6 + maxpool + depthwise + mean + matmul + softmax."""
    x = tf.compat.v1.placeholder(tf.float32, [1, 16, 16, 3], name="input")
    y = tf.nn.conv2d(x, _w(rng, 3, 3, 3, 8), [1, 1, 1, 1], "SAME")
    y = tf.nn.bias_add(y, _w(rng, 8))
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(
        y,
        _w(rng, 8) + 1,
        _w(rng, 8),
        mean=_w(rng, 8),
        variance=np.abs(_w(rng, 8)) + 0.5,
        is_training=False,
    )
    y = tf.nn.relu6(y)
    y = tf.nn.max_pool2d(y, 2, 2, "SAME")
    y = tf.nn.depthwise_conv2d(y, _w(rng, 3, 3, 8, 1), [1, 1, 1, 1], "SAME")
    y = tf.reduce_mean(y, axis=[1, 2])
    y = tf.matmul(y, _w(rng, 8, 5)) + _w(rng, 5)
    return tf.nn.softmax(y, name="output")


def mlp(tf, rng):
    """matmul + tanh + reshape + transpose + concat + reduce_sum + sigmoid."""
    x = tf.compat.v1.placeholder(tf.float32, [2, 12], name="input")
    h = tf.tanh(tf.matmul(x, _w(rng, 12, 16)) + _w(rng, 16))
    r = tf.transpose(tf.reshape(h, [2, 4, 4]), [0, 2, 1])
    c = tf.concat([r, tf.reshape(h, [2, 4, 4]) * 0.5], axis=2)
    s = tf.reduce_sum(c, axis=1)
    return tf.sigmoid(tf.matmul(s, _w(rng, 8, 3)), name="output")


def segnet(tf, rng):
    """strided conv + leaky relu + avg pool + bilinear resize back + add + conv (UNet-like)."""
    x = tf.compat.v1.placeholder(tf.float32, [1, 16, 16, 2], name="input")
    d = tf.nn.leaky_relu(tf.nn.conv2d(x, _w(rng, 3, 3, 2, 4), [1, 2, 2, 1], "SAME"), 0.1)
    d = tf.nn.avg_pool2d(d, 2, 2, "VALID")
    u = tf.compat.v1.image.resize_bilinear(d, [16, 16], align_corners=True)
    y = tf.concat([u, x], axis=3)
    return tf.nn.conv2d(y, _w(rng, 1, 1, 6, 3), [1, 1, 1, 1], "SAME", name="output")


GRAPHS = {"cnn": cnn, "mlp": mlp, "segnet": segnet}


def write_frozen(name: str, path: Path, seed: int = 0) -> Path:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        GRAPHS[name](tf, rng)
    Path(path).write_bytes(graph.as_graph_def().SerializeToString())
    return Path(path)
