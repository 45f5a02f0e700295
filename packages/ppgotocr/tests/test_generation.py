"""Stop rules, max_new_tokens and stop strings of the greedy loop, on a scripted model."""

from __future__ import annotations

import numpy as np
import paddle

from ppgotocr.generation import GenerationConfig, _NGramBan, greedy_generate

V, EOS, IM_END = 10, 8, 9


class Scripted:
    """Emits ``script[step]`` for every row (logit 1 there, 0 elsewhere)."""

    def __init__(self, script):
        self.script, self.step = script, 0

    def __call__(
        self,
        ids,
        image_features=None,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        logits_to_keep=0,
    ):
        b = ids.shape[0]
        logits = np.zeros((b, 1, V), np.float32)
        logits[:, 0, self.script[min(self.step, len(self.script) - 1)]] = 1.0
        self.step += 1
        return paddle.to_tensor(logits), None


def _gen(**kw):
    return GenerationConfig(eos_token_ids=[EOS], stop_token_ids_after_first=[IM_END], **kw)


def test_im_end_first_token_does_not_stop():
    out = greedy_generate(Scripted([IM_END, 3, IM_END, 4]), [[1, 2]], gen=_gen(max_new_tokens=10))
    assert out == [[IM_END, 3, IM_END]]


def test_eos_stops_immediately():
    assert greedy_generate(Scripted([EOS, 3]), [[1]], gen=_gen(max_new_tokens=10)) == [[EOS]]


def test_max_new_tokens():
    assert greedy_generate(Scripted([3]), [[1]], gen=_gen(max_new_tokens=5)) == [[3] * 5]


def test_stop_strings():
    class Tok:
        def decode(self, ids):
            return "".join("ab"[i % 2] for i in ids)

    out = greedy_generate(
        Scripted([0, 1, 1, 0, 0]),
        [[5]],
        gen=_gen(max_new_tokens=10, stop_strings=["bb"]),
        tokenizer=Tok(),
    )
    assert out == [[0, 1, 1]]


def test_ngram_ban_matches_transformers_processor():
    import torch
    from transformers import NoRepeatNGramLogitsProcessor

    rng = np.random.default_rng(0)
    for n in (2, 3, 4):
        seq = rng.integers(0, 5, 40).tolist()
        proc = NoRepeatNGramLogitsProcessor(n)
        ban = _NGramBan(n, seq[:3])
        for t in range(3, len(seq)):
            scores = proc(torch.tensor([seq[:t]]), torch.zeros(1, 5))
            ref = set(np.nonzero(torch.isinf(scores[0]).numpy())[0].tolist())
            assert ban.banned() == ref
            ban.push(seq[t])
