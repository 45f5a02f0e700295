"""Audio classification (PANNs), speaker vectors (ECAPA-TDNN, GE2E) and keyword spotting
(MDTC)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from . import Built, Call, Graph, Input, _build_model, _floats, _need, register


def _ge2e_embed(enc, mels):
    return enc.embed_sequences(mels)


def decode_cls(exp, feats) -> dict:
    out = exp.run(feats)[0]
    return {"label": int(out[0].argmax()), "logits": out[0].tolist()}


def decode_kws(exp, feats) -> dict:
    return {"keyword_prob_max": float(exp.run(feats)[0].max())}


def decode_vector(exp, feats) -> dict:
    return {"embedding": exp.run(feats)[0][0].tolist()}


def decode_ge2e(exp, feats) -> dict:
    """Utterance embedding as LSTMSpeakerEncoder.embed_utterance: the mean of the embeddings
    of the partial utterances, re-normalised. With the recipe's front end recorded
    (``meta.frontend.type == "ge2e"``) ``feats`` already are those partials, [N, T, n_mels];
    older exports (log-mel of the whole utterance) are cut into half-overlapping windows."""
    if (exp.meta.get("frontend") or {}).get("type") == "ge2e":
        parts = feats
    else:
        n = int(exp.meta.get("partial_n_frames", 160))
        t = feats.shape[1]
        starts = list(range(0, max(t - n, 0) + 1, max(n // 2, 1)))
        parts = np.concatenate([feats[:, s : s + n] for s in starts]) if t >= n else feats
    emb = exp.run(np.ascontiguousarray(parts, dtype="float32"))[0].mean(axis=0)
    return {"embedding": (emb / max(np.linalg.norm(emb), 1e-12)).astype("float32").tolist()}


def _panns(backbone_name):
    def build(cfg, ctx):
        import importlib

        from paddlespeech.cls.models.panns import SoundClassifier

        data = cfg.get("data") or {}
        feature = cfg.get("feature") or {}
        num_classes = int(data.get("num_classes", 50))
        mod = importlib.import_module("paddlespeech.cls.models.panns.panns")
        backbone = getattr(mod, backbone_name.upper())(extract_embedding=True)
        model = SoundClassifier(backbone, num_classes)
        n_mels = int(feature.get("n_mels", 64))
        inputs = [Input("feats", [-1, -1, n_mels], "float32", _floats(1, 101, n_mels))]
        meta = {
            "sample_rate": feature.get("sr", 32000),
            "n_mels": n_mels,
            "num_classes": num_classes,
            "feature": feature,
        }
        return Built(model, [Graph("model", model, inputs, ["logits"])], meta)

    return build


def _is_panns(name):
    def detect(cfg):
        b = str((cfg.get("model") or {}).get("backbone", ""))
        return b.lower().endswith(":" + name)

    return detect


for _n in ("cnn6", "cnn10", "cnn14"):
    register(f"panns_{_n}", "cls", f"PANNs {_n.upper()}", detect=_is_panns(_n), decode=decode_cls)(
        _panns(_n)
    )


def _is_ecapa(cfg):
    m = cfg.get("model") or {}
    return "attention_channels" in m and "lin_neurons" in m


@register("ecapa_tdnn", "vector", "ECAPA-TDNN", detect=_is_ecapa, decode=decode_vector)
def _ecapa(cfg, ctx):
    from paddlespeech.vector.models.ecapa_tdnn import EcapaTdnn

    mcfg = dict(_need(cfg, "model", "ECAPA-TDNN"))
    model = _build_model(EcapaTdnn, mcfg, "EcapaTdnn")
    n_mels = mcfg.get("input_size", 80)
    inputs = [Input("feats", [-1, n_mels, -1], "float32", _floats(1, n_mels, 100))]
    meta = {
        "sample_rate": cfg.get("sr", 16000),
        "n_mels": n_mels,
        "embedding_dim": mcfg.get("lin_neurons"),
        "layout": "NCT",
    }
    return Built(model, [Graph("model", model, inputs, ["embedding"])], meta)


def _is_ge2e(cfg):
    m = cfg.get("model") or {}
    return {"num_layers", "hidden_size", "embedding_size"} <= set(m) and "n_mels" in (
        cfg.get("data") or {}
    )


@register(
    "ge2e",
    "vector",
    "GE2E LSTM speaker encoder",
    detect=_is_ge2e,
    decode=decode_ge2e,
    notes="speaker encoder of the voice-cloning recipes (aishell3/vc0-vc2): "
    "[N, T, n_mels] partial utterances -> L2-normalised [N, embedding_size]; "
    "infer averages the partials and normalises (embed_utterance). Config: the "
    "layout of paddlespeech/vector/exps/ge2e/config.py as YAML",
)
def _ge2e(cfg, ctx):
    from paddlespeech.vector.models.lstm_speaker_encoder import LSTMSpeakerEncoder

    m, data = _need(cfg, "model", "GE2E"), _need(cfg, "data", "GE2E")
    n_mels = int(data["n_mels"])
    model = _build_model(
        LSTMSpeakerEncoder,
        dict(
            n_mels=n_mels,
            num_layers=int(m["num_layers"]),
            hidden_size=int(m["hidden_size"]),
            output_size=int(m["embedding_size"]),
        ),
        "LSTMSpeakerEncoder",
    )

    inputs = [Input("mels", [-1, -1, n_mels], "float32", _floats(3, 40, n_mels))]
    front = ge2e_frontend(data)
    meta = {
        "sample_rate": int(data.get("sampling_rate", 16000)),
        "n_mels": n_mels,
        "embedding_dim": int(m["embedding_size"]),
        "partial_n_frames": int(data.get("partial_n_frames", 160)),
        "feature": {
            "n_fft": int(
                data.get("sampling_rate", 16000) * data.get("mel_window_length", 25) / 1000
            ),
            "hop_length": int(
                data.get("sampling_rate", 16000) * data.get("mel_window_step", 10) / 1000
            ),
            "n_mels": n_mels,
        },
        "frontend": front,
    }
    return Built(model, [Graph("model", Call(_ge2e_embed, model), inputs, ["embeddings"])], meta)


GE2E_FRONTEND_KEYS = (
    "sampling_rate",
    "audio_norm_target_dBFS",
    "vad_window_length",
    "vad_moving_average_width",
    "vad_max_silence_length",
    "mel_window_length",
    "mel_window_step",
    "n_mels",
    "partial_n_frames",
    "min_pad_coverage",
    "partial_overlap_ratio",
)

_GE2E_FLOATS = (  # the rest are counts (ms for the VAD window: webrtcvad takes 10, 20, 30)
    "audio_norm_target_dBFS",
    "mel_window_length",
    "mel_window_step",
    "min_pad_coverage",
    "partial_overlap_ratio",
)


def ge2e_frontend(data: dict) -> dict:
    """The recipe's preprocessing (``SpeakerVerificationPreprocessor``: volume normalisation
    to a target dBFS, long-silence trimming with webrtcvad, power mel, partial utterances):
    the config's ``data`` section over the defaults of paddlespeech/vector/exps/ge2e/config.py."""
    from paddlespeech.vector.exps.ge2e.config import get_cfg_defaults

    defaults = get_cfg_defaults().data
    out = {"type": "ge2e"}
    for key in GE2E_FRONTEND_KEYS:
        value = data.get(key, defaults[key])
        out[key] = float(value) if key in _GE2E_FLOATS else int(value)
    out["sample_rate"] = out["sampling_rate"]
    if out["vad_window_length"] not in (10, 20, 30):
        raise ConfigError(
            f"GE2E: vad_window_length {out['vad_window_length']} ms: webrtcvad takes 10, 20 or 30"
        )
    return out


def _is_mdtc(cfg):
    return str(cfg.get("backbone", "")).endswith(":MDTC")


@register("mdtc", "kws", "MDTC keyword spotting", detect=_is_mdtc, decode=decode_kws)
def _mdtc(cfg, ctx):
    from paddlespeech.kws.models.mdtc import MDTC, KWSModel

    for key in ("stack_num", "stack_size", "in_channels", "res_channels", "kernel_size"):
        _need(cfg, key, "MDTC")
    backbone = MDTC(
        stack_num=cfg["stack_num"],
        stack_size=cfg["stack_size"],
        in_channels=cfg["in_channels"],
        res_channels=cfg["res_channels"],
        kernel_size=cfg["kernel_size"],
        causal=True,
    )
    model = KWSModel(backbone, int(cfg.get("num_keywords", 1)))
    n = cfg["in_channels"]
    inputs = [Input("feats", [-1, -1, n], "float32", _floats(1, 60, n))]
    meta = {
        "sample_rate": cfg.get("sample_rate", 16000),
        "n_mels": n,
        "num_keywords": int(cfg.get("num_keywords", 1)),
    }
    return Built(model, [Graph("model", model, inputs, ["keyword_probs"])], meta)
