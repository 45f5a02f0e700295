"""Keras models standing in for the TensorFlow families of X2Paddle's test_benchmark.

Keras applications (``weights=None``) where Keras has the family, otherwise the architecture
rebuilt here from its published structure with reduced width (the op mix of the family is
kept: PReLU heads of MTCNN, channel shuffle, fire modules, darknet residuals + upsampling
heads, SSH context modules + FPN, U-Nets with transposed convolutions, ALBERT's factorized
embedding and shared layers). Every model gets random weights, including BatchNorm
statistics and biases, and is frozen the TF2 way (``convert_variables_to_constants_v2``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _keras():
    import keras

    return keras


# --- small building blocks -------------------------------------------------------------


def _conv_bn(x, filters, k=3, s=1, act="relu", groups=1):
    L = _keras().layers
    if groups > 1:  # grouped conv as split + conv + concat (as TF1 ShuffleNet graphs do;
        # Keras' grouped Conv2D freezes into a StatefulPartitionedCall)
        parts = _keras().ops.split(x, groups, axis=-1)
        x = L.Concatenate()(
            [L.Conv2D(filters // groups, k, s, padding="same", use_bias=False)(p) for p in parts]
        )
    else:
        x = L.Conv2D(filters, k, s, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    if act == "leaky":
        return L.LeakyReLU(negative_slope=0.1)(x)
    return L.Activation(act)(x) if act else x


def _mbconv(x, cin, cout, expand, k, s, se):
    L = _keras().layers
    y = _conv_bn(x, cin * expand, 1) if expand != 1 else x
    y = L.DepthwiseConv2D(k, s, padding="same", use_bias=False)(y)
    y = L.Activation("relu")(L.BatchNormalization()(y))
    if se:
        w = L.GlobalAveragePooling2D(keepdims=True)(y)
        w = L.Conv2D(max(1, cin * expand // 4), 1, activation="relu")(w)
        w = L.Conv2D(cin * expand, 1, activation="sigmoid")(w)
        y = L.Multiply()([y, w])
    y = _conv_bn(y, cout, 1, act=None)
    return L.Add()([x, y]) if s == 1 and cin == cout else y


# --- families ----------------------------------------------------------------------------


def mnasnet_a1(size=32):
    """MnasNet-A1: MBConv stages with squeeze-excitation (5x5 kernels in places)."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((size, size, 3), name="input")
    x = _conv_bn(inp, 16, 3, 2)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = _conv_bn(L.Activation("relu")(L.BatchNormalization()(x)), 8, 1, act=None)
    c = 8
    for cout, expand, k, s, se, n in [
        (12, 6, 3, 2, False, 2),
        (20, 3, 5, 2, True, 2),
        (40, 6, 3, 2, False, 2),
        (56, 6, 3, 1, True, 1),
        (80, 6, 5, 2, True, 2),
    ]:
        for i in range(n):
            x = _mbconv(x, c, cout, expand, k, s if i == 0 else 1, se)
            c = cout
    x = _conv_bn(x, 160, 1)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10)(x))


def squeezenet(size=32):
    keras = _keras()
    L = keras.layers
    inp = keras.Input((size, size, 3), name="input")
    x = L.Conv2D(16, 3, 2, activation="relu")(inp)
    x = L.MaxPooling2D(3, 2)(x)

    def fire(x, s, e):
        x = L.Conv2D(s, 1, activation="relu")(x)
        return L.Concatenate()(
            [
                L.Conv2D(e, 1, activation="relu")(x),
                L.Conv2D(e, 3, padding="same", activation="relu")(x),
            ]
        )

    x = fire(fire(x, 4, 8), 4, 8)
    x = L.MaxPooling2D(3, 2, padding="same")(x)
    x = fire(fire(x, 8, 16), 8, 16)
    x = L.Conv2D(10, 1, activation="relu")(L.Dropout(0.5)(x))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Softmax()(x))


