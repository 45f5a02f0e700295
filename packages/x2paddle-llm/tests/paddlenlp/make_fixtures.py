"""Write the tiny Hugging Face checkpoints + transformers logits the PaddleNLP session reads.

PaddleNLP 3.0.0b4 cannot share an environment with transformers 5 (tokenizers / hub pins), so
the reference is exchanged through files.  Run in an environment with the ``test`` extra:

    python tests/paddlenlp/make_fixtures.py

Each fixture: ``<name>/`` (config.json in the transformers 5 layout, model.safetensors) and
``<name>/reference.npz`` (input_ids, attention_mask, transformers fp32 logits, 16 greedy tokens).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
import transformers

HERE = Path(__file__).resolve().parent / "fixtures"
BASE = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
FIXTURES = {
    "llama": ("Llama", dict(rope_parameters={"rope_type": "default", "rope_theta": 500000.0})),
    "llama3-rope": (
        "Llama",
        dict(
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 10000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            }
        ),
    ),
    "llama-linear": (
        "Llama",
        dict(rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}),
    ),
    "qwen2": ("Qwen2", dict(rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    "qwen2-tied": ("Qwen2", dict(tie_word_embeddings=True)),
    "mistral": ("Mistral", dict(sliding_window=None, head_dim=8)),
    "mistral-window": ("Mistral", dict(sliding_window=4, head_dim=8)),
}


def main() -> None:
    rng = np.random.default_rng(0)
    ids = np.stack(
        [rng.integers(3, 64, 10), np.r_[np.zeros(4, np.int64), rng.integers(3, 64, 6)]]
    ).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, :4] = 0
    for name, (prefix, extra) in FIXTURES.items():
        out = HERE / name
        shutil.rmtree(out, ignore_errors=True)
        cfg = getattr(transformers, prefix + "Config")(**{**BASE, **extra})
        torch.manual_seed(0)
        model = getattr(transformers, prefix + "ForCausalLM")(cfg).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        model.save_pretrained(str(out))
        for extra_file in ("generation_config.json",):
            (out / extra_file).unlink(missing_ok=True)
        with torch.no_grad():
            logits = model(
                input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)
            ).logits.numpy()
            greedy = model.generate(
                torch.tensor(ids[:1]),
                do_sample=False,
                max_new_tokens=16,
                eos_token_id=None,
                pad_token_id=0,
            )[0, ids.shape[1] :].numpy()
        np.savez(
            out / "reference.npz", input_ids=ids, attention_mask=mask, logits=logits, greedy=greedy
        )
        print(name, sum(p.numel() for p in model.parameters()), "params")


if __name__ == "__main__":
    main()
