"""Greedy decoding with a KV cache, GOT's stop rules and an n-gram ban over prompt + output.

Batches are left padded; pads are masked out of attention, get no rotary position and are
not part of the n-gram history, so every row decodes exactly as it would alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._paddle import require_paddle

paddle = require_paddle()


@dataclass
class GenerationConfig:
    max_new_tokens: int = 4096
    no_repeat_ngram_size: int = 0
    eos_token_ids: list = field(default_factory=list)  # stop on any generated token
    # ids that stop except on the very first generated token (the original's
    # KeywordsStoppingCriteria only records the prompt length on its first call)
    stop_token_ids_after_first: list = field(default_factory=list)
    stop_strings: list = field(default_factory=list)  # checked on the decoded output
    pad_token_id: int = 0


class _NGramBan:
    """transformers' NoRepeatNGramLogitsProcessor semantics, kept incrementally."""

    def __init__(self, n: int, tokens: list[int]):
        self.n, self.tokens, self.table = n, list(tokens), {}
        for i in range(len(self.tokens) - n + 1):
            self._add(i)

    def _add(self, i: int) -> None:
        gram = self.tokens[i : i + self.n]
        self.table.setdefault(tuple(gram[:-1]), set()).add(gram[-1])

    def push(self, token: int) -> None:
        self.tokens.append(token)
        if len(self.tokens) >= self.n:
            self._add(len(self.tokens) - self.n)

    def banned(self) -> set:
        if len(self.tokens) + 1 < self.n:
            return set()
        return self.table.get(tuple(self.tokens[len(self.tokens) - self.n + 1 :]), set())


def greedy_generate(
    model,
    prompts: list[list[int]],
    image_features=None,
    gen: GenerationConfig | None = None,
    tokenizer=None,
    return_scores: bool = False,
):
    """Decode each prompt greedily. ``image_features``: [total_views, T, D] in row order.

    Returns the list of generated id lists (stop token included when one fired) and, with
    ``return_scores``, the per-step float32 logits of each row.
    """
    gen = gen or GenerationConfig()
    b = len(prompts)
    lens = [len(p) for p in prompts]
    width = max(lens)
    ids = np.full((b, width), gen.pad_token_id, dtype=np.int64)
    mask = np.zeros((b, width), dtype=np.int64)
    for r, p in enumerate(prompts):
        ids[r, width - len(p) :] = p
        mask[r, width - len(p) :] = 1
    bans = [
        (_NGramBan(gen.no_repeat_ngram_size, p) if gen.no_repeat_ngram_size > 0 else None)
        for p in prompts
    ]
    out = [[] for _ in range(b)]
    scores = [[] for _ in range(b)]
    done = np.zeros(b, dtype=bool)
    with paddle.no_grad():
        logits, past = model(
            paddle.to_tensor(ids),
            image_features=image_features,
            attention_mask=paddle.to_tensor(mask),
            logits_to_keep=1,
        )
        for step in range(gen.max_new_tokens):
            step_logits = logits[:, -1].numpy()
            nxt = np.empty(b, dtype=np.int64)
            for r in range(b):
                row = step_logits[r]
                if return_scores and not done[r]:
                    scores[r].append(row.copy())
                if done[r]:
                    nxt[r] = gen.pad_token_id
                    continue
                if bans[r] is not None:
                    banned = bans[r].banned()
                    if banned:
                        row = row.copy()
                        row[list(banned)] = -np.inf
                tok = int(np.argmax(row))
                nxt[r] = tok
                out[r].append(tok)
                if bans[r] is not None:
                    bans[r].push(tok)
                if tok in gen.eos_token_ids or (step > 0 and tok in gen.stop_token_ids_after_first):
                    done[r] = True
                elif gen.stop_strings and tokenizer is not None:
                    text = tokenizer.decode(out[r])
                    if any(s in text for s in gen.stop_strings):
                        done[r] = True
            if done.all() or step == gen.max_new_tokens - 1:
                break
            mask = np.concatenate([mask, np.ones((b, 1), np.int64)], axis=1)
            positions = (mask.sum(-1, keepdims=True) - 1).astype(np.int64)
            logits, past = model(
                paddle.to_tensor(nxt[:, None]),
                attention_mask=paddle.to_tensor(mask),
                position_ids=paddle.to_tensor(positions),
                past_key_values=past,
            )
    return (out, scores) if return_scores else out
