"""Compare a converted folder with the original checkpoint run by transformers (torch).

Needs ``torch`` and ``transformers`` (the ``test`` extra); reports the max absolute logits
difference over real (non-padding) positions of a left-padded batch and whether greedy
tokens agree row by row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .generation import left_pad


def default_prompts(vocab_size: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab_size, n).tolist() for n in (7, 13)]


def verify(
    hf_dir: str | Path,
    out_dir: str | Path,
    prompts: list[list[int]] | None = None,
    max_new_tokens: int = 32,
    atol: float = 1e-4,
) -> dict[str, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        raise ImportError(
            "verify needs torch and transformers: pip install 'x2paddle-llm[test]'"
        ) from exc
    paddle_mod = __import__("x2paddle_llm._paddle", fromlist=["require_paddle"]).require_paddle()
    from .generation import generate
    from .modeling_decoder import DecoderForCausalLM

    ours = DecoderForCausalLM.from_pretrained(out_dir, dtype="float32")
    ref = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    cfg = ours.config
    prompts = prompts or default_prompts(cfg.vocab_size)
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else 0
    ids, mask = left_pad(prompts, pad)
    with torch.no_grad():
        positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)  # generation's, with left padding
        ref_logits = (
            ref(
                input_ids=torch.tensor(ids),
                attention_mask=torch.tensor(mask),
                position_ids=torch.tensor(positions),
            )
            .logits.float()
            .numpy()
        )
    with paddle_mod.no_grad():
        our_logits, _ = ours(paddle_mod.to_tensor(ids), attention_mask=paddle_mod.to_tensor(mask))
    diff = np.abs(our_logits.numpy() - ref_logits)[mask.astype(bool)]
    eos = list(cfg.eos_token_id)
    with torch.no_grad():
        hf_out = ref.generate(
            torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos or None,
            pad_token_id=pad,
        )
    hf_rows = []
    for row in hf_out[:, ids.shape[1] :].tolist():
        out = []
        for tok in row:
            out.append(tok)
            if tok in eos:
                break
        hf_rows.append(out)
    our_rows = generate(
        ours, prompts, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad
    )
    agree = [a == b for a, b in zip(our_rows, hf_rows)]
    max_diff = float(diff.max())
    return {
        "model_type": cfg.model_type,
        "max_abs_logits_diff": max_diff,
        "atol": atol,
        "logits_ok": max_diff <= atol,
        "greedy_rows_identical": agree,
        "greedy_tokens_agree": sum(
            sum(x == y for x, y in zip(a, b)) for a, b in zip(our_rows, hf_rows)
        ),
        "greedy_tokens_total": sum(max(len(a), len(b)) for a, b in zip(our_rows, hf_rows)),
        "ok": max_diff <= atol and all(agree),
        "ours": our_rows,
        "transformers": hf_rows,
    }
