"""Build a `tokenizers` tokenizer from the original repo's ``qwen.tiktoken`` (+ GOT specials).

tiktoken stores ranks only; BPE merges are recovered the standard way: each multi-byte token
is re-merged with the ranks below its own, which must leave exactly two parts (its merge).
Special tokens follow the ranks in Qwen-1 / GOT order: ``<|endoftext|>``, ``<|im_start|>``,
``<|im_end|>``, ``<|extra_0|>``…, ``<ref>``, ``</ref>``, ``<box>``, ``</box>``, ``<quad>``,
``</quad>``, ``<img>``, ``</img>``, ``<imgpad>``.
"""

from __future__ import annotations

import base64
from pathlib import Path

GOT_TAIL = (
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
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what ByteLevel uses)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def read_ranks(path) -> dict[bytes, int]:
    ranks = {}
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: not a tiktoken rank line") from exc
    return ranks


def _merge_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    parts = [bytes([b]) for b in token]
    while True:
        best, best_rank = None, None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best_rank is None or r < best_rank):
                best, best_rank = i, r
        if best is None:
            return parts
        parts[best : best + 2] = [parts[best] + parts[best + 1]]


def tokenizer_from_tiktoken(path, num_extras: int = 205):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    ranks = read_ranks(path)
    enc = bytes_to_unicode()

    def s(b: bytes) -> str:
        return "".join(enc[x] for x in b)

    vocab = {s(b): r for b, r in ranks.items()}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue
        parts = _merge_parts(ranks, token, rank)
        if len(parts) != 2:
            raise ValueError(
                f"{path}: token of rank {rank} is not a merge of two lower-rank tokens"
            )
        merges.append((s(parts[0]), s(parts[1])))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    specials += [f"<|extra_{i}|>" for i in range(num_extras)] + list(GOT_TAIL)
    if tok.get_vocab_size() != max(ranks.values()) + 1:
        raise ValueError(f"{path}: ranks are not contiguous")
    tok.add_special_tokens(specials)
    return tok


def num_extras_for(path, image_token_id: int | None) -> int:
    """The number of <|extra_i|> tokens that puts <imgpad> at the config's id (205 for GOT)."""
    if image_token_id is None:
        return 205
    n = image_token_id - len(read_ranks(Path(path))) - 3 - (len(GOT_TAIL) - 1)
    if n < 0:
        raise ValueError(f"{path}: image token id {image_token_id} is inside the BPE ranks")
    return n
