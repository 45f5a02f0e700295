"""Tiny random GOT models built with transformers (the reference) for every test.

``get_dummy_components`` style builders: one transformers GotOcr2 model (256 px input ->
16 image tokens; window 14 pads the 16x16 patch grid to 28), saved in the transformers
layout, and the same weights re-saved in the original stepfun layout (renamed here, by a
mapping written independently of the package's converter).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

from ppgotocr.tiny import build_tokenizer  # noqa: E402


def randomize_(model, seed=0):
    """Non-trivial values everywhere (HF zero-inits rel-pos/pos-embed and ~0 vision weights)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif "rel_pos" in name or "pos_embed" in name:
                p.copy_(0.2 * noise)
            elif "embed_tokens" in name:
                p.copy_(0.5 * noise)
            else:
                p.copy_(0.08 * noise)
    return model


def build_hf_model(tok_path, image_size=256, text_hidden=64, seed=0, tie=True):
    from tokenizers import Tokenizer
    from transformers import GotOcr2Config, GotOcr2ForConditionalGeneration

    tok = Tokenizer.from_file(str(tok_path))
    eos = tok.token_to_id("<|endoftext|>")
    cfg = GotOcr2Config(
        vision_config=dict(
            hidden_size=32,
            output_channels=16,
            num_hidden_layers=4,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=16,
            window_size=14,
            global_attn_indexes=[1, 3],
            mlp_dim=64,
        ),
        text_config=dict(
            vocab_size=tok.get_vocab_size(with_added_tokens=True),
            hidden_size=text_hidden,
            intermediate_size=2 * text_hidden,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            eos_token_id=eos,
            pad_token_id=eos,
            tie_word_embeddings=tie,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        ),
        image_token_index=tok.token_to_id("<imgpad>"),
        image_seq_length=(image_size // 64) ** 2,
        tie_word_embeddings=tie,
    )
    torch.manual_seed(seed)
    return randomize_(GotOcr2ForConditionalGeneration(cfg).eval(), seed)


def to_original_layout(hf_state: dict) -> dict:
    """transformers in-memory names -> stepfun GOT names (independent of ppgotocr.convert)."""
    out = {}
    neck = {"conv1": "0", "layer_norm1": "1", "conv2": "2", "layer_norm2": "3"}
    for k, v in hf_state.items():
        v = v.detach().clone().contiguous()
        if k == "lm_head.weight":
            continue
        k2 = k.replace(
            "model.multi_modal_projector.conv_upsampler1.", "model.vision_tower_high.net_2."
        )
        k2 = k2.replace(
            "model.multi_modal_projector.conv_upsampler2.", "model.vision_tower_high.net_3."
        )
        k2 = k2.replace(
            "model.multi_modal_projector.multimodal_projector.", "model.mm_projector_vary."
        )
        k2 = k2.replace("model.language_model.", "model.")
        if k2.startswith("model.vision_tower."):
            k2 = "model.vision_tower_high." + k2[len("model.vision_tower.") :]
            k2 = k2.replace("patch_embed.projection.", "patch_embed.proj.")
            k2 = re.sub(r"layers\.(\d+)\.layer_norm([12])\.", r"blocks.\1.norm\2.", k2)
            k2 = k2.replace(".layers.", ".blocks.")
            k2 = re.sub(
                r"neck\.(conv1|layer_norm1|conv2|layer_norm2)\.",
                lambda m: f"neck.{neck[m.group(1)]}.",
                k2,
            )
        out[k2] = v
    out["lm_head.weight"] = out["model.embed_tokens.weight"].clone()  # the stored copy
    return out


def save_original(folder, hf_model, tok_path):
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(to_original_layout(hf_model.state_dict()), str(folder / "model.safetensors"))
    tc = hf_model.config.text_config
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_path))
    cfg = {
        "architectures": ["GOTQwenForCausalLM"],
        "model_type": "GOT",
        "vocab_size": tc.vocab_size,
        "hidden_size": tc.hidden_size,
        "intermediate_size": tc.intermediate_size,
        "num_hidden_layers": tc.num_hidden_layers,
        "num_attention_heads": tc.num_attention_heads,
        "num_key_value_heads": tc.num_key_value_heads,
        "rms_norm_eps": tc.rms_norm_eps,
        "rope_theta": tc.rope_parameters["rope_theta"],
        "max_position_embeddings": tc.max_position_embeddings,
        "tie_word_embeddings": True,
        "bos_token_id": tok.token_to_id("<|endoftext|>"),
        "eos_token_id": tok.token_to_id("<|endoftext|>"),
        "im_patch_token": tok.token_to_id("<imgpad>"),
        "im_start_token": tok.token_to_id("<img>"),
        "im_end_token": tok.token_to_id("</img>"),
        "use_im_start_end": True,
    }
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    import shutil

    shutil.copy(tok_path, folder / "tokenizer.json")
    return folder


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """dict: tok_path, hf (torch model), hf_dir, orig_dir."""
    root = tmp_path_factory.mktemp("tiny")
    tok_path = build_tokenizer(root / "tok")
    hf = build_hf_model(tok_path)
    hf_dir = root / "hf"
    hf.save_pretrained(hf_dir)
    import shutil

    shutil.copy(tok_path, hf_dir / "tokenizer.json")
    orig_dir = save_original(root / "orig", hf, tok_path)
    return {"tok_path": tok_path, "hf": hf, "hf_dir": hf_dir, "orig_dir": orig_dir, "root": root}


@pytest.fixture(scope="session")
def pd_model(tiny):
    from ppgotocr.modeling_got_ocr2 import GotOcr2ForConditionalGeneration

    return GotOcr2ForConditionalGeneration.from_pretrained(tiny["hf_dir"])


@pytest.fixture(scope="session")
def pipe(tiny, pd_model):
    from ppgotocr.pipeline import GotOcrPipeline
    from ppgotocr.tokenizer import GotOcrTokenizer

    return GotOcrPipeline(
        pd_model, GotOcrTokenizer.from_pretrained(tiny["hf_dir"], pd_model.config)
    )


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """Noise images of different sizes/aspect ratios, as files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(500, 700), (300, 200), (640, 480), (1500, 500)]):
        arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        p = root / f"img{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths
