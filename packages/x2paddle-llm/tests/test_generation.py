"""Logits processors against transformers' own processors; sampling behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from x2paddle_llm.generation import (
    GenerationConfig,
    apply_repetition_penalty,
    apply_temperature,
    apply_top_k,
    apply_top_p,
    generate,
    left_pad,
)
from x2paddle_llm.modeling_decoder import DecoderForCausalLM


@pytest.fixture
def logits_and_ids():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((3, 50)) * 3).astype(np.float32)
    ids = rng.integers(0, 50, (3, 12)).astype(np.int64)
    return logits, ids


def _same(ours, theirs):
    theirs = theirs.numpy()
    assert np.array_equal(np.isinf(ours), np.isinf(theirs))
    finite = ~np.isinf(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=0, atol=1e-6)


@pytest.mark.parametrize("penalty", [1.3, 0.7])
def test_repetition_penalty_matches(logits_and_ids, penalty):
    logits, ids = logits_and_ids
    ref = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor(ids), torch.tensor(logits))
    _same(apply_repetition_penalty(logits, ids, penalty), ref)


def test_temperature_top_k_top_p_match(logits_and_ids):
    logits, ids = logits_and_ids
    _same(
        apply_temperature(logits, 0.7),
        TemperatureLogitsWarper(0.7)(torch.tensor(ids), torch.tensor(logits)),
    )
    for k in (1, 5, 20):
        _same(apply_top_k(logits, k), TopKLogitsWarper(k)(torch.tensor(ids), torch.tensor(logits)))
    for p in (0.1, 0.5, 0.9):
        _same(apply_top_p(logits, p), TopPLogitsWarper(p)(torch.tensor(ids), torch.tensor(logits)))


def test_left_pad():
    ids, mask = left_pad([[5, 6], [7, 8, 9]], 0)
    assert ids.tolist() == [[0, 5, 6], [7, 8, 9]] and mask.tolist() == [[0, 1, 1], [1, 1, 1]]
    with pytest.raises(ValueError):
        left_pad([[1], []], 0)


def test_sampling_is_seeded_and_top_k_1_is_greedy(tiny_llama):
    model = DecoderForCausalLM.from_pretrained(tiny_llama[1])
    prompts = [[5, 6, 7], [8, 9, 10, 11, 12]]
    kw = dict(max_new_tokens=10, eos_token_id=[], pad_token_id=0)
    greedy = generate(model, prompts, **kw)
    assert generate(model, prompts, do_sample=True, top_k=1, seed=3, **kw) == greedy
    a = generate(model, prompts, do_sample=True, temperature=1.5, top_p=0.9, seed=7, **kw)
    b = generate(model, prompts, do_sample=True, temperature=1.5, top_p=0.9, seed=7, **kw)
    c = generate(model, prompts, do_sample=True, temperature=1.5, top_p=0.9, seed=8, **kw)
    assert a == b and a != c


def test_sampled_tokens_respect_top_k(tiny_llama):
    """Every sampled token is among the top-k of the dygraph logits at its step."""
    import paddle

    model = DecoderForCausalLM.from_pretrained(tiny_llama[1])
    prompt = [5, 6, 7, 8]
    out = generate(
        model,
        [prompt],
        do_sample=True,
        top_k=3,
        temperature=2.0,
        seed=1,
        max_new_tokens=8,
        eos_token_id=[],
        pad_token_id=0,
    )[0]
    seq = list(prompt)
    for tok in out:
        with paddle.no_grad():
            logits = model(paddle.to_tensor([seq]))[0].numpy()[0, -1]
        assert tok in np.argsort(logits)[-3:]
        seq.append(tok)


def test_generation_config_validation():
    with pytest.raises(ValueError):
        GenerationConfig(max_new_tokens=0)
    with pytest.raises(ValueError):
        GenerationConfig(do_sample=True, temperature=0)
    with pytest.raises(ValueError):
        GenerationConfig(top_p=0)
