"""StarCoder2: LayerNorm with bias, plain GELU MLP (``c_fc``/``c_proj``), biases, sliding window."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import LLAMA_RENAMES, Family, base_config, register, window


def normalize(hf: HFConfig) -> DecoderConfig:
    bias = hf.bool("use_bias", True)
    w = window(hf)
    return DecoderConfig(
        **base_config(
            hf,
            norm_type="layer",
            norm_bias=True,
            norm_eps=hf.float("norm_epsilon", default=1e-5),
            hidden_act=hf.act("hidden_act", default="gelu_pytorch_tanh"),
            mlp_gated=False,
            mlp_bias=bias,
            qkv_bias=bias,
            o_bias=bias,
            sliding_window=w,
            layer_types=["sliding_attention" if w else "full_attention"]
            * hf.int("num_hidden_layers"),
            tie_word_embeddings=hf.bool("tie_word_embeddings", True),
        )
    )


register(
    Family(
        "starcoder2",
        "StarCoder2 (LayerNorm, plain GELU MLP, biases, sliding window)",
        normalize,
        renames={**LLAMA_RENAMES, "up": "c_fc", "down": "c_proj"},
    )
)
