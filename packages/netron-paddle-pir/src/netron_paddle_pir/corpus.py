"""Build the test corpus: Paddle 3 models saved as PIR JSON by Paddle itself, random weights.

    python -m netron_paddle_pir.corpus OUTPUT_DIR [--spec models.json] [--only NAME ...]
                                                  [--tags TAG ...] [--skip-large]

What to build comes from a corpus file (the package's ``tests/models.json``): one entry per
model with ``target`` (``<name>/model.json``) and ``build``, the kind of model and its
parameters (``{"kind": "bert", "layers": 2, "pre_norm": true}``). Kinds are the builders
of ``KINDS`` below: small hand-written layers, ``paddle.vision`` and ``paddle.text`` models,
BERT-style masked encoders, encoder stacks and residual MLPs of any size, and the
``save_inference_model`` / ``paddle.static.save`` variants. Without ``--spec`` the built-in
``DEFAULT_ENTRIES`` are built.

Each model goes into ``OUTPUT_DIR/<name>/`` (``model.json`` + ``model.pdiparams``, or the
layout of its save variant) together with ``reference.json``: the parameter values as
Paddle holds them in memory (name, shape, dtype, first values, sum), written from the layer
or scope, not from the saved files, so that tests can check the reader's weights against
Paddle itself. Needs Paddle (>= 3.0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ._paddle import require_paddle

FIRST_VALUES = 6


def _summary(name, array):
    import numpy as np

    flat = np.asarray(array).reshape(-1)
    as_float = flat.astype("float64")
    return {
        "name": name,
        "shape": list(np.asarray(array).shape),
        "dtype": str(np.asarray(array).dtype),
        "first": [float(v) for v in as_float[:FIRST_VALUES]],
        "sum": float(as_float.sum()),
    }


def _layer_reference(layer):
    params = []
    for tensor in list(layer.parameters()) + list(layer.buffers()):
        params.append(_summary(tensor.name, tensor.numpy()))
    return params


# ----------------------------------------------------------------------------------- models


def _models(paddle):
    nn = paddle.nn
    F = paddle.nn.functional  # noqa: N806 - the usual alias
    spec = paddle.static.InputSpec

    class MLP(nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(8, 16)
            self.fc2 = nn.Linear(16, 4)

        def forward(self, x):
            return F.softmax(self.fc2(F.relu(self.fc1(x))))

    class CNNBN(nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2D(3, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2D(8)
            self.conv2 = nn.Conv2D(8, 8, 3, padding=1)
            self.bn2 = nn.BatchNorm2D(8)
            self.pool = nn.MaxPool2D(2)
            self.fc = nn.Linear(8 * 8 * 8, 10)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.pool(F.relu(self.bn2(self.conv2(x))))
            return self.fc(paddle.flatten(x, 1))

    class LSTMNet(nn.Layer):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(50, 16)
            self.lstm = nn.LSTM(16, 24)
            self.fc = nn.Linear(24, 3)

        def forward(self, ids):
            out, _ = self.lstm(self.embedding(ids))
            return self.fc(out[:, -1])

    class Encoder(nn.Layer):
        def __init__(self, layers=1, d=32, heads=4):
            super().__init__()
            layer = nn.TransformerEncoderLayer(d, heads, d * 2, dropout=0.0)
            self.encoder = nn.TransformerEncoder(layer, layers) if layers > 1 else layer

        def forward(self, x):
            return self.encoder(x)

    class ControlFlow(nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            y = self.fc(x)
            y = paddle.static.nn.cond(y.mean() > 0, lambda: y * 2.0, lambda: y - 1.0)
            i = paddle.zeros([1], dtype="int64")
            n = paddle.full([1], 3, dtype="int64")

            def cond(i, v):
                return i < n

            def body(i, v):
                return i + 1, F.relu(v) + 0.5

            i, y = paddle.static.nn.while_loop(cond, body, [i, y])
            if x.sum() > 1.0:
                out = y + x
            else:
                out = y * x
            return out

    class NestedCF(nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            i = paddle.zeros([1], dtype="int64")
            n = paddle.full([1], 4, dtype="int64")
            k = paddle.full([1], 2, dtype="int64")

            def cond(i, v):
                return i < n

            def body(i, v):
                v = paddle.static.nn.cond(i < k, lambda: self.fc(v), lambda: v * 0.5)
                return i + 1, v

            i, x = paddle.static.nn.while_loop(cond, body, [i, x])
            j = paddle.zeros([1], dtype="int64")
            _, x = paddle.static.nn.while_loop(
                lambda j, v: j < k, lambda j, v: (j + 1, v + 1.0), [j, x]
            )
            return x

    class MultiIO(nn.Layer):
        def __init__(self):
            super().__init__()
            self.fa = nn.Linear(6, 8)
            self.fb = nn.Linear(5, 8)

        def forward(self, a, b):
            ha, hb = self.fa(a), self.fb(b)
            cat = paddle.concat([ha, hb], axis=-1)
            return cat, ha + hb, paddle.argmax(cat, axis=-1)

    class DTypes(nn.Layer):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(30, 8)

        def forward(self, ids, mask, h):
            e = self.emb(ids)
            m = paddle.cast(mask, "float32").unsqueeze(-1)
            out16 = paddle.cast(e * m + paddle.cast(h, "float32"), "float16")
            keep = paddle.logical_and(mask, ids > 3)
            count = paddle.sum(paddle.cast(keep, "int32"), axis=-1)
            return out16, keep, paddle.cast(count, "int64")

    class Dynamic(nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2D(3, 4, 3, padding=1)

        def forward(self, x):
            shape = paddle.shape(x)
            y = self.conv(x)
            y = F.interpolate(y, scale_factor=2, mode="nearest")
            y = self.conv(y[:, :3])
            return paddle.reshape(y, [shape[0], 4, -1])

    class BertStyle(nn.Layer):
        """Token and position embeddings, an encoder whose attention mask adds
        ``(ids == 0) * -1e4``, and a tanh pooler (the shape of BERT)."""

        def __init__(self, layers=2, pre_norm=False, d=32, heads=4, vocab=100, seq=16):
            super().__init__()
            self.tokens = nn.Embedding(vocab, d)
            self.positions = nn.Embedding(seq, d)
            self.norm = nn.LayerNorm(d)
            layer = nn.TransformerEncoderLayer(
                d, heads, d * 4, dropout=0.0, normalize_before=pre_norm
            )
            self.encoder = nn.TransformerEncoder(layer, layers)
            self.pooler = nn.Linear(d, d)

        def forward(self, ids):
            mask = paddle.unsqueeze((ids == 0).astype("float32") * -1e4, [1, 2])
            positions = paddle.arange(ids.shape[1]).unsqueeze(0)
            h = self.norm(self.tokens(ids) + self.positions(positions))
            h = self.encoder(h, mask)
            return paddle.tanh(self.pooler(h[:, 0]))

    class ResidualMLP(nn.Layer):
        def __init__(self, blocks=250, d=16):
            super().__init__()
            self.blocks = nn.LayerList([nn.Linear(d, d) for _ in range(blocks)])

        def forward(self, x):
            for block in self.blocks:
                x = x + F.relu(block(x))
            return x

    class Threshold(nn.Layer):
        """A uint8 image compared with a uint8 constant: exact display of non-float constants."""

        def __init__(self):
            super().__init__()
            self.scale = nn.Linear(4, 4)

        def forward(self, img):
            bright = (img > 200).astype("float32")
            return self.scale(bright)

    class Tagger(nn.Layer):
        """paddle.text: a BiGRU-CRF style tagger decoded by paddle.text.ViterbiDecoder."""

        def __init__(self, vocab=60, d=16, tags=5):
            super().__init__()
            self.embedding = nn.Embedding(vocab, d)
            self.gru = nn.GRU(d, d, direction="bidirect")
            self.emission = nn.Linear(2 * d, tags)
            self.transitions = self.create_parameter([tags, tags])
            self.decoder = paddle.text.ViterbiDecoder(self.transitions, include_bos_eos_tag=False)

        def forward(self, ids, lengths):
            h, _ = self.gru(self.embedding(ids))
            scores, path = self.decoder(self.emission(h), lengths)
            return scores, path

    def vision(name, size=224, **kwargs):
        return (
            lambda: getattr(paddle.vision.models, name)(**kwargs),
            [spec([1, 3, size, size], "float32", "image")],
        )

    def bert(layers=2, pre_norm=False, d=32, heads=4, seq=16):
        return (
            lambda: BertStyle(layers, pre_norm, d, heads, seq=seq),
            [spec([None, seq], "int64", "ids")],
        )

    def encoder(layers=12, d=256, heads=8, seq=16):
        return (lambda: Encoder(layers, d, heads), [spec([1, seq, d], "float32", "src")])

    def residual_mlp(blocks=250, d=16):
        return (lambda: ResidualMLP(blocks, d), [spec([None, d], "float32", "x")])

    fixed = {
        "mlp": (MLP, [spec([None, 8], "float32", "x")]),
        "cnn_bn": (CNNBN, [spec([1, 3, 16, 16], "float32", "image")]),
        "lstm": (LSTMNet, [spec([None, 12], "int64", "ids")]),
        "transformer": (Encoder, [spec([2, 10, 32], "float32", "src")]),
        "control_flow": (ControlFlow, [spec([2, 4], "float32", "x")]),
        "nested_cf": (NestedCF, [spec([2, 4], "float32", "x")]),
        "multi_io": (MultiIO, [spec([None, 6], "float32", "a"), spec([None, 5], "float32", "b")]),
        "dtypes": (
            DTypes,
            [
                spec([None, 7], "int64", "ids"),
                spec([None, 7], "bool", "mask"),
                spec([None, 7, 8], "float16", "h"),
            ],
        ),
        "dynamic": (Dynamic, [spec([-1, 3, -1, -1], "float32", "x")]),
        "threshold": (Threshold, [spec([None, 4], "uint8", "img")]),
        "tagger": (Tagger, [spec([None, 12], "int64", "ids"), spec([None], "int64", "lengths")]),
    }
    kinds = {name: (lambda entry=entry: entry) for name, entry in fixed.items()}
    kinds.update({"vision": vision, "bert": bert, "encoder": encoder, "residual_mlp": residual_mlp})
    return kinds


# The models built without a corpus file: the small and mid-size kinds of tests/models.json.
DEFAULT_ENTRIES = (
    [
        {"target": f"{name}/model.json", "build": {"kind": name}}
        for name in (
            "mlp",
            "cnn_bn",
            "lstm",
            "transformer",
            "control_flow",
            "nested_cf",
            "multi_io",
            "dtypes",
            "dynamic",
            "threshold",
        )
    ]
    + [
        {
            "target": "resnet50/model.json",
            "build": {"kind": "vision", "name": "resnet50"},
            "tags": ["large"],
        },
        {
            "target": "mobilenet_v3/model.json",
            "build": {"kind": "vision", "name": "mobilenet_v3_small"},
            "tags": ["large"],
        },
        {
            "target": "encoder12/model.json",
            "build": {"kind": "encoder", "layers": 12},
            "tags": ["large"],
        },
    ]
    + [
        {
            "target": f"{variant}/{'__model__' if variant == 'static_separate' else 'model'}.json",
            "build": {"kind": "static", "variant": variant},
        }
        for variant in (
            "static_default",
            "static_readable",
            "static_untrainable",
            "static_readable_untrainable",
            "static_separate",
            "static_save",
        )
    ]
)


def _jit_save(paddle, name, factory, specs, folder: Path):
    paddle.seed(1234)
    layer = factory()
    layer.eval()
    static = paddle.jit.to_static(layer, input_spec=specs, full_graph=True)
    paddle.jit.save(static, str(folder / "model"))
    return {"model": "model.json", "params": _layer_reference(layer), "variant": "jit.save"}


def _static_variants(paddle, root: Path, only):
    """``only``: the variant names to build."""
    """save_inference_model variants of a small MLP (readable, trainable=False, separate)."""
    variants = {
        "static_default": {},
        "static_readable": {"readable": True},
        "static_untrainable": {"trainable": False},
        "static_readable_untrainable": {"readable": True, "trainable": False},
        "static_separate": {"separate_parameters": True},
        "static_save": None,  # paddle.static.save: no fetch op, weights in a .pdparams pickle
    }
    written = {}
    for variant, kwargs in variants.items():
        if variant not in only:
            continue
        paddle.enable_static()
        try:
            main, startup = paddle.static.Program(), paddle.static.Program()
            with paddle.static.program_guard(main, startup):
                x = paddle.static.data("x", [None, 8], "float32")
                h = paddle.static.nn.fc(x, 16, activation="relu")
                y = paddle.static.nn.fc(h, 4)
                out = paddle.nn.functional.softmax(y)
            exe = paddle.static.Executor(paddle.CPUPlace())
            scope = paddle.static.Scope()
            with paddle.static.scope_guard(scope):
                paddle.seed(99)
                exe.run(startup)
                folder = root / variant
                folder.mkdir(parents=True, exist_ok=True)
                if kwargs is None:
                    paddle.static.save(main, str(folder / "model"))
                else:
                    paddle.static.save_inference_model(
                        str(folder / "model"), [x], [out], exe, program=main, **kwargs
                    )
                params = []
                for param in main.global_block().all_parameters():
                    params.append(
                        _summary(param.name, scope.find_var(param.name).get_tensor().__array__())
                    )
        finally:
            paddle.disable_static()
        kwargs_ = kwargs or {}
        model = "__model__.json" if kwargs_.get("separate_parameters") else "model.json"
        written[variant] = {
            "model": model,
            "params": params,
            "variant": "static.save" if kwargs is None else f"save_inference_model {kwargs}",
        }
    return written


def load_spec(path) -> list[dict]:
    """The entries of a corpus file (a JSON list of objects with ``target`` and ``build``)."""
    entries = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{path}: a corpus file is a JSON list of objects")
    return entries


def select(entries, only=None, tags=None, skip_large=False) -> list[dict]:
    """The generated entries (not committed fixtures) that ``only`` / ``tags`` ask for."""
    chosen = []
    for entry in entries:
        if "build" not in entry:
            continue
        name = entry["target"].split("/")[0]
        entry_tags = set(entry.get("tags", []))
        if only and name not in only:
            continue
        if tags and not entry_tags & set(tags):
            continue
        if skip_large and entry_tags & {"large", "bench"}:
            continue
        chosen.append(entry)
    return chosen


def build(output: Path, only=None, skip_large=False, quiet=False, entries=None, tags=None) -> dict:
    """Build the chosen entries into ``output/<name>/`` (an existing model folder is replaced
    once the new one is complete)."""
    paddle = require_paddle()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    chosen = select(DEFAULT_ENTRIES if entries is None else entries, only, tags, skip_large)
    kinds = _models(paddle)
    index = {}
    with tempfile.TemporaryDirectory(dir=output, prefix=".corpus-") as tmp:
        tmp = Path(tmp)
        variants = []
        for entry in chosen:
            name = entry["target"].split("/")[0]
            params = dict(entry["build"])
            kind = params.pop("kind")
            if kind == "static":
                variants.append(params["variant"])
                continue
            if kind not in kinds:
                raise ValueError(
                    f"{entry['target']}: unknown corpus kind {kind!r} "
                    f"(known: {', '.join(sorted(kinds))}, static)"
                )
            factory, specs = kinds[kind](**params)
            folder = tmp / name
            folder.mkdir()
            index[name] = _jit_save(paddle, name, factory, specs, folder)
            if not quiet:
                print(f"corpus: {name}", file=sys.stderr)
        index.update(_static_variants(paddle, tmp, variants))
        for name, info in index.items():
            (tmp / name / "reference.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
            target = output / name
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp / name, target)
    return index


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m netron_paddle_pir.corpus", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("output", type=Path, help="folder to write the models into")
    parser.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="corpus file to build from (default: the built-in entries)",
    )
    parser.add_argument("--only", nargs="*", help="model names to build (default: all)")
    parser.add_argument(
        "--tags", nargs="*", help="build only entries with one of these tags (default: any)"
    )
    parser.add_argument(
        "--skip-large",
        action="store_true",
        help="skip entries tagged large or bench (default: off)",
    )
    args = parser.parse_args(argv)
    entries = load_spec(args.spec) if args.spec else None
    try:
        require_paddle()
    except ImportError as exc:  # no Paddle, or one older than 3.0: say so in one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    index = build(args.output, args.only, args.skip_large, entries=entries, tags=args.tags)
    print(f"{len(index)} models -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
