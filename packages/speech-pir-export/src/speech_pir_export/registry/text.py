"""Text models: ERNIE punctuation / prosody restoration (ErnieLinear)."""

from __future__ import annotations

import numpy as np
import paddle

from . import Built, Call, ConfigError, Graph, Input, _need, register


def _punc(model, input_ids):
    return model(input_ids)[1]


def _is_ernie_punc(cfg):
    m = cfg.get("model") or {}
    return cfg.get("model_type") in ("ErnieLinear", "ErnieCrf") or (
        "pretrained_token" in m and "num_classes" in m
    )


@register(
    "ernie_punc",
    "punc",
    "ERNIE punctuation restoration (ErnieLinear)",
    checkpoint_key="main_params",
    detect=_is_ernie_punc,
    notes="iwslt2012/punc0 recipes. The ERNIE architecture comes from paddlenlp's "
    "built-in configuration of the config's pretrained_token (no download); "
    "weights are random unless a checkpoint is given. input_ids [B, L] -> "
    "per-token punctuation probabilities [B*L, num_classes]. Tokenisation is "
    "not included (paddlenlp's tokenizer needs its vocabulary files)",
)
def _ernie_punc(cfg, ctx):
    try:
        from paddlenlp.transformers import ErnieConfig, ErnieForTokenClassification
        from paddlenlp.transformers.ernie.configuration import (
            ERNIE_PRETRAINED_INIT_CONFIGURATION,
        )
        from paddlespeech.text.models.ernie_linear import ErnieLinear
    except ImportError as exc:  # paddlenlp is a dependency of paddlespeech 1.5.0
        raise ConfigError(f"ERNIE punctuation needs paddlenlp: {exc}") from exc
    if cfg.get("model_type", "ErnieLinear") != "ErnieLinear":
        raise ConfigError(f"model_type {cfg.get('model_type')!r}: only ErnieLinear is built")
    m = _need(cfg, "model", "ERNIE punctuation")
    token = m.get("pretrained_token", "ernie-1.0")
    if token not in ERNIE_PRETRAINED_INIT_CONFIGURATION:
        raise ConfigError(
            f"pretrained_token {token!r} is not one of paddlenlp's built-in ERNIE configurations"
        )
    arch = dict(ERNIE_PRETRAINED_INIT_CONFIGURATION[token])
    num_classes = int(m["num_classes"])
    model = ErnieLinear.__new__(ErnieLinear)  # upstream __init__ downloads the weights
    paddle.nn.Layer.__init__(model)
    model.ernie = ErnieForTokenClassification(ErnieConfig(**arch, num_labels=num_classes))
    model.num_classes = num_classes
    model.softmax = paddle.nn.Softmax()

    vocab = int(arch["vocab_size"])
    inputs = [
        Input(
            "input_ids",
            [-1, -1],
            "int64",
            lambda rng: rng.integers(1, vocab, size=(1, 24), dtype=np.int64),
        )
    ]
    meta = {
        "pretrained_token": token,
        "num_classes": num_classes,
        "vocab_size": vocab,
        "punc_path": (cfg.get("data_params") or {}).get("punc_path"),
    }
    return Built(model, [Graph("model", Call(_punc, model), inputs, ["probs"])], meta)
