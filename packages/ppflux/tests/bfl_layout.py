"""Test helper: write a diffusers Flux state dict in the original BFL / XLabs single-file layout.

Written independently of ppflux.convert (the inverse direction), so a round trip through the
converter checks both. Key names follow the BFL ``flux`` repository and XLabs' ControlNet.
"""

from __future__ import annotations

import torch


def to_bfl(sd: dict, controlnet: bool = False) -> dict:
    sd = dict(sd)
    out = {}

    def take(dst, src):
        for suffix in ("weight", "bias"):
            if f"{src}.{suffix}" in sd:
                out[f"{dst}.{suffix}"] = sd.pop(f"{src}.{suffix}")

    def cat(dst, srcs):
        for suffix in ("weight", "bias"):
            out[f"{dst}.{suffix}"] = torch.cat([sd.pop(f"{s}.{suffix}") for s in srcs])

    take("time_in.in_layer", "time_text_embed.timestep_embedder.linear_1")
    take("time_in.out_layer", "time_text_embed.timestep_embedder.linear_2")
    take("vector_in.in_layer", "time_text_embed.text_embedder.linear_1")
    take("vector_in.out_layer", "time_text_embed.text_embedder.linear_2")
    take("guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1")
    take("guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2")
    take("txt_in", "context_embedder")
    take("img_in", "x_embedder")
    i = 0
    while f"transformer_blocks.{i}.norm1.linear.weight" in sd:
        o, s = f"transformer_blocks.{i}", f"double_blocks.{i}"
        take(f"{s}.img_mod.lin", f"{o}.norm1.linear")
        take(f"{s}.txt_mod.lin", f"{o}.norm1_context.linear")
        cat(f"{s}.img_attn.qkv", [f"{o}.attn.to_q", f"{o}.attn.to_k", f"{o}.attn.to_v"])
        cat(
            f"{s}.txt_attn.qkv",
            [f"{o}.attn.add_q_proj", f"{o}.attn.add_k_proj", f"{o}.attn.add_v_proj"],
        )
        for a, b in (
            ("img_attn.norm.query_norm", "norm_q"),
            ("img_attn.norm.key_norm", "norm_k"),
            ("txt_attn.norm.query_norm", "norm_added_q"),
            ("txt_attn.norm.key_norm", "norm_added_k"),
        ):
            out[f"{s}.{a}.scale"] = sd.pop(f"{o}.attn.{b}.weight")
        take(f"{s}.img_attn.proj", f"{o}.attn.to_out.0")
        take(f"{s}.txt_attn.proj", f"{o}.attn.to_add_out")
        take(f"{s}.img_mlp.0", f"{o}.ff.net.0.proj")
        take(f"{s}.img_mlp.2", f"{o}.ff.net.2")
        take(f"{s}.txt_mlp.0", f"{o}.ff_context.net.0.proj")
        take(f"{s}.txt_mlp.2", f"{o}.ff_context.net.2")
        i += 1
    i = 0
    while f"single_transformer_blocks.{i}.norm.linear.weight" in sd:
        o, s = f"single_transformer_blocks.{i}", f"single_blocks.{i}"
        take(f"{s}.modulation.lin", f"{o}.norm.linear")
        cat(f"{s}.linear1", [f"{o}.attn.to_q", f"{o}.attn.to_k", f"{o}.attn.to_v", f"{o}.proj_mlp"])
        out[f"{s}.norm.query_norm.scale"] = sd.pop(f"{o}.attn.norm_q.weight")
        out[f"{s}.norm.key_norm.scale"] = sd.pop(f"{o}.attn.norm_k.weight")
        take(f"{s}.linear2", f"{o}.proj_out")
        i += 1
    if controlnet:
        for key in [k for k in sd if k.startswith("controlnet_blocks.")]:
            out[key] = sd.pop(key)
        take("pos_embed_input", "controlnet_x_embedder")
        convs = ["conv_in"] + [f"blocks.{j}" for j in range(6)] + ["conv_out"]
        for j, name in enumerate(convs):
            take(f"input_hint_block.{2 * j}", f"input_hint_block.{name}")
    else:
        for suffix in ("weight", "bias"):
            scale, shift = sd.pop(f"norm_out.linear.{suffix}").chunk(2, dim=0)
            out[f"final_layer.adaLN_modulation.1.{suffix}"] = torch.cat([shift, scale])
        take("final_layer.linear", "proj_out")
    assert not sd, f"unmapped keys: {sorted(sd)[:5]}"
    return {
        f"model.diffusion_model.{k}" if not controlnet else k: v.contiguous()
        for k, v in out.items()
    }
