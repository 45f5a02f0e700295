"""Command-R (``cohere``): parallel attention and MLP on one LayerNorm without bias,
interleaved rope, logits times ``logit_scale``, tied head."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError
from . import Family, base_config, register


def normalize(hf: HFConfig) -> DecoderConfig:
    if hf.bool("use_qk_norm"):
        raise ConfigError(
            f"{hf.source}: use_qk_norm (per-head LayerNorm) is not supported for cohere"
        )
    bias = hf.bool("attention_bias")
    return DecoderConfig(
        **base_config(
            hf,
            norm_type="layer",
            norm_eps=hf.float("layer_norm_eps", default=1e-5),
            layer_norms=["attn_norm"],
            parallel_block=True,
            rope_interleave=True,
            logits_scale=hf.float("logit_scale", default=1.0),
            tie_word_embeddings=hf.bool("tie_word_embeddings", True),
            qkv_bias=bias,
            o_bias=bias,
        )
    )


register(
    Family(
        "cohere", "Command-R (parallel block, LayerNorm, interleaved rope, logit scale)", normalize
    )
)
