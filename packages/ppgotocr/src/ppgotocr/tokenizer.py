"""GOT tokenizer through `tokenizers`, from a ``tokenizer.json`` with GOT's special tokens."""

from __future__ import annotations

from pathlib import Path

from ._errors import UserError


class TokenizerError(UserError, ValueError):
    """A tokenizer file that is missing, unreadable or without GOT's special tokens."""


SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<quad>",
    "</quad>",
    "<img>",
    "</img>",
    "<imgpad>",
)
REQUIRED = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<imgpad>")


class GotOcrTokenizer:
    """Thin wrapper: encode without adding anything, decode keeping special tokens."""

    def __init__(self, tokenizer, config=None, path: str = "tokenizer.json"):
        self._tok = tokenizer
        self.path = path
        missing = [t for t in REQUIRED if tokenizer.token_to_id(t) is None]
        if missing:
            raise TokenizerError(f"GOT special tokens missing: {', '.join(missing)}", path)
        self.ids = {
            t: tokenizer.token_to_id(t)
            for t in SPECIAL_TOKENS
            if tokenizer.token_to_id(t) is not None
        }
        if config is not None:
            # the model config is the authority on the ids it was trained with
            for attr, tok in (
                ("image_token_id", "<imgpad>"),
                ("img_start_token_id", "<img>"),
                ("img_end_token_id", "</img>"),
            ):
                want = getattr(config, attr, None)
                if want is not None and want != self.ids[tok]:
                    raise TokenizerError(
                        f"{tok} has id {self.ids[tok]} but the model config says {attr}={want}",
                        path,
                    )

    @classmethod
    def from_pretrained(cls, folder, config=None) -> GotOcrTokenizer:
        from tokenizers import Tokenizer

        path = Path(folder) / "tokenizer.json"
        tiktoken = Path(folder) / "qwen.tiktoken"
        if not path.is_file() and tiktoken.is_file():  # the original stepfun repo
            from .tiktoken_file import num_extras_for, tokenizer_from_tiktoken

            try:
                n = num_extras_for(tiktoken, getattr(config, "image_token_id", None))
                tok = tokenizer_from_tiktoken(tiktoken, n)
            except (ValueError, OSError) as exc:
                raise TokenizerError(f"not a usable tiktoken file ({exc})", tiktoken) from None
            return cls(tok, config, str(tiktoken))
        if not path.is_file():
            raise TokenizerError(
                "missing (GOT needs tokenizer.json or qwen.tiktoken with its special tokens)", path
            )
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises its own exception type
            raise TokenizerError(f"not a usable tokenizer.json ({exc})", path) from None
        return cls(tok, config, str(path))

    @property
    def im_end_id(self) -> int:
        return self.ids["<|im_end|>"]

    @property
    def eos_id(self) -> int:
        return self.ids["<|endoftext|>"]

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [list(e.ids) for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)