def shufflenet(size=32):
    """ShuffleNet v1 units: grouped 1x1 conv, channel shuffle, depthwise 3x3, concat/add."""
    keras = _keras()
    L = keras.layers
    g = 2

    def shuffle(x):
        h, w, c = x.shape[1:]
        x = L.Reshape((h, w, g, c // g))(x)
        x = L.Permute((1, 2, 4, 3))(x)
        return L.Reshape((h, w, c))(x)

    def unit(x, cout, s):
        cin = x.shape[-1]
        y = _conv_bn(x, cout // 4, 1, groups=g)
        y = shuffle(y)
        y = L.DepthwiseConv2D(3, s, padding="same", use_bias=False)(y)
        y = L.BatchNormalization()(y)
        if s == 2:
            y = _conv_bn(y, cout - cin, 1, act=None, groups=g)
            short = L.AveragePooling2D(3, 2, padding="same")(x)
            return L.Activation("relu")(L.Concatenate()([short, y]))
        y = _conv_bn(y, cout, 1, act=None, groups=g)
        return L.Activation("relu")(L.Add()([x, y]))

    inp = keras.Input((size, size, 3), name="input")
    x = L.MaxPooling2D(3, 2, padding="same")(_conv_bn(inp, 8, 3, 2))
    for cout, n in [(32, 2), (64, 2), (128, 1)]:
        for i in range(n):
            x = unit(x, cout, 2 if i == 0 else 1)
    return keras.Model(inp, L.Dense(10)(L.GlobalAveragePooling2D()(x)))


def mtcnn(stage):
    """MTCNN P/R/O-Net (Zhang et al. 2016): conv + PReLU, max-pool, face/box(/landmark) heads."""
    keras = _keras()
    L = keras.layers

    def prelu(x):
        return L.PReLU(shared_axes=[1, 2] if len(x.shape) == 4 else None)(x)

    if stage == "P":
        inp = keras.Input((12, 12, 3), name="input")
        x = L.MaxPooling2D(2, 2, padding="same")(prelu(L.Conv2D(10, 3)(inp)))
        x = prelu(L.Conv2D(32, 3)(prelu(L.Conv2D(16, 3)(x))))
        prob = L.Softmax(axis=-1)(L.Conv2D(2, 1)(x))
        return keras.Model(inp, [prob, L.Conv2D(4, 1)(x)])
    size, convs, dense = (
        (24, [(28, 3, 3), (48, 3, 3), (64, 2, 0)], 128)
        if stage == "R"
        else (48, [(32, 3, 3), (64, 3, 3), (64, 3, 2), (128, 2, 0)], 256)
    )
    inp = keras.Input((size, size, 3), name="input")
    x = inp
    for filters, k, pool in convs:
        x = prelu(L.Conv2D(filters, k)(x))
        if pool:
            x = L.MaxPooling2D(pool, 2, padding="same")(x)
    x = prelu(L.Dense(dense)(L.Flatten()(x)))
    outs = [L.Softmax()(L.Dense(2)(x)), L.Dense(4)(x)]
    if stage == "O":
        outs.append(L.Dense(10)(x))
    return keras.Model(inp, outs)


def unet(size=32, depth=3, base=8, transpose=True, bn=True, channels=1, act="sigmoid"):
    keras = _keras()
    L = keras.layers

    def block(x, f):
        for _ in range(2):
            x = L.Conv2D(f, 3, padding="same", use_bias=not bn)(x)
            if bn:
                x = L.BatchNormalization()(x)
            x = L.Activation("relu")(x)
        return x

    inp = keras.Input((size, size, channels), name="input")
    skips, x = [], inp
    for d in range(depth):
        x = block(x, base * 2**d)
        skips.append(x)
        x = L.MaxPooling2D(2)(x)
    x = block(x, base * 2**depth)
    for d in reversed(range(depth)):
        x = L.Conv2DTranspose(base * 2**d, 2, 2)(x) if transpose else L.UpSampling2D(2)(x)
        x = block(L.Concatenate()([x, skips[d]]), base * 2**d)
    return keras.Model(inp, L.Conv2D(1, 1, activation=act)(x))


def pix2pix(size=32):
    """pix2pix U-Net generator: stride-2 conv + BN + LeakyReLU down, Conv2DTranspose up, tanh."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((size, size, 3), name="input")
    x, skips = inp, []
    for i, f in enumerate([8, 16, 32, 32]):
        x = L.Conv2D(f, 4, 2, padding="same", use_bias=False)(x)
        if i:
            x = L.BatchNormalization()(x)
        x = L.LeakyReLU(negative_slope=0.2)(x)
        skips.append(x)
    for f, skip in zip([32, 16, 8], reversed(skips[:-1])):
        x = L.Conv2DTranspose(f, 4, 2, padding="same", use_bias=False)(x)
        x = L.Activation("relu")(L.BatchNormalization()(x))
        x = L.Concatenate()([x, skip])
    out = L.Conv2DTranspose(3, 4, 2, padding="same", activation="tanh")(x)
    return keras.Model(inp, out)


def yolov3(size=64, base=8, tiny_head=False):
    """Darknet-53-style residual backbone (LeakyReLU 0.1) + YOLOv3 FPN heads (upsample, concat)."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((size, size, 3), name="input")
    x = _conv_bn(inp, base, 3, act="leaky")
    feats = []
    for i, n in enumerate([1, 1, 2, 2, 1]):
        x = _conv_bn(x, base * 2 ** (i + 1), 3, 2, act="leaky")
        for _ in range(n):
            y = _conv_bn(x, base * 2**i, 1, act="leaky")
            y = _conv_bn(y, base * 2 ** (i + 1), 3, act="leaky")
            x = L.Add()([x, y])
        feats.append(x)
    outs, x = [], feats[-1]
    for skip in [feats[-2], feats[-3], None]:
        f = x.shape[-1] // 2
        for _ in range(1 if tiny_head else 2):
            x = _conv_bn(_conv_bn(x, f, 1, act="leaky"), f * 2, 3, act="leaky")
        x = _conv_bn(x, f, 1, act="leaky")
        outs.append(L.Conv2D(3 * (5 + 4), 1)(_conv_bn(x, f * 2, 3, act="leaky")))
        if skip is not None:
            x = L.UpSampling2D(2)(_conv_bn(x, f // 2, 1, act="leaky"))
            x = L.Concatenate()([x, skip])
    return keras.Model(inp, outs)


def retinaface(size=64):
    """RetinaFace (mobilenet-0.25 variant): depthwise backbone, FPN, SSH modules, 3 heads."""
    keras = _keras()
    L = keras.layers

    def dw(x, f, s):
        x = L.DepthwiseConv2D(3, s, padding="same", use_bias=False)(x)
        x = L.LeakyReLU(negative_slope=0.1)(L.BatchNormalization()(x))
        return _conv_bn(x, f, 1, act="leaky")

    inp = keras.Input((size, size, 3), name="input")
    x = _conv_bn(inp, 8, 3, 2, act="leaky")
    feats = []
    for f, n in [(16, 2), (32, 2), (64, 2)]:
        x = dw(x, f, 2)
        for _ in range(n - 1):
            x = dw(x, f, 1)
        feats.append(x)
    lat = [_conv_bn(f, 16, 1, act="leaky") for f in feats]
    for i in (2, 1):
        up = L.UpSampling2D(2, interpolation="nearest")(lat[i])
        lat[i - 1] = _conv_bn(L.Add()([lat[i - 1], up]), 16, 3, act="leaky")
    outs = []
    for p in lat:
        a = _conv_bn(p, 8, 3, act=None)
        b1 = _conv_bn(p, 4, 3, act="leaky")
        b = _conv_bn(b1, 4, 3, act=None)
        c = _conv_bn(_conv_bn(b1, 4, 3, act="leaky"), 4, 3, act=None)
        s = L.Activation("relu")(L.Concatenate()([a, b, c]))
        for k in (2, 4, 10):
            outs.append(L.Reshape((-1, k))(L.Conv2D(2 * k, 1)(s)))
    cls = L.Softmax()(L.Concatenate(axis=1)(outs[0::3]))
    return keras.Model(
        inp, [cls, L.Concatenate(axis=1)(outs[1::3]), L.Concatenate(axis=1)(outs[2::3])]
    )


def inception_v4(size=75):
    """Inception-v4: stem with parallel conv/pool branches, Inception-A/B/C, reductions."""
    keras = _keras()
    L = keras.layers

    def cb(x, f, k, s=1, pad="same"):
        x = L.Conv2D(f, k, s, padding=pad, use_bias=False)(x)
        return L.Activation("relu")(L.BatchNormalization()(x))

    inp = keras.Input((size, size, 3), name="input")
    x = cb(cb(cb(inp, 8, 3, 2, "valid"), 8, 3, pad="valid"), 16, 3)
    x = L.Concatenate()([L.MaxPooling2D(3, 2)(x), cb(x, 24, 3, 2, "valid")])
    a = cb(cb(x, 16, 1), 24, 3, pad="valid")
    b = cb(cb(cb(cb(x, 16, 1), 16, (1, 7)), 16, (7, 1)), 24, 3, pad="valid")
    x = L.Concatenate()([a, b])
    x = L.Concatenate()([cb(x, 48, 3, 2, "valid"), L.MaxPooling2D(3, 2)(x)])
    # Inception-A
    pool = cb(L.AveragePooling2D(3, 1, padding="same")(x), 24, 1)
    x = L.Concatenate()(
        [pool, cb(x, 24, 1), cb(cb(x, 16, 1), 24, 3), cb(cb(cb(x, 16, 1), 24, 3), 24, 3)]
    )
    # Reduction-A
    x = L.Concatenate()(
        [
            L.MaxPooling2D(3, 2)(x),
            cb(x, 48, 3, 2, "valid"),
            cb(cb(cb(x, 24, 1), 28, 3), 32, 3, 2, "valid"),
        ]
    )
    # Inception-B (7x1 / 1x7 factorization)
    x = L.Concatenate()(
        [
            cb(L.AveragePooling2D(3, 1, padding="same")(x), 16, 1),
            cb(x, 48, 1),
            cb(cb(cb(x, 24, 1), 28, (1, 7)), 32, (7, 1)),
        ]
    )
    # Inception-C (split 1x3 / 3x1 branches)
    b = cb(x, 48, 1)
    x = L.Concatenate()([cb(x, 32, 1), cb(b, 32, (1, 3)), cb(b, 32, (3, 1))])
    return keras.Model(inp, L.Dense(10)(L.GlobalAveragePooling2D()(x)))


def bert(vocab=50, seq=16, hidden=32, heads=4, layers=2, albert=False, segments=True):
    """BERT / ALBERT encoder with tf ops (embeddings by gather, manual attention, gelu)."""
    keras = _keras()
    L = keras.layers
    ids = keras.Input((seq,), dtype="int32", name="input_ids")
    inputs = [ids]
    emb_dim = hidden // 2 if albert else hidden
    x = L.Embedding(vocab, emb_dim)(ids)
    if segments:
        seg = keras.Input((seq,), dtype="int32", name="segment_ids")
        inputs.append(seg)
        x = L.Add()([x, L.Embedding(4, emb_dim)(seg)])
    pos = keras.ops.convert_to_tensor(
        np.random.default_rng(3).standard_normal((1, seq, emb_dim)).astype("float32") * 0.1
    )
    x = L.LayerNormalization()(x + pos)
    if albert:  # factorized embedding projection
        x = L.Dense(hidden)(x)

    def make_layer():
        return dict(
            q=L.Dense(hidden),
            k=L.Dense(hidden),
            v=L.Dense(hidden),
            o=L.Dense(hidden),
            ln1=L.LayerNormalization(),
            f1=L.Dense(hidden * 2, activation="gelu"),
            f2=L.Dense(hidden),
            ln2=L.LayerNormalization(),
        )

    shared = make_layer()
    d = hidden // heads
    ops = keras.ops
    for _ in range(layers):
        p = shared if albert else make_layer()

        def split(t):
            return ops.transpose(ops.reshape(t, (-1, seq, heads, d)), (0, 2, 1, 3))

        q, k, v = split(p["q"](x)), split(p["k"](x)), split(p["v"](x))
        att = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / float(np.sqrt(d)))
        ctx = ops.reshape(ops.transpose(ops.matmul(att, v), (0, 2, 1, 3)), (-1, seq, hidden))
        x = p["ln1"](x + p["o"](ctx))
        x = p["ln2"](x + p["f2"](p["f1"](x)))
    pooled = L.Dense(hidden, activation="tanh")(x[:, 0])
    return keras.Model(inputs, [x, pooled])


def _app(name, **kwargs):
    def build():
        keras = _keras()
        return getattr(keras.applications, name)(weights=None, **kwargs)

    return build


# family -> (rebuilt-as label, builder)
FAMILIES = {
    "AlBert": ("albert (shared layers)", lambda: bert(albert=True, segments=False)),
    "KerasBert": ("bert (2 inputs)", lambda: bert()),
    "EfficientNet": (
        "keras EfficientNetB0",
        _app("EfficientNetB0", input_shape=(32, 32, 3), classes=10),
    ),
    "InceptionResNetV2": (
        "keras InceptionResNetV2",
        _app("InceptionResNetV2", input_shape=(75, 75, 3), classes=10),
    ),
    "InceptionV3": ("keras InceptionV3", _app("InceptionV3", input_shape=(75, 75, 3), classes=10)),
    "InceptionV4": ("inception_v4", inception_v4),
    "MNASNetA1": ("mnasnet_a1", mnasnet_a1),
    "MTCNN-ONet": ("mtcnn O-Net", lambda: mtcnn("O")),
    "MTCNN-PNet": ("mtcnn P-Net", lambda: mtcnn("P")),
    "MTCNN-RNet": ("mtcnn R-Net", lambda: mtcnn("R")),
    "MobileNetV1": (
        "keras MobileNet a=0.25",
        _app("MobileNet", input_shape=(32, 32, 3), alpha=0.25, classes=10),
    ),
    "frozen_MobileNetV1": (
        "keras MobileNet a=0.5",
        _app("MobileNet", input_shape=(32, 32, 3), alpha=0.5, classes=10),
    ),
    "MobileNetV2": (
        "keras MobileNetV2 a=0.35",
        _app("MobileNetV2", input_shape=(32, 32, 3), alpha=0.35, classes=10),
    ),
    "MobileNetV3_large": (
        "keras MobileNetV3Large",
        _app("MobileNetV3Large", input_shape=(32, 32, 3), alpha=0.75, classes=10),
    ),
    "ResNetV1": ("keras ResNet50", _app("ResNet50", input_shape=(32, 32, 3), classes=10)),
    "ResNetV2": ("keras ResNet50V2", _app("ResNet50V2", input_shape=(32, 32, 3), classes=10)),
    "RetinaFace": ("retinaface (mobilenet)", retinaface),
    "ShuffleNet": ("shufflenet v1", shufflenet),
    "SqueezeNet": ("squeezenet", squeezenet),
    "ToyUNet-ToyUnet": ("unet depth 2", lambda: unet(depth=2, base=4, bn=False)),
    "ToyUNet-UNet": ("unet", lambda: unet()),
    "UNet-GanUNet": ("unet upsampling", lambda: unet(transpose=False, channels=3, act="tanh")),
    "UNet-UNet": ("unet depth 4", lambda: unet(depth=4, size=32, base=4)),
    "VGG16": ("keras VGG16", _app("VGG16", input_shape=(32, 32, 3), classes=10)),
    "YOLOv3": ("yolov3 (darknet-53 style)", lambda: yolov3()),
    "YOLOv3_darknet": ("yolov3 (darknet, 1-conv heads)", lambda: yolov3(base=4, tiny_head=True)),
    "pix2pix": ("pix2pix generator", pix2pix),
}
MISSING = {
    "frozen": "the benchmark's generic 'frozen.pb' has no model description (architecture unknown)",
}


def randomize(model, seed: int = 0) -> None:
    """Random BatchNorm statistics/affine and biases (Keras initializes them to constants)."""
    rng = np.random.default_rng(seed)
    for var in model.weights:
        name = var.path if hasattr(var, "path") else var.name
        shape = tuple(var.shape)
        if name.endswith(("moving_variance", "gamma")):
            var.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
        elif name.endswith(("moving_mean", "beta", "bias")):
            var.assign((rng.standard_normal(shape) * 0.1).astype("float32"))
        elif name.endswith("alpha"):  # PReLU slopes
            var.assign(rng.uniform(0.05, 0.3, shape).astype("float32"))


def freeze(model, path: Path) -> Path:
    """Freeze a Keras model to a GraphDef the TF2 way (placeholders named like the inputs)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    specs = [
        tf.TensorSpec([1, *t.shape[1:]], t.dtype, name=t.name.split(":")[0]) for t in model.inputs
    ]

    @tf.function
    def fn(*xs):
        return model(list(xs) if len(xs) > 1 else xs[0], training=False)

    frozen = convert_variables_to_constants_v2(
        fn.get_concrete_function(*specs), aggressive_inlining=True
    )
    Path(path).write_bytes(frozen.graph.as_graph_def().SerializeToString())
    return Path(path)


def write_family(family: str, path: Path, seed: int = 0) -> Path:
    keras = _keras()
    keras.utils.set_random_seed(seed)
    model = FAMILIES[family][1]()
    randomize(model, seed)
    return freeze(model, path)
