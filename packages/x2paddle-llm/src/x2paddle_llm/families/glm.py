"""GLM-4 (``glm``, e.g. glm-4-9b-chat-hf): fused ``gate_up_proj``, q/k/v bias, interleaved
partial rotary (half the head)."""

from __future__ import annotations

from ..config import DecoderConfig, HFConfig
from . import Family, base_config, partial_rotary, register, split_gate_up


def glm_fields(hf: HFConfig) -> dict:
    fields = base_config(hf, head_dim=hf.int("head_dim", default=128))
    fields.update(
        rotary_dim=partial_rotary(hf, fields["head_dim"], default=0.5),
        rope_interleave=True,
        qkv_bias=hf.bool("attention_bias", True),
    )
    return fields


def normalize(hf: HFConfig) -> DecoderConfig:
    return DecoderConfig(**glm_fields(hf))


def fused(cfg: DecoderConfig, name: str, shape):
    return split_gate_up(cfg, name, shape, "model.layers.{i}.mlp.gate_up_proj")


register(
    Family(
        "glm",
        "GLM-4 (glm-4-9b-hf: fused gate_up, interleaved partial rotary)",
        normalize,
        fused=fused,
    )
)
