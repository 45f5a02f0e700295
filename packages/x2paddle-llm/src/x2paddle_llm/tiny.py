"""Tiny random checkpoints in the real Hugging Face layout, built with transformers.

No model hub is reachable offline, so ``x2paddle-llm make-tiny DIR`` (and the demo) build a
random model with transformers itself, save it with ``save_pretrained`` next to a small word
tokenizer with a ChatML chat template, and every later command runs on that folder exactly as
on a real checkpoint.  Needs torch and transformers (the ``test`` extra).
"""

from __future__ import annotations

import json
from pathlib import Path

from ._atomic import atomic_dir
from ._errors import UserError

VOCAB = 64
BASE = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
#: what a family's tiny model needs beyond BASE (experts, latent attention sizes ...)
EXTRA = {
    "llama": {},
    "qwen2": {},
    "qwen3": {"head_dim": 16},
    "mistral": {"sliding_window": 8},
    "ernie4_5": {"head_dim": 16},
    "ernie4_5_moe": {
        "moe_num_experts": 4,
        "moe_k": 2,
        "moe_intermediate_size": 32,
        "moe_num_shared_experts": 1,
    },
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen3_moe": {
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "head_dim": 16,
    },
    "deepseek_v3": {
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "first_k_dense_replace": 1,
        "q_lora_rank": 16,
        "kv_lora_rank": 16,
        "qk_nope_head_dim": 8,
        "qk_rope_head_dim": 8,
        "v_head_dim": 8,
        "num_key_value_heads": 4,
        "n_group": 1,
        "topk_group": 1,
    },
    "gemma2": {"head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 8},
    "phi3": {},
    "glm4": {"head_dim": 16},
    "olmo2": {},
    "granite": {},
}
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def save_word_tokenizer(folder: Path) -> None:
    """A whitespace word tokenizer: ``<pad> <s> </s> <|im_start|> <|im_end|>`` then ``w5`` ... ``w63``."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    vocab = {t: i for i, t in enumerate(specials)}
    vocab.update({f"w{i}": i for i in range(len(specials), VOCAB)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(specials)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "bos_token": "<s>",
                "eos_token": "<|im_end|>",
                "pad_token": "<pad>",
                "chat_template": CHATML,
                "tokenizer_class": "PreTrainedTokenizerFast",
            },
            indent=2,
        )
        + "\n"
    )


def make_tiny(
    out_dir: str | Path, family: str = "qwen2", overwrite: bool = False, seed: int = 0
) -> Path:
    if family not in EXTRA:
        raise UserError(f"make-tiny knows {sorted(EXTRA)}, not {family!r}")
    try:
        import torch
        import transformers
    except ImportError:
        raise UserError(
            "make-tiny builds the model with transformers: pip install torch transformers "
            "(or the package's test extra)"
        ) from None
    config = transformers.AutoConfig.for_model(family, **{**BASE, **EXTRA[family]})
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(str(tmp))
        save_word_tokenizer(tmp)
    return Path(out_dir)
