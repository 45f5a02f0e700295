"""Parity with transformers (torch, fp32 CPU) on tiny random models of every architecture.

Tolerance: max |logits diff| <= 1e-5 fp32 (observed ~1e-6); greedy tokens must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import VARIANTS, build_hf_model, random_prompts

from x2paddle_llm.convert import convert
from x2paddle_llm.generation import generate, left_pad
from x2paddle_llm.modeling_decoder import DecoderForCausalLM

ATOL = 1e-5
NEW_TOKENS = 32


def _hf_generate(model, ids, mask):
    model.generation_config.eos_token_id = None  # run all 32 steps
    with torch.no_grad():
        out = model.generate(
            torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            pad_token_id=0,
        )
    return out[:, ids.shape[1] :].tolist()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_logits_and_greedy_match_transformers(tmp_path, variant):
    import paddle

    ref = build_hf_model(tmp_path / "hf", variant)
    convert(tmp_path / "hf", tmp_path / "pd", progress=False)
    ours = DecoderForCausalLM.from_pretrained(tmp_path / "pd")

    prompts = random_prompts(seed=1, lengths=(6, 13))
    ids, mask = left_pad(prompts, 0)
    # 1) logits of a left-padded batch, real positions only
    positions = np.clip(
        np.cumsum(mask, axis=1) - 1, 0, None
    )  # what generation uses with left padding
    with torch.no_grad():
        ref_logits = ref(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            position_ids=torch.tensor(positions),
        ).logits.numpy()
    with paddle.no_grad():
        our_logits = ours(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask))[0].numpy()
    diff = np.abs(our_logits - ref_logits)[mask.astype(bool)].max()
    assert diff <= ATOL, f"{variant}: max |logits diff| {diff:.3e} > {ATOL}"

    # 2) 32 greedy tokens, a single unpadded prompt
    single = prompts[1]
    expected = _hf_generate(ref, np.array([single]), np.ones((1, len(single)), np.int64))[0]
    got = generate(ours, [single], max_new_tokens=NEW_TOKENS, eos_token_id=[], pad_token_id=0)[0]
    assert got == expected, f"{variant}: greedy tokens differ"

    # 3) batch of two prompts of different lengths, left padding, row by row
    expected_rows = _hf_generate(ref, ids, mask)
    got_rows = generate(ours, prompts, max_new_tokens=NEW_TOKENS, eos_token_id=[], pad_token_id=0)
    for row, (a, b) in enumerate(zip(got_rows, expected_rows)):
        assert a == b, f"{variant}: batch row {row} differs"


def test_dynamic_rope_grows_past_max_positions(tmp_path):
    """llama-dynamic has max_position_embeddings=24; 13 + 32 tokens force the NTK base growth."""
    import paddle

    ref = build_hf_model(tmp_path / "hf", "llama-dynamic")
    convert(tmp_path / "hf", tmp_path / "pd", progress=False)
    ours = DecoderForCausalLM.from_pretrained(tmp_path / "pd")
    ids = np.array([random_prompts(seed=3, lengths=(40,))[0]])
    with torch.no_grad():
        ref_logits = ref(input_ids=torch.tensor(ids)).logits.numpy()
    with paddle.no_grad():
        our_logits = ours(paddle.to_tensor(ids))[0].numpy()
    assert np.abs(our_logits - ref_logits).max() <= ATOL


def test_stop_token_matches_transformers(tiny_llama):
    hf_dir, pd_dir, ref = tiny_llama
    ours = DecoderForCausalLM.from_pretrained(pd_dir)
    prompts = random_prompts(seed=5, lengths=(4, 9))
    free = generate(ours, prompts, max_new_tokens=12, eos_token_id=[], pad_token_id=0)
    stop = free[0][4]  # a token row 0 emits at step 5
    ids, mask = left_pad(prompts, 0)
    with torch.no_grad():
        out = ref.generate(
            torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            do_sample=False,
            max_new_tokens=12,
            eos_token_id=stop,
            pad_token_id=0,
        )[:, ids.shape[1] :].tolist()
    got = generate(ours, prompts, max_new_tokens=12, eos_token_id=[stop], pad_token_id=0)
    assert got[0][-1] == stop and len(got[0]) <= 5
    for a, b in zip(got, out):
        # transformers pads finished rows; ours stops the row at its stop token
        assert a == b[: len(a)] and all(t == 0 for t in b[len(a) :])
