"""Registry of the fixes that make PaddleSpeech 1.5.0 build, trace and export on Paddle 3.

Every fix names the PaddleSpeech module it patches, the root cause on Paddle 3 and what it
does. Fixes are applied lazily: :func:`install` (called on ``import speech_pir_export``)
registers an import hook, and each fix runs right after its target module is imported, so
importing this package does not import PaddleSpeech. :func:`report` lists what ran.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Fix:
    name: str
    module: str
    root_cause: str
    remedy: str
    apply: Callable[[object], None] = field(repr=False)
    before: bool = False  # run before the module executes (for import-time side effects)
    applied: bool = False
    error: str | None = None


REGISTRY: list[Fix] = []


def fix(name: str, module: str, root_cause: str, remedy: str, *, before: bool = False):
    def deco(func):
        REGISTRY.append(Fix(name, module, root_cause, remedy, func, before=before))
        return func

    return deco


# --------------------------------------------------------------------------------------------
# import-time side effects
# --------------------------------------------------------------------------------------------


@fix(
    "no-runtime-pip-install",
    "paddlespeech.s2t.utils.dynamic_pip_install",
    "paddlespeech.s2t.modules.ctc, s2t.models.ds2 (and audio/perturb, s2t/frontend/audio, "
    "server) run `pip install paddlespeech_ctcdecoders` in-process when the import fails; there "
    "is no cp311 wheel, so every ASR import spends seconds in pip (network) and prints an "
    "error; raising instead would make s2t.models.ds2 refuse to import.",
    "`dynamic_pip_install.install` only warns: the callers carry on as when pip fails "
    "(CTC greedy decoding and export do not need the wheel).",
)
def _no_pip(mod):
    def install(package_name):
        warnings.warn(
            f"speech-pir-export skipped PaddleSpeech's runtime `pip install {package_name}`; "
            "install it yourself if you need its beam-search decoders",
            stacklevel=2,
        )

    mod.install = install


@fix(
    "no-nltk-download",
    "g2p_en.g2p",
    "g2p_en (English frontend of paddlespeech.t2s) calls nltk.download() for "
    "averaged_perceptron_tagger and cmudict at import time; offline this hangs on the "
    "network timeout and then warns.",
    "nltk.download is replaced by a function that only warns while g2p_en.g2p imports.",
    before=True,
)
def _no_nltk(_mod):
    try:
        import nltk
    except ImportError:
        return

    def download(info_or_id=None, *args, **kwargs):
        warnings.warn(
            f"speech-pir-export skipped nltk.download({info_or_id!r}) at import of g2p_en; "
            "run `python -m nltk.downloader averaged_perceptron_tagger cmudict` yourself "
            "for English text frontends",
            stacklevel=2,
        )
        return False

    nltk.download = download


_LOGURU_ADD = None


@fix(
    "no-log-files-in-cwd",
    "paddlespeech.s2t.utils.log",
    "paddlespeech.s2t.utils.log adds a loguru file sink `exp/log/<prog>.<host>.<user>.<time>"
    ".log` in the current directory at import (class body of Log), so every program that "
    "imports an s2t module litters its working directory (and repositories) with log files.",
    "while that module executes, loguru's logger.add ignores sinks under exp/log; stdout "
    "logging is unchanged.",
    before=True,
)
def _no_log_files(_mod):
    global _LOGURU_ADD
    try:
        from loguru import logger
    except ImportError:
        return
    _LOGURU_ADD = logger.add

    def add(sink, *args, **kwargs):
        if isinstance(sink, str) and sink.replace("\\", "/").startswith("exp/log"):
            return None
        return _LOGURU_ADD(sink, *args, **kwargs)

    logger.add = add


@fix(
    "no-log-files-in-cwd-restore",
    "paddlespeech.s2t.utils.log",
    "companion of no-log-files-in-cwd: the loguru patch must not outlive the import of "
    "paddlespeech.s2t.utils.log.",
    "restore loguru's logger.add after the module executed.",
)
def _restore_loguru(_mod):
    if _LOGURU_ADD is not None:
        from loguru import logger

        logger.add = _LOGURU_ADD


# --------------------------------------------------------------------------------------------
# Paddle 3 API changes
# --------------------------------------------------------------------------------------------

_KEYWORD_ONLY_ADAPTERS: dict[str, tuple[str, ...]] = {
    # name of the paddle.nn class -> its legacy positional parameter order (after self)
    "LayerNorm": ("normalized_shape", "epsilon", "weight_attr", "bias_attr", "name"),
    "Conv1D": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "padding_mode",
        "weight_attr",
        "bias_attr",
        "data_format",
    ),
    "Conv2D": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "padding_mode",
        "weight_attr",
        "bias_attr",
        "data_format",
    ),
    "Linear": ("in_features", "out_features", "weight_attr", "bias_attr", "name"),
    "BatchNorm1D": (
        "num_features",
        "momentum",
        "epsilon",
        "weight_attr",
        "bias_attr",
        "data_format",
        "name",
    ),
}


def _positional_adapter(base: type, order: tuple[str, ...]) -> type:
    def __init__(self, *args, **kwargs):
        if len(args) > len(order):
            raise TypeError(f"{base.__name__}() got {len(args)} positional arguments")
        kwargs.update(zip(order, args))
        base.__init__(self, **kwargs)

    return type(f"_Positional{base.__name__}", (base,), {"__init__": __init__})


@fix(
    "align-keyword-only-args",
    "paddlespeech.s2t.modules.align",
    "Paddle 3 made the trailing constructor arguments of Conv1D/2D/3D (after 7), LayerNorm "
    "(after 2) and GroupNorm keyword-only; align.py's LayerNorm/Conv1D/Conv2D call "
    "super().__init__ positionally: `TypeError: Conv2D.__init__() takes from 4 to 8 positional "
    "arguments but 12 were given`, so every s2t model (DeepSpeech2, U2, Conformer) fails to build.",
    "an adapter class that maps the legacy positional order to keywords is inserted between "
    "each align class and its paddle.nn base (`__bases__` swap, code of align.py untouched).",
)
def _align(mod):
    import paddle.nn as nn

    for name, order in _KEYWORD_ONLY_ADAPTERS.items():
        cls = getattr(mod, name, None)
        base = getattr(nn, name)
        if cls is None or cls.__bases__ != (base,):
            continue
        cls.__bases__ = (_positional_adapter(base, order),)


class _PaddleWithLegacySoftmax:
    """Module proxy: ``paddle.softmax(x, axis=...)`` keeps working, all else is paddle."""

    def __init__(self, paddle_module):
        self._paddle = paddle_module

    def __getattr__(self, item):
        return getattr(self._paddle, item)

    def softmax(self, x, axis=-1, dtype=None, name=None, **kwargs):
        import paddle.nn.functional as F

        if "dim" in kwargs:
            axis = kwargs.pop("dim")
        return F.softmax(x, axis=axis, dtype=dtype, name=name)


@fix(
    "softmax-axis",
    "paddlespeech.s2t.modules.attention",
    "`paddle.softmax` is the torch-compatible op in Paddle 3.3 (signature `(input, dim, "
    "dtype)`): `paddle.softmax(scores, axis=-1)` raises `TypeError: ... received unexpected "
    "keyword argument 'axis'` in every U2/Conformer/Transformer attention.",
    "the module's global `paddle` is a proxy whose softmax accepts `axis` and calls "
    "paddle.nn.functional.softmax; nothing global changes.",
)
def _softmax(mod):
    mod.paddle = _PaddleWithLegacySoftmax(mod.paddle)


@fix(
    "attention-equal-rank-branches",
    "paddlespeech.s2t.modules.attention",
    "MultiHeadedAttention.forward_attention branches on `mask.shape[2] > 0`; under to_static "
    "with a dynamic time axis this becomes a PIR if_op whose branches give `mask` rank 4 and 3: "
    "`EnforceNotMet: Does not support rank inconsistency: rank1=3, rank2=4` (U2 "
    "forward_attention_decoder).",
    "forward_attention decides on the static shape (not converted by dy2st): a dynamic (-1) "
    "or positive time2 means a real mask, 0 means the fake (0, 0, 0) mask, as in dygraph.",
)
def _attention_rank(mod):
    import paddle
    import paddle.nn.functional as F

    @paddle.jit.not_to_static
    def forward_attention(self, value, scores, mask=None):
        if mask is not None and mask.shape[2] != 0:  # -1 (dynamic) or > 0: a real mask
            mask = mask.unsqueeze(1).equal(0)[:, :, :, : paddle.shape(scores)[-1]]
            scores = scores.masked_fill(mask, -float("inf"))
            attn = F.softmax(scores, axis=-1).masked_fill(mask, 0.0)
        else:
            attn = F.softmax(scores, axis=-1)
        x = paddle.matmul(self.dropout(attn), value)
        # 0 = keep the (batch) dim: a static -1 batch would give reshape two -1
        x = x.transpose([0, 2, 1, 3]).reshape([0, -1, self.h * self.d_k])
        return self.linear_out(x)

    mod.MultiHeadedAttention.forward_attention = forward_attention


@fix(
    "softmax-axis-wav2vec2",
    "paddlespeech.s2t.models.wav2vec2.modules.modeling_wav2vec2",
    "same `paddle.softmax(axis=)` break in wav2vec2's attention.",
    "same module-local proxy.",
)
def _softmax_w2v(mod):
    mod.paddle = _PaddleWithLegacySoftmax(mod.paddle)


@fix(
    "pir-value-repeat-varargs",
    "paddle",
    "Tensor.repeat is native in Paddle 3 (so PaddleSpeech's own shim is not installed) and "
    "accepts `x.repeat(n, 1, 1)` in dygraph, but PIR's `Value.repeat` takes one list: under "
    "to_static `encoder_out.repeat(num_hyps, 1, 1)` (u2.py, u2_st, ctc_prefix_score) raises "
    "`TypeError: repeat() takes 2 positional arguments but 4 were given`.",
    "`Value.repeat` accepts varargs like the dygraph Tensor method and forwards a list.",
)
def _value_repeat(mod):
    # hooked on `paddle` itself: Value's tensor methods (repeat included) are patched onto it
    # while paddle/__init__ runs, after paddle.pir has finished importing
    value_cls = getattr(getattr(mod, "pir", None), "Value", None)
    original = getattr(value_cls, "repeat", None)
    if original is None or getattr(original, "_speech_pir_export", False):
        return

    def repeat(self, *repeats, **kwargs):
        if len(repeats) > 1 or (repeats and isinstance(repeats[0], int)):
            repeats = (list(repeats),)
        return original(self, *repeats, **kwargs)

    repeat._speech_pir_export = True
    value_cls.repeat = repeat


# --------------------------------------------------------------------------------------------
# PIR / dy2st semantics
# --------------------------------------------------------------------------------------------


@fix(
    "ctc-softmax-no-self-state",
    "paddlespeech.s2t.modules.ctc",
    "CTCDecoder.softmax stores `self.probs`; after one dygraph call it is a layer buffer, PIR "
    "captures it as a parameter and the traced graph returns the stale tensor: `ValueError: "
    "The feed_var ... is not involved in the target_vars calculation` at jit.save.",
    "softmax keeps the probabilities local (nothing in PaddleSpeech reads `self.probs`).",
)
def _ctc(mod):
    import paddle.nn.functional as F

    def softmax(self, eouts, temperature: float = 1.0):
        return F.softmax(self.ctc_lo(eouts) / temperature, axis=2)

    mod.CTCDecoder.softmax = softmax


@fix(
    "relpos-extend-pe-static",
    "paddlespeech.t2s.modules.transformer.embedding",
    "RelPositionalEncoding.extend_pe assigns `self.pe = pe` inside a tensor-conditioned "
    "branch; under to_static `pe` is a buffer: `TypeError: assignment to parameter 'pe' should "
    "be of type Parameter or None, but got 'Value'` (VITS, JETS).",
    "in static mode extend_pe is skipped: pe is precomputed for max_len=5000 frames at build.",
)
def _relpos(mod):
    import paddle

    for cls_name in (
        "RelPositionalEncoding",
        "LegacyRelPositionalEncoding",
        "ScaledPositionalEncoding",
        "PositionalEncoding",
    ):
        cls = getattr(mod, cls_name, None)
        if cls is None or not hasattr(cls, "extend_pe"):
            continue
        original = cls.extend_pe

        @paddle.jit.not_to_static  # dy2st cannot re-parse a closure defined here
        def extend_pe(self, x, _original=original):
            if not paddle.in_dynamic_mode():
                return None
            return _original(self, x)

        cls.extend_pe = extend_pe


@fix(
    "kws-model-tuple",
    "paddlespeech.kws.models.mdtc",
    "MDTC.forward returns `(outputs, None)` but KWSModel.forward feeds it straight into "
    "Linear: `ValueError: linear(): argument 'X' ... must be Tensor, but got tuple` (dygraph "
    "too).",
    "KWSModel.forward unpacks the tuple.",
)
def _kws(mod):
    def forward(self, x):
        outputs = self.backbone(x)
        if isinstance(outputs, tuple):
            outputs = outputs[0]
        return self.activation(self.linear(outputs))

    mod.KWSModel.forward = forward


# --------------------------------------------------------------------------------------------
# machinery
# --------------------------------------------------------------------------------------------

_LOCK = threading.Lock()
_INSTALLED = False


@fix(
    "time-reduction-masked-fill-static",
    "paddlespeech.s2t.modules.time_reduction",
    "paddlespeech.s2t.masked_fill computes the broadcast shape in Python with max() over "
    "`x.shape` entries; under to_static those are PIR Values, so `max` calls Value.__bool__ "
    "and tracing fails (Squeezeformer time reduction in forward_encoder_chunk).",
    "module-local masked_fill that lets paddle.where broadcast (same result in dygraph).",
)
def _time_reduction_masked_fill(mod):
    import paddle

    def masked_fill(xs, mask, value):
        return paddle.where(mask, paddle.full([1], value, dtype=xs.dtype), xs)

    mod.masked_fill = masked_fill


def _run(fx: Fix, module) -> None:
    if fx.applied:
        return
    try:
        fx.apply(module)
        fx.applied = True
    except Exception as exc:  # a fix must never break the import of its target
        fx.error = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"speech-pir-export fix {fx.name!r} failed: {fx.error}", stacklevel=2)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner, fixes):
        self.inner, self.fixes = inner, fixes

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        for fx in self.fixes:
            if fx.before:
                _run(fx, module)
        self.inner.exec_module(module)
        for fx in self.fixes:
            if not fx.before:
                _run(fx, module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        fixes = [fx for fx in REGISTRY if fx.module == fullname and not fx.applied]
        if not fixes:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader, fixes)
                return spec
        return None


def install() -> None:
    """Apply fixes to already-imported targets and hook the rest (idempotent)."""
    global _INSTALLED
    with _LOCK:
        if not _INSTALLED:
            sys.meta_path.insert(0, _Finder())
            _INSTALLED = True
        for fx in REGISTRY:
            mod = sys.modules.get(fx.module)
            if mod is not None and not fx.before:
                _run(fx, mod)


def report() -> list[dict]:
    return [
        {
            "name": fx.name,
            "module": fx.module,
            "applied": fx.applied,
            "error": fx.error,
            "root_cause": fx.root_cause,
            "remedy": fx.remedy,
        }
        for fx in REGISTRY
    ]


def import_all_targets() -> list[dict]:
    """Import every target module that is installed (used by tests and `fixes --apply`)."""
    for fx in REGISTRY:
        if importlib.util.find_spec(fx.module.split(".")[0]) is None:
            continue
        try:
            importlib.import_module(fx.module)
        except Exception as exc:  # missing optional dependency of an upstream module
            fx.error = fx.error or f"import failed: {type(exc).__name__}: {exc}"
    return report()
