"""Families the zoo builds with random weights and runs forward, but does not export: they
have no dynamic-to-static path upstream (wav2vec2 / HuBERT / WavLM, ERNIE-SAT, StarGANv2-VC,
TransformerTTS, HiFiGAN-iSTFT), plus configs of exportable families that their registry
detector does not recognise. Each entry's ``forward(cfg)`` builds the model and runs one
forward: it returns the class name, whether the forward ran, and its error ("" if none)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import paddle

from . import _yacs
from . import detect as registry_detect

REASON = "no dynamic-to-static path upstream"
VOCAB = 60


@dataclass
class BuildOnly:
    name: str
    forward: Callable[[dict], tuple[str, bool, str]]
    detect: Callable[[dict], bool] = lambda cfg: False
    path_tags: tuple[str, ...] = ()  # recipe folders or file names whose configs share no
    # keys a detector could use


BUILD_ONLY: dict[str, BuildOnly] = {}


def _entry(name, *, detect=None, path_tags=()):
    def deco(func):
        BUILD_ONLY[name] = BuildOnly(name, func, detect or (lambda cfg: False), path_tags)
        return func

    return deco


def classify(cfg, path=None) -> tuple[str | None, str]:
    """(name, "registry" | "build-only") of a config, or (None, why not)."""
    if not isinstance(cfg, dict):
        return None, "not a mapping"
    name = registry_detect(cfg)
    if name:
        return name, "registry"
    for entry in BUILD_ONLY.values():
        try:
            if entry.detect(cfg):
                return entry.name, "build-only"
        except (AttributeError, TypeError):
            continue
    if path is not None:
        for entry in BUILD_ONLY.values():
            if any(tag in str(path) for tag in entry.path_tags):
                return entry.name, "build-only"
    return None, "unknown family"


def _try(fn) -> tuple[bool, str]:
    try:
        with paddle.no_grad():
            fn()
        return True, ""
    except Exception as exc:
        return False, f"forward: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}"


def _model(cfg):
    m = cfg.get("model") or {}
    return m if isinstance(m, dict) else {}


@_entry(
    "transformer_tts",
    detect=lambda cfg: (
        "dprenet_layers" in _model(cfg)
        or ({"elayers", "postnet_layers", "adim"} <= set(_model(cfg)))
    ),
)
def _transformer_tts(cfg):
    from paddlespeech.t2s.models.transformer_tts import TransformerTTS

    m = TransformerTTS(idim=VOCAB, odim=cfg.get("n_mels", 80), **cfg["model"])
    m.eval()
    return (
        "TransformerTTS",
        *_try(lambda: m.inference(paddle.to_tensor([3, 4, 5, 6], dtype="int64"), maxlenratio=2.0)),
    )


@_entry("tacotron2", detect=lambda cfg: {"embed_dim", "atype"} <= set(_model(cfg)))
def _tacotron2(cfg):
    from paddlespeech.t2s.models.tacotron2 import Tacotron2

    m = Tacotron2(idim=VOCAB, odim=cfg.get("n_mels", 80), **cfg["model"])
    m.eval()
    return (
        "Tacotron2",
        *_try(
            lambda: m.inference(paddle.to_tensor([3, 4, 5, 6, 7], dtype="int64"), maxlenratio=2.0)
        ),
    )


@_entry("hifigan_istft", detect=lambda cfg: "use_istft" in (cfg.get("generator_params") or {}))
def _hifigan_istft(cfg):
    from paddlespeech.t2s.models.hifigan import HiFiGANGenerator

    m = HiFiGANGenerator(**cfg["generator_params"])
    m.eval()
    return (
        "HiFiGAN (iSTFT)",
        *_try(
            lambda: m.inference(paddle.randn([10, cfg["generator_params"].get("in_channels", 80)]))
        ),
    )


def _numeric(obj):
    """YAML 1.1 reads `1e-5` (no dot) as a string; wav2vec2's layer_norm_eps arrives as
    "1e-5" and Paddle 3's layer_norm rejects it: coerce numeric strings."""
    if isinstance(obj, dict):
        return {k: _numeric(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_numeric(v) for v in obj]
    if isinstance(obj, str) and any(ch.isdigit() for ch in obj) and "e" in obj.lower():
        try:
            return float(obj)
        except ValueError:
            return obj
    return obj


def _ssl_asr(module, cls):
    def forward(cfg):
        import importlib

        klass = getattr(importlib.import_module(f"paddlespeech.s2t.models.{module}"), cls)
        c = _numeric(dict(cfg))
        c.setdefault("output_dim", 100)
        m = klass.from_config(_yacs(c))
        m.eval()
        # the models take raw audio as (B, T, 1)
        return (cls, *_try(lambda: m.ctc_greedy_search(paddle.randn([1, 16000, 1]) * 0.1)))

    return forward


_entry("wav2vec2_asr", path_tags=("wav2vec2",))(_ssl_asr("wav2vec2.wav2vec2_ASR", "Wav2vec2ASR"))
_entry("hubert_asr", path_tags=("hubert",))(_ssl_asr("hubert.hubert_ASR", "HubertASR"))
_entry("wavlm_asr", path_tags=("wavlm",))(_ssl_asr("wavlm.wavlm_asr", "WavLMASR"))


@_entry("ernie_sat", path_tags=("ernie_sat",))
def _ernie_sat(cfg):
    from paddlespeech.t2s.models.ernie_sat import ErnieSAT

    odim = cfg.get("n_mels", 80)
    m = ErnieSAT(idim=VOCAB, odim=odim, **cfg["model"])
    m.eval()
    t, n = 40, 8

    def run():
        masked = np.zeros((1, t), bool)
        masked[0, 12:24] = True  # the span to re-generate
        m.inference(
            speech=paddle.randn([1, t, odim]),
            text=paddle.to_tensor(np.arange(1, n + 1)[None], dtype="int64"),
            masked_pos=paddle.to_tensor(masked),
            speech_mask=paddle.ones([1, 1, t], dtype="bool"),
            text_mask=paddle.ones([1, 1, n], dtype="bool"),
            speech_seg_pos=paddle.ones([1, t], dtype="int64"),
            text_seg_pos=paddle.ones([1, n], dtype="int64"),
            span_bdy=[12, 24],
        )

    return ("ErnieSAT", *_try(run))


@_entry("wavernn", path_tags=("/voc6/",))
def _wavernn(cfg):
    from paddlespeech.t2s.models.wavernn import WaveRNN

    m = WaveRNN(**cfg["model"])
    m.eval()
    return (
        "WaveRNN",
        *_try(lambda: m.generate(paddle.randn([4, cfg.get("n_mels", 80)]), batched=False)),
    )


@_entry("diffsinger", path_tags=("/svs1/",))
def _diffsinger(cfg):
    from paddlespeech.t2s.models.diffsinger import DiffSinger

    odim = cfg.get("n_mels", 80)
    DiffSinger(
        spec_min=paddle.full([odim], -6.0),
        spec_max=paddle.full([odim], 2.0),
        idim=VOCAB,
        odim=odim,
        **cfg["model"],
    )
    return "DiffSinger", False, ""  # inference runs 100 diffusion steps: build only


@_entry("starganv2_vc", path_tags=("/vc3/",))
def _starganv2_vc(cfg):
    from paddlespeech.t2s.models.starganv2_vc import Generator

    gp = cfg["generator_params"]
    m = Generator(**gp)
    m.eval()
    n_mels = cfg.get("n_mels", 80)
    f0 = int(gp.get("F0_channel", 0))
    # with F0_channel the decoder expects the JDC pitch features (B, 256, n_mels // 8, T)
    return (
        "StarGANv2-VC Generator",
        *_try(
            lambda: m(
                paddle.randn([1, 1, n_mels, 64]),
                paddle.randn([1, int(gp.get("style_dim", 48))]),
                F0=paddle.randn([1, f0, n_mels // 8, 64]) if f0 else None,
            )
        ),
    )


@_entry("ernie_punctuation", path_tags=("/punc0/",))
def _ernie_punctuation(cfg):
    raise NotImplementedError("ernie_punctuation: needs paddlenlp ERNIE")
