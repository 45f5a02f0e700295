"""Text in, punctuated text out: ``infer --text`` on an ERNIE punctuation export against
PaddleSpeech's own TextExecutor (``paddlespeech text --task punc``): its ``preprocess`` (text
cleaning, ERNIE tokenizer with characters as words), ``infer`` and ``postprocess`` methods run
on the same checkpoint, tokenizer vocabulary and punctuation list. The strings must be equal.

The model is an ErnieLinear of the iwslt2012/punc0 recipe sized down by the config's
``ernie_config`` (2 layers, hidden 32), random weights; the vocabulary is an ERNIE
``vocab.txt`` layout ([PAD], [CLS], [SEP], [MASK], [UNK], then characters).
"""

from __future__ import annotations

import json

import paddle
import yaml

from speech_pir_export.cli import main

TEXT = "今天天气很好我们去公园散步你要一起来吗 Paddle Speech 3"
PUNCS = ["0", "，", "。", "？"]


def test_punctuation_equals_text_executor(tmp_path, capsys):
    from paddlenlp.transformers import ErnieConfig, ErnieForTokenClassification, ErnieTokenizer
    from paddlespeech.cli.text.infer import TextExecutor
    from paddlespeech.text.models.ernie_linear import ErnieLinear

    chars = sorted(set(TEXT.lower().replace(" ", "")))
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", *chars, *"xyz"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (tmp_path / "punc_vocab").write_text("\n".join(PUNCS) + "\n", encoding="utf-8")
    arch = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    cfg = {
        "model_type": "ErnieLinear",
        "data_params": {"pretrained_token": "ernie-1.0", "punc_path": "punc_vocab"},
        "model": {"pretrained_token": "ernie-1.0", "num_classes": 4, "ernie_config": arch},
    }
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "default.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")

    # random weights, saved as the recipe's trainer does
    from paddlenlp.transformers.ernie.configuration import ERNIE_PRETRAINED_INIT_CONFIGURATION

    full = dict(ERNIE_PRETRAINED_INIT_CONFIGURATION["ernie-1.0"], **arch, vocab_size=len(vocab))
    paddle.seed(9)
    model = ErnieLinear.__new__(ErnieLinear)  # upstream __init__ downloads ernie-1.0
    paddle.nn.Layer.__init__(model)
    model.ernie = ErnieForTokenClassification(ErnieConfig(**full, num_labels=4))
    model.num_classes = 4
    model.softmax = paddle.nn.Softmax()
    model.eval()
    paddle.save({"main_params": model.state_dict()}, str(tmp_path / "snapshot.pdz"))

    assert (
        main(
            [
                "export",
                "ernie_punc",
                "--config",
                str(config),
                "--checkpoint",
                str(tmp_path / "snapshot.pdz"),
                "--phones-dict",
                str(tmp_path / "vocab.txt"),
                "--out",
                str(tmp_path / "exp"),
                "--skip-onednn",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["infer", str(tmp_path / "exp"), "--text", TEXT]) == 0
    ours = json.loads(capsys.readouterr().out)

    # PaddleSpeech's TextExecutor, its own three steps, on the same model and files
    executor = TextExecutor.__new__(TextExecutor)
    executor.task = "punc"
    executor._inputs, executor._outputs = {}, {}
    executor._punc_list = PUNCS
    executor.tokenizer = ErnieTokenizer(str(tmp_path / "vocab.txt"))
    executor.model = model
    executor.preprocess(TEXT)
    executor.infer()
    reference = executor.postprocess()

    print("punctuated:", reference)
    assert ours["text"] == reference
    assert sum(c != 0 for c in ours["labels"]) >= 3  # punctuation actually inserted
