"""Tiny random Hugging Face checkpoints built with transformers (the reference) in the tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

VOCAB = 96
BASE = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)

# name -> (model_type, extra config); every family, tied variants, every rope type
#: keys of BASE a family's config does not take
BASE_DROP: dict[str, tuple[str, ...]] = {
    "gpt_neox": ("num_key_value_heads",),
    "gpt2": (
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "max_position_embeddings",
    ),
}
VARIANTS = {
    "llama": ("llama", dict(rope_parameters={"rope_type": "default", "rope_theta": 500000.0})),
    "llama-tied": ("llama", dict(tie_word_embeddings=True, attention_bias=True, mlp_bias=True)),
    "llama3-rope": (
        "llama",
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
        "llama",
        dict(rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}),
    ),
    "llama-dynamic": (
        "llama",
        dict(
            max_position_embeddings=24,
            rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0},
        ),
    ),
    "llama-yarn": (
        "llama",
        dict(
            rope_parameters={
                "rope_type": "yarn",
                "rope_theta": 10000.0,
                "factor": 4.0,
                "original_max_position_embeddings": 32,
            }
        ),
    ),
    "mistral": ("mistral", dict(sliding_window=6, head_dim=16)),
    "qwen2": ("qwen2", dict(rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    "qwen2-tied": ("qwen2", dict(tie_word_embeddings=True)),
    "qwen2-window": ("qwen2", dict(use_sliding_window=True, sliding_window=5, max_window_layers=1)),
    "qwen3": ("qwen3", dict(head_dim=16)),
    "qwen3-tied": ("qwen3", dict(head_dim=24, tie_word_embeddings=True)),
    "qwen2-yarn-orig": (
        "qwen2",
        dict(
            max_position_embeddings=256,
            original_max_position_embeddings=32,
            rope_parameters={
                "rope_type": "yarn",
                "rope_theta": 10000.0,
                "factor": 4.0,
                "original_max_position_embeddings": 128,
            },
        ),
    ),
    "ernie4_5": ("ernie4_5", dict(head_dim=16, use_bias=True, tie_word_embeddings=False)),
    "ernie4_5-tied": ("ernie4_5", dict(head_dim=16, tie_word_embeddings=True)),
    "ernie4_5_moe": (
        "ernie4_5_moe",
        dict(
            moe_num_experts=4,
            moe_k=2,
            moe_intermediate_size=32,
            moe_num_shared_experts=1,
            moe_layer_start_index=1,
        ),
    ),
    "mixtral": ("mixtral", dict(num_local_experts=4, num_experts_per_tok=2, sliding_window=6)),
    "qwen2_moe": (
        "qwen2_moe",
        dict(
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            shared_expert_intermediate_size=48,
            mlp_only_layers=[0],
        ),
    ),
    "qwen3_moe": (
        "qwen3_moe",
        dict(
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            head_dim=16,
            norm_topk_prob=True,
        ),
    ),
    "deepseek_v2": (
        "deepseek_v2",
        dict(
            n_routed_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            first_k_dense_replace=1,
            q_lora_rank=16,
            kv_lora_rank=16,
            qk_nope_head_dim=8,
            qk_rope_head_dim=8,
            v_head_dim=12,
            n_shared_experts=1,
            num_key_value_heads=4,
            n_group=2,
            topk_group=1,
            topk_method="group_limited_greedy",
            routed_scaling_factor=1.5,
        ),
    ),
    "deepseek_v2-lite": (
        "deepseek_v2",
        dict(
            n_routed_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            first_k_dense_replace=1,
            q_lora_rank=None,
            kv_lora_rank=16,
            qk_nope_head_dim=8,
            qk_rope_head_dim=8,
            v_head_dim=8,
            n_shared_experts=2,
            num_key_value_heads=4,
        ),
    ),
    "deepseek_v3": (
        "deepseek_v3",
        dict(
            n_routed_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            first_k_dense_replace=1,
            q_lora_rank=16,
            kv_lora_rank=16,
            qk_nope_head_dim=8,
            qk_rope_head_dim=8,
            v_head_dim=12,
            n_shared_experts=1,
            num_key_value_heads=4,
            n_group=4,
            topk_group=2,
        ),
    ),
    "deepseek_v3-yarn": (
        "deepseek_v3",
        dict(
            n_routed_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            first_k_dense_replace=1,
            q_lora_rank=16,
            kv_lora_rank=16,
            qk_nope_head_dim=8,
            qk_rope_head_dim=8,
            v_head_dim=8,
            num_key_value_heads=4,
            rope_interleave=False,
            n_group=1,
            topk_group=1,
            rope_parameters={
                "rope_type": "yarn",
                "rope_theta": 10000.0,
                "factor": 4.0,
                "original_max_position_embeddings": 32,
                "mscale": 1.0,
                "mscale_all_dim": 1.0,
            },
        ),
    ),
    "gemma": ("gemma", dict(head_dim=16)),
    "gemma2": (
        "gemma2",
        dict(
            head_dim=16,
            query_pre_attn_scalar=24,
            sliding_window=5,
            attn_logit_softcapping=5.0,
            final_logit_softcapping=3.0,
            num_hidden_layers=3,
        ),
    ),
    "gemma3_text": (
        "gemma3_text",
        dict(
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=5,
            layer_types=["sliding_attention", "full_attention"],
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
                "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e6},
            },
        ),
    ),
    "phi3": ("phi3", dict(sliding_window=6)),
    "phi3-longrope": (
        "phi3",
        dict(
            max_position_embeddings=64,
            original_max_position_embeddings=16,
            partial_rotary_factor=0.5,
            rope_parameters={
                "rope_type": "longrope",
                "rope_theta": 10000.0,
                "short_factor": [1.0, 1.1, 1.2, 1.3],
                "long_factor": [1.5, 2.0, 3.0, 4.0],
            },
        ),
    ),
    "phi": ("phi", dict()),
    "glm": ("glm", dict(head_dim=16)),
    "glm4": ("glm4", dict(head_dim=16)),
    "olmo": ("olmo", dict()),
    "olmo2": ("olmo2", dict()),
    "granite": (
        "granite",
        dict(
            embedding_multiplier=3.0,
            residual_multiplier=0.5,
            attention_multiplier=0.2,
            logits_scaling=4.0,
        ),
    ),
    "minicpm3": (
        "minicpm3",
        dict(
            q_lora_rank=16,
            kv_lora_rank=16,
            qk_nope_head_dim=8,
            qk_rope_head_dim=8,
            v_head_dim=12,
            num_key_value_heads=4,
            scale_emb=3.0,
            scale_depth=1.4,
            dim_model_base=16,
        ),
    ),
    "cohere": ("cohere", dict(logit_scale=0.5)),
    "stablelm": ("stablelm", dict(use_qkv_bias=True)),
    "stablelm-parallel": ("stablelm", dict(use_parallel_residual=True)),
    "starcoder2": ("starcoder2", dict(sliding_window=6)),
    "gpt_neox": ("gpt_neox", dict(num_key_value_heads=4)),
    "helium": ("helium", dict(head_dim=16)),
    "seed_oss": ("seed_oss", dict(head_dim=16, attention_out_bias=True)),
    "arcee": ("arcee", dict()),
    "glm4_moe": (
        "glm4_moe",
        dict(
            n_routed_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            first_k_dense_replace=1,
            n_group=2,
            topk_group=1,
            use_qk_norm=True,
            routed_scaling_factor=2.0,
            head_dim=16,
        ),
    ),
    "dots1": (
        "dots1",
        dict(
            n_routed_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            first_k_dense_replace=1,
            n_shared_experts=1,
            head_dim=16,
            sliding_window=None,
        ),
    ),
    "gpt2": ("gpt2", dict(n_embd=64, n_layer=2, n_head=4, n_positions=128, n_inner=128)),
    "falcon": (
        "falcon",
        dict(num_key_value_heads=None, multi_query=True, parallel_attn=True, bias=False),
    ),
    "falcon-new": (
        "falcon",
        dict(
            new_decoder_architecture=True,
            num_kv_heads=2,
            num_key_value_heads=None,
            bias=True,
            ffn_hidden_size=96,
        ),
    ),
    "falcon-seq": (
        "falcon",
        dict(multi_query=False, parallel_attn=False, num_key_value_heads=None, bias=True),
    ),
    "gpt_oss": (
        "gpt_oss",
        dict(
            num_local_experts=4,
            num_experts_per_tok=2,
            head_dim=16,
            sliding_window=5,
            layer_types=["sliding_attention", "full_attention"],
            swiglu_limit=0.3,
            rope_parameters={
                "rope_type": "yarn",
                "factor": 4.0,
                "beta_fast": 32.0,
                "beta_slow": 1.0,
                "truncate": False,
                "rope_theta": 10000.0,
                "original_max_position_embeddings": 32,
            },
        ),
    ),
    "olmoe": ("olmoe", dict(num_experts=4, num_experts_per_tok=2)),
}


def build_hf_model(folder: Path, variant: str, seed: int = 0, **overrides):
    """Save a tiny random transformers model of ``variant`` (safetensors) and a tokenizer."""
    import torch
    import transformers

    model_type, extra = VARIANTS[variant]
    base = {k: v for k, v in BASE.items() if k not in BASE_DROP.get(model_type, ())}
    config = transformers.AutoConfig.for_model(model_type, **{**base, **extra, **overrides})
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    state = model.state_dict()
    with torch.no_grad():  # norms start at 1 and biases at 0: perturb so they are tested too
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for name, b in model.named_buffers():  # e.g. DeepSeek's e_score_correction_bias
            if name in state and b.is_floating_point():
                b.add_(torch.randn_like(b) * 0.05)
    model.save_pretrained(str(folder))
    save_tokenizer(folder)
    return model


def save_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2}
    for i in range(3, VOCAB):
        vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"pad_token": "<pad>", "eos_token": "</s>"})
    )


def random_prompts(seed: int = 0, lengths=(5, 11)) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(3, VOCAB, n).tolist() for n in lengths]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """(hf_dir, out_dir, torch model) for a converted tiny Llama shared by several tests."""
    from x2paddle_llm.convert import convert

    root = tmp_path_factory.mktemp("tiny_llama")
    model = build_hf_model(root / "hf", "llama")
    convert(root / "hf", root / "pd", progress=False)
    return root / "hf", root / "pd", model
