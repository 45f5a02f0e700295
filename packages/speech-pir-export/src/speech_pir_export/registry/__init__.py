"""Export registry: how each PaddleSpeech model family is built from its example config,
which functions are exported, with which input specs and sample inputs they are verified,
and how an export of the family is run.

One :class:`ModelSpec` per family, registered by its task module (``tts``, ``singing``,
``vocoders``, ``asr``, ``audio``, ``text``). ``build(cfg, ctx)`` returns a :class:`Built`: the
dygraph model that owns the parameters (its ``state_dict`` is what checkpoints load into) and
the graphs to export (each a Layer whose ``forward`` is the exported function, usually a
:class:`Call`). The run-time hooks (``generate``, ``vocode``, ``decode``) belong to the family
too, so ``infer`` and ``zoo`` never branch on a model name. Families the zoo builds but that
have no static path upstream are in :mod:`.build_only`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import paddle

from ..errors import ConfigError, ExportError, UnknownModelError

__all__ = [
    "MODELS",
    "Built",
    "Call",
    "ConfigError",
    "Context",
    "ExportError",
    "Graph",
    "Input",
    "ModelSpec",
    "detect",
    "get",
    "register",
]


@dataclass
class Input:
    name: str
    shape: list  # -1 = dynamic
    dtype: str
    sample: Callable[[np.random.Generator], np.ndarray] = field(repr=False)

    def spec(self):
        return paddle.static.InputSpec(shape=self.shape, dtype=self.dtype, name=self.name)

    def describe(self) -> dict:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype}


@dataclass
class Graph:
    name: str  # file prefix inside the export folder
    layer: object  # paddle.nn.Layer whose forward is exported
    inputs: list[Input]
    outputs: list[str]
    skip_prune: bool = False
    # the input shape classes the run time feeds, in order: ``cases(layer, rng) -> [feeds]``
    # (a streaming encoder's first chunk with empty caches, later chunks with filled ones, a
    # short last chunk). Verification and the oneDNN repair check every case on one
    # predictor; without it, the single ``inputs`` sample is the only case.
    cases: Callable | None = field(default=None, repr=False)


@dataclass
class Built:
    model: object  # the Layer whose state_dict holds every parameter
    graphs: list[Graph]
    meta: dict = field(default_factory=dict)
    normalizer_keys: tuple = ()  # which stats the model needs ("mel",)


@dataclass
class Context:
    random_init: bool = True
    stats: dict | None = None  # {"mu": np.ndarray, "sigma": np.ndarray}
    vocab: list[str] | None = None
    tones: list[str] | None = None
    speakers: list[str] | None = None
    vocab_size: int = 120
    preprocess: dict | None = None  # the recipe's preprocess config (audio front end)
    cmvn: dict | None = None  # the recipe's global CMVN statistics (mean_std.json)
    labels: list[str] | None = None  # class labels (a punctuation model's punc_vocab)


@dataclass
class ModelSpec:
    """A registry entry. Run-time hooks (all optional, by task):

    * ``generate(exp, *, phones, text, seed, spk_emb, options) -> log-mel (T, n_mels)``:
      acoustic models (TTS, singing).
    * ``vocode(exp, mel, *, seed) -> wav (N,)``: vocoders.
    * ``decode(exp, feats) -> dict``: models that take audio features (ASR, ST,
      classification, speaker vectors, keyword spotting).
    * ``text_to_text(exp, text) -> dict``: text models (punctuation restoration).
    """

    name: str
    task: str  # tts-acoustic, tts-e2e, svs-acoustic, vocoder, asr, st, cls, vector, kws, punc
    family: str
    build: Callable[[dict, Context], Built] = field(repr=False)
    checkpoint_key: str | None = None  # key of the .pdz dict that holds the params
    needs_stats: bool = False
    default_onednn: bool = False
    notes: str = ""
    detect: Callable[[dict], bool] = field(default=lambda cfg: False, repr=False)
    generate: Callable | None = field(default=None, repr=False)
    vocode: Callable | None = field(default=None, repr=False)
    decode: Callable | None = field(default=None, repr=False)
    text_to_text: Callable | None = field(default=None, repr=False)
    detect_priority: int = 0  # higher = tried first by detect() (more specific configs)


MODELS: dict[str, ModelSpec] = {}


def register(
    name,
    task,
    family,
    *,
    checkpoint_key=None,
    needs_stats=False,
    notes="",
    detect=None,
    generate=None,
    vocode=None,
    decode=None,
    text_to_text=None,
    detect_priority=0,
):
    def deco(func):
        MODELS[name] = ModelSpec(
            name,
            task,
            family,
            func,
            checkpoint_key,
            needs_stats,
            notes=notes,
            detect=detect or (lambda cfg: False),
            generate=generate,
            vocode=vocode,
            decode=decode,
            text_to_text=text_to_text,
            detect_priority=detect_priority,
        )
        return func

    return deco


def get(name: str) -> ModelSpec:
    if name not in MODELS:
        import difflib

        close = difflib.get_close_matches(name, MODELS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}.{hint} Known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def detect(cfg: dict) -> str | None:
    """Best guess of the registry entry a config describes (most specific first)."""
    if not isinstance(cfg, dict):
        return None
    order = sorted(MODELS, key=lambda n: -MODELS[n].detect_priority)
    for name in order:
        try:
            if MODELS[name].detect(cfg):
                return name
        except (AttributeError, TypeError):  # a section of another shape: not this family
            continue
    return None


# --------------------------------------------------------------------------------------------
# the one wrapper Layer of exported graphs
# --------------------------------------------------------------------------------------------


class Call(paddle.nn.Layer):
    """An exported graph: ``forward(*inputs) = fn(*layers, *inputs)``.

    ``fn`` is a plain function (dy2st converts it like a method body); ``layers`` are the
    Layers it uses (the family's model, a normalizer), registered as sublayers (named ``m``
    when there is one positional layer, else by their keyword) so that their parameters and
    buffers are the graph's.
    """

    def __init__(self, fn, *layers, **named_layers):
        import inspect

        super().__init__()
        names = ["m"] if len(layers) == 1 else [f"m{i}" for i in range(len(layers))]
        self._names = [*names, *named_layers]
        for name, layer in zip(self._names, [*layers, *named_layers.values()]):
            self.add_sublayer(name, layer)
        self._fn = fn
        self._arity = len(inspect.signature(fn).parameters) - len(self._names)
        if not 1 <= self._arity <= 8:
            raise ValueError(f"{fn.__name__}: an exported graph takes 1 to 8 inputs")

    # dy2st needs named parameters (it rejects *args with an input_spec): up to 8 inputs
    def forward(self, x0, x1=None, x2=None, x3=None, x4=None, x5=None, x6=None, x7=None):
        inputs = (x0, x1, x2, x3, x4, x5, x6, x7)
        layers = [getattr(self, name) for name in self._names]
        return self._fn(*layers, *inputs[: self._arity])


# --------------------------------------------------------------------------------------------
# helpers of the builders
# --------------------------------------------------------------------------------------------


def _need(cfg: dict, key: str, model: str):
    if key not in cfg or cfg[key] is None:
        raise ConfigError(f"config has no '{key}' section, so it does not describe a {model} model")
    return cfg[key]


def _ids(n: int, high: int, low: int = 1):
    return lambda rng: rng.integers(low, max(high, low + 1), size=(n,), dtype=np.int64)


def _floats(*shape):
    return lambda rng: rng.standard_normal(shape).astype("float32")


def _unit(dim):
    def sample(rng):
        v = rng.standard_normal(dim).astype("float32")
        return v / np.linalg.norm(v)

    return sample


def _zscore(ctx: Context, dim: int):
    from paddlespeech.t2s.modules.normalizer import ZScore

    if ctx.stats is None:
        mu, sigma = np.zeros(dim, "float32"), np.ones(dim, "float32")
    else:
        mu, sigma = ctx.stats["mu"].astype("float32"), ctx.stats["sigma"].astype("float32")
        if mu.shape != (dim,):
            raise ConfigError(f"statistics have shape {mu.shape}, the model expects ({dim},)")
    return ZScore(paddle.to_tensor(mu), paddle.to_tensor(sigma))


def _build_model(cls, kwargs: dict, what: str):
    try:
        return cls(**kwargs)
    except (TypeError, AssertionError, ValueError) as exc:
        raise ConfigError(
            f"the config's parameters do not fit {what}: {type(exc).__name__} {exc}"
        ) from exc


def _remove_weight_norm(layer) -> int:
    """Fold weight_norm everywhere (root cause 5: stale `weight` baked into the export)."""
    removed = 0
    for sub in layer.sublayers(include_self=True):
        if hasattr(sub, "weight_g") and hasattr(sub, "weight_v"):
            try:
                paddle.nn.utils.remove_weight_norm(sub)
                removed += 1
            except (ValueError, AttributeError):
                pass
    return removed


def _tts_meta(cfg, ctx):
    return {
        "sample_rate": cfg.get("fs"),
        "n_mels": cfg.get("n_mels"),
        "hop_length": cfg.get("n_shift"),
        "vocab": ctx.vocab,
        "tones": ctx.tones,
        "speakers": ctx.speakers,
    }


def _vocab_size(ctx: Context) -> int:
    return len(ctx.vocab) if ctx.vocab else ctx.vocab_size


def _yacs(cfg: dict):
    from yacs.config import CfgNode

    return CfgNode(cfg)


# the task modules register their families on import
from . import tts, tacotron2, singing, vocoders, asr, audio, text  # noqa: E402, F401, I001
