"""StableLM 2 / StableLM-3B: LayerNorm with bias, partial rotary (a quarter), optional q/k/v
bias and parallel residual."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from ..errors import ConfigError
from . import Family, base_config, partial_rotary, register


def normalize(hf: HFConfig) -> DecoderConfig:
    if hf.bool("qk_layernorm"):
        raise ConfigError(
            f"{hf.source}: qk_layernorm (per-head LayerNorm) is not supported for stablelm"
        )
    fields = base_config(hf)
    parallel = hf.bool("use_parallel_residual")
    return DecoderConfig(
        **{
            **fields,
            "rotary_dim": partial_rotary(hf, fields["head_dim"], default=0.25),
            "norm_type": "layer",
            "norm_bias": True,
            "norm_eps": hf.float("layer_norm_eps", default=1e-5),
            "qkv_bias": hf.bool("use_qkv_bias"),
            "parallel_block": parallel,
            "layer_norms": ["attn_norm"] if parallel else ["attn_norm", "mlp_norm"],
        }
    )


register(Family("stablelm", "StableLM (LayerNorm with bias, partial rotary)", normalize))
