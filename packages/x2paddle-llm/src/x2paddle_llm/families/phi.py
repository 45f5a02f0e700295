"""Phi-1 / 1.5 / 2: parallel attention and MLP on one LayerNorm (with bias), partial rotary,
plain GELU MLP (``fc1``/``fc2``), biases everywhere including the head."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError
from . import LLAMA_RENAMES, Family, base_config, partial_rotary, register


def normalize(hf: HFConfig) -> DecoderConfig:
    if hf.bool("qk_layernorm"):
        raise ConfigError(f"{hf.source}: qk_layernorm is not supported for phi")
    fields = base_config(hf, hidden_act=hf.act("hidden_act", default="gelu_new"))
    return DecoderConfig(
        **{
            **fields,
            "rotary_dim": partial_rotary(hf, fields["head_dim"], default=0.5),
            "norm_type": "layer",
            "norm_bias": True,
            "norm_eps": hf.float("layer_norm_eps", default=1e-5),
            "layer_norms": ["attn_norm"],
            "parallel_block": True,
            "qkv_bias": True,
            "o_bias": True,
            "mlp_gated": False,
            "mlp_bias": True,
            "lm_head_bias": True,
        }
    )


register(
    Family(
        "phi",
        "Phi-1 / 1.5 / 2 (parallel block, partial rotary, biases)",
        normalize,
        renames={
            **LLAMA_RENAMES,
            "o": "dense",
            "up": "fc1",
            "down": "fc2",
            "norm": "model.final_layernorm",
        },
    )
)
