"""Text models: ERNIE punctuation / prosody restoration (ErnieLinear)."""

from __future__ import annotations

import numpy as np
import paddle

from ..errors import ExportError
from . import Built, Call, ConfigError, Graph, Input, _need, register


def _punc(model, input_ids):
    return model(input_ids)[1]


def punctuate(exp, text: str) -> dict:
    """Text in, punctuated text out, as PaddleSpeech's TextExecutor (``paddlespeech text
    --task punc``): its text cleaning, the ERNIE tokenizer on the export's vocabulary
    (characters as words), one graph call, then the recipe's punctuation list after every
    token whose class is not 0."""
    import re
    import tempfile
    from pathlib import Path

    from paddlenlp.transformers import ErnieTokenizer

    meta = exp.meta
    vocab, puncs = meta.get("vocab"), meta.get("punc_list")
    if not vocab or not puncs:
        raise ExportError(
            f"{exp.manifest['model']}: this export has no tokenizer vocabulary "
            "or punctuation list (export with --phones-dict VOCAB and --labels "
            "PUNC_VOCAB)"
        )
    clean = re.sub("[^A-Za-z0-9\u4e00-\u9fa5]", "", text.lower())
    clean = re.sub(f"[{re.escape(''.join(puncs[1:]))}]", "", clean)
    if not clean:
        raise ExportError("no text to punctuate (letters, digits or CJK characters)")
    with tempfile.TemporaryDirectory() as td:
        vocab_file = Path(td) / "vocab.txt"
        vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tokenizer = ErnieTokenizer(str(vocab_file))
        enc = tokenizer(list(clean), return_length=True, is_split_into_words=True)
    ids = np.asarray([enc["input_ids"]], np.int64)
    probs = exp.run(ids)[0]
    labels = probs.argmax(-1)[1 : enc["seq_len"] - 1].tolist()
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][1 : enc["seq_len"] - 1])
    out = "".join(t + (puncs[c] if c != 0 else "") for t, c in zip(tokens, labels))
    return {"text": out, "labels": labels}


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
    text_to_text=lambda exp, text: punctuate(exp, text),
    notes="iwslt2012/punc0 recipes. The ERNIE architecture comes from paddlenlp's "
    "built-in configuration of the config's pretrained_token (no download); "
    "weights are random unless a checkpoint is given. input_ids [B, L] -> "
    "per-token punctuation probabilities [B*L, num_classes]. With --phones-dict "
    "(the ERNIE vocab.txt) and --labels (the recipe's punc_vocab) `infer --text` "
    "punctuates text as PaddleSpeech's TextExecutor",
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
    arch.update(m.get("ernie_config") or {})  # a config may size the architecture itself
    if ctx.vocab:  # the tokenizer's vocabulary decides the embedding rows
        arch["vocab_size"] = len(ctx.vocab)
    num_classes = int(m["num_classes"])
    if ctx.labels and len(ctx.labels) != num_classes:
        raise ConfigError(
            f"the punctuation list has {len(ctx.labels)} entries, the model {num_classes} classes"
        )
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
        "vocab": ctx.vocab,
        "punc_list": ctx.labels,
        "tokenizer": {"type": "ErnieTokenizer", "do_lower_case": True},
    }
    return Built(model, [Graph("model", Call(_punc, model), inputs, ["probs"])], meta)
