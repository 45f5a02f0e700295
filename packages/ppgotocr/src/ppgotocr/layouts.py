"""Names and config files of the three checkpoint layouts (no Paddle).

* ``ppgotocr``: Paddle names, ``[in, out]`` Linear weights.
* ``transformers``: ``GotOcr2ForConditionalGeneration`` (in-memory ``model.*`` names; the
  on-disk legacy ``language_model.model.*`` names are read too).
* ``original``: stepfun-ai/GOT-OCR2_0 (``model.vision_tower_high.*``, ``net_2``/``net_3``,
  ``mm_projector_vary``, a copied ``lm_head.weight``).
"""

from __future__ import annotations

import re

from ._errors import UserError


class LayoutError(UserError, ValueError):
    """A tensor name that does not belong to the layout being read."""

    def __init__(self, problem: str, path=None):
        super().__init__(problem, path)


# --------------------------------------------------------------------------- name maps
_ORIG_NECK = {"0": "conv1", "1": "layer_norm1", "2": "conv2", "3": "layer_norm2"}


def original_to_paddle_name(key: str) -> str | None:
    """None for ``lm_head.weight`` (handled separately)."""
    if key == "lm_head.weight":
        return None
    m = re.match(r"model\.vision_tower_high\.(.*)$", key)
    if m:
        rest = m.group(1)
        if rest.startswith("net_2."):
            return "multi_modal_projector.conv_upsampler1." + rest[len("net_2.") :]
        if rest.startswith("net_3."):
            return "multi_modal_projector.conv_upsampler2." + rest[len("net_3.") :]
        rest = rest.replace("patch_embed.proj.", "patch_embed.projection.")
        rest = re.sub(r"^blocks\.(\d+)\.norm([12])\.", r"layers.\1.layer_norm\2.", rest)
        rest = re.sub(r"^blocks\.", "layers.", rest)
        rest = re.sub(r"^neck\.([0-3])\.", lambda g: f"neck.{_ORIG_NECK[g.group(1)]}.", rest)
        return "vision_tower." + rest
    if key.startswith("model.mm_projector_vary."):
        return (
            "multi_modal_projector.multimodal_projector." + key[len("model.mm_projector_vary.") :]
        )
    if key.startswith("model."):
        return "language_model." + key[len("model.") :]
    raise LayoutError(f"unexpected tensor in an original GOT checkpoint: {key}")


def paddle_to_original_name(name: str) -> str:
    if name == "lm_head.weight":
        return name
    if name.startswith("multi_modal_projector.conv_upsampler1."):
        return "model.vision_tower_high.net_2." + name.split(".", 2)[2]
    if name.startswith("multi_modal_projector.conv_upsampler2."):
        return "model.vision_tower_high.net_3." + name.split(".", 2)[2]
    if name.startswith("multi_modal_projector.multimodal_projector."):
        return "model.mm_projector_vary." + name.split(".", 2)[2]
    if name.startswith("vision_tower."):
        rest = name[len("vision_tower.") :]
        rest = rest.replace("patch_embed.projection.", "patch_embed.proj.")
        rest = re.sub(r"^layers\.(\d+)\.layer_norm([12])\.", r"blocks.\1.norm\2.", rest)
        rest = re.sub(r"^layers\.", "blocks.", rest)
        inv = {v: k for k, v in _ORIG_NECK.items()}
        rest = re.sub(r"^neck\.(\w+)\.", lambda g: f"neck.{inv[g.group(1)]}.", rest)
        return "model.vision_tower_high." + rest
    if name.startswith("language_model."):
        return "model." + name[len("language_model.") :]
    raise LayoutError(f"cannot map {name} to the original layout")


def transformers_to_paddle_name(key: str) -> str:
    for prefix, repl in (
        ("model.vision_tower.", "vision_tower."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
        ("model.language_model.", "language_model."),
        ("language_model.model.", "language_model."),
        ("language_model.lm_head.", "lm_head."),
        ("vision_tower.", "vision_tower."),
        ("multi_modal_projector.", "multi_modal_projector."),
        ("lm_head.", "lm_head."),
    ):
        if key.startswith(prefix):
            return repl + key[len(prefix) :]
    raise LayoutError(f"unexpected tensor in a transformers GotOcr2 checkpoint: {key}")


def paddle_to_transformers_name(name: str) -> str:
    # the names transformers 5 reads and writes in memory
    return name if name == "lm_head.weight" else "model." + name


def transformers_config_dict(config) -> dict:
    import dataclasses

    v = dataclasses.asdict(config.vision)
    t = dataclasses.asdict(config.text)
    t.update(
        model_type="qwen2",
        hidden_act="silu",
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        use_sliding_window=False,
    )
    v.update(model_type="got_ocr2_vision", hidden_act="gelu")
    return {
        "architectures": ["GotOcr2ForConditionalGeneration"],
        "model_type": "got_ocr2",
        "image_token_index": config.image_token_id,
        "image_seq_length": config.image_seq_length,
        "tie_word_embeddings": config.text.tie_word_embeddings,
        "vision_config": v,
        "text_config": t,
    }


def original_config_dict(config) -> dict:
    import dataclasses

    t = dataclasses.asdict(config.text)
    t.update(
        architectures=["GOTQwenForCausalLM"],
        model_type="GOT",
        hidden_act="silu",
        im_patch_token=config.image_token_id,
        im_start_token=config.img_start_token_id,
        im_end_token=config.img_end_token_id,
        use_im_start_end=True,
        eos_token_id=config.eos_token_id,
        bos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    return t
