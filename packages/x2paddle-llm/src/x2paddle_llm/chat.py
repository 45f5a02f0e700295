"""Chat templates: render the checkpoint's Jinja ``chat_template`` the way transformers does.

The template comes from ``chat_template.jinja`` or ``tokenizer_config.json`` (a string, or a
list of named templates where ``default`` is used); it is rendered in a sandboxed Jinja
environment with ``trim_blocks`` / ``lstrip_blocks``, the ``loopcontrols`` extension, a
``tojson`` filter and ``raise_exception`` / ``strftime_now`` globals, with the tokenizer's
special tokens as variables, and the text is encoded without adding special tokens again.
Generation stops on the tokenizer's ``eos_token`` and the checkpoint's ``eos_token_id``s.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ._errors import UserError, read_json_object, read_text

SPECIAL_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "pad_token",
    "sep_token",
    "cls_token",
    "mask_token",
)


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class ChatTemplate:
    def __init__(self, template: str, special: dict[str, str], source: Path, eos_ids: list[int]):
        self.template, self.special, self.source, self.eos_ids = template, special, source, eos_ids

    @classmethod
    def from_folder(cls, folder: str | Path) -> ChatTemplate:
        folder = Path(folder)
        config = folder / "tokenizer_config.json"
        cfg = read_json_object(config, what="tokenizer_config.json") if config.is_file() else {}
        jinja_file = folder / "chat_template.jinja"
        template, source = None, config
        if jinja_file.is_file():
            template, source = read_text(jinja_file, what="chat_template.jinja"), jinja_file
        else:
            value = cfg.get("chat_template")
            if isinstance(value, list):
                named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
                value = named.get("default")
            if isinstance(value, str):
                template = value
        if not template:
            raise UserError(
                "no chat template (chat_template.jinja or tokenizer_config.json chat_template); "
                "drop --chat to encode the prompt as plain text",
                folder,
            )
        special = {k: t for k in SPECIAL_KEYS if (t := _token_text(cfg.get(k))) is not None}
        eos_ids: list[int] = []
        gen = folder / "generation_config.json"
        if gen.is_file():
            value = read_json_object(gen, what="generation_config.json").get("eos_token_id")
            eos_ids = [
                v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int)
            ]
        return cls(template, special, source, eos_ids)

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        from jinja2 import TemplateError
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
        )
        env.filters["tojson"] = (
            lambda x, indent=None, separators=None, sort_keys=False, ensure_ascii=False: json.dumps(
                x,
                indent=indent,
                separators=separators,
                sort_keys=sort_keys,
                ensure_ascii=ensure_ascii,
            )
        )
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            return env.from_string(self.template).render(
                messages=messages, add_generation_prompt=add_generation_prompt, **self.special
            )
        except TemplateError as exc:
            raise UserError(f"chat template failed: {exc}", self.source) from None

    def encode(self, tokenizer, messages: list[dict[str, str]]) -> list[int]:
        return tokenizer.encode(self.render(messages), add_special_tokens=False).ids

    def stop_ids(self, tokenizer) -> list[int]:
        ids = list(self.eos_ids)
        eos = self.special.get("eos_token")
        if eos is not None and tokenizer.token_to_id(eos) is not None:
            ids.append(tokenizer.token_to_id(eos))
        return sorted(set(ids))
