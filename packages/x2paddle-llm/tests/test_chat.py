"""Chat templates: our rendering + encoding gives exactly transformers' ``apply_chat_template``
ids for three families' real templates (Qwen2-Instruct, Llama-3-Instruct, Gemma-it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from x2paddle_llm._errors import UserError
from x2paddle_llm.chat import ChatTemplate

TEMPLATES = json.loads((Path(__file__).parent / "fixtures" / "chat_templates.json").read_text())
CONVERSATIONS = [
    [{"role": "user", "content": "w5 w6 w7"}],
    [
        {"role": "user", "content": "  w9 w10 \n"},
        {"role": "assistant", "content": "w11"},
        {"role": "user", "content": "w12 w13"},
    ],
]


def _tokenizer(folder: Path, spec: dict):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {t: i for i, t in enumerate(spec["special"])}
    words = ["system", "user", "assistant", "model", "You", "are", "a", "helpful", "assistant."]
    words += [f"w{i}" for i in range(3, 40)]
    for w in words:
        vocab.setdefault(w, len(vocab))
    vocab["<unk>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(spec["special"])
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    cfg = {k: v for k, v in spec["tokenizer_config"].items() if v is not None}
    (folder / "tokenizer_config.json").write_text(
        json.dumps({**cfg, "chat_template": spec["template"]})
    )
    if spec["generation_eos"]:
        (folder / "generation_config.json").write_text(
            json.dumps({"eos_token_id": spec["generation_eos"]})
        )
    return tok


@pytest.mark.parametrize("family", ["qwen2", "llama3", "gemma"])
@pytest.mark.parametrize("conversation", [0, 1])
def test_ids_equal_transformers_apply_chat_template(tmp_path, family, conversation):
    from transformers import PreTrainedTokenizerFast

    spec = TEMPLATES[family]
    tok = _tokenizer(tmp_path / "tok", spec)
    messages = CONVERSATIONS[conversation]
    reference = PreTrainedTokenizerFast(
        tokenizer_file=str(tmp_path / "tok" / "tokenizer.json"),
        **{k: v for k, v in spec["tokenizer_config"].items() if v is not None},
    )
    reference.chat_template = spec["template"]
    expected = reference.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if not isinstance(expected, list):  # transformers 5 may return a BatchEncoding
        expected = expected["input_ids"]
    template = ChatTemplate.from_folder(tmp_path / "tok")
    assert template.render(messages) == reference.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    assert template.encode(tok, messages) == list(expected)
    assert tok.token_to_id(spec["stop_token"]) in template.stop_ids(tok)


def test_template_errors_are_clear(tmp_path):
    spec = TEMPLATES["gemma"]
    _tokenizer(tmp_path / "tok", spec)
    with pytest.raises(UserError, match="System role not supported"):
        ChatTemplate.from_folder(tmp_path / "tok").render([{"role": "system", "content": "x"}])
