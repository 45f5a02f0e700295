"""Builders of tiny random FLUX components with the reference libraries (torch side).

Everything here uses diffusers / transformers / torch and writes the diffusers layout, the way
a real FLUX.1 repository is laid out. ppflux then loads those folders; nothing on the Paddle
side is built from these objects directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TINY_TRANSFORMER = dict(
    patch_size=1,
    in_channels=64,
    num_layers=2,
    num_single_layers=2,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=32,
    pooled_projection_dim=32,
    axes_dims_rope=[4, 6, 6],
)
TINY_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[32, 32, 64, 64],
    layers_per_block=1,
    latent_channels=16,
    norm_num_groups=32,
    sample_size=64,
    scaling_factor=0.3611,
    shift_factor=0.1159,
    use_quant_conv=False,
    use_post_quant_conv=False,
)
DEV_SCHEDULER = dict(
    num_train_timesteps=1000,
    shift=3.0,
    use_dynamic_shifting=True,
    base_shift=0.5,
    max_shift=1.15,
    base_image_seq_len=256,
    max_image_seq_len=4096,
)
WORDS = (
    "a photo of cat dog red blue green tree house on the in with small big sky sun moon "
    "river mountain painting oil sketch bright dark light astronaut riding horse"
).split()


def transformer_inputs(
    seed=0, batch=1, image_tokens=16, text_tokens=8, grid_w=4, timestep=None
) -> dict:
    """Random transformer inputs (numpy) with FLUX's image ids over a ``grid_w``-wide grid."""
    rng = np.random.default_rng(seed)
    img_ids = np.zeros((image_tokens, 3), np.float32)
    img_ids[:, 1] = np.arange(image_tokens) // grid_w
    img_ids[:, 2] = np.arange(image_tokens) % grid_w
    return dict(
        hidden_states=rng.standard_normal((batch, image_tokens, 64)).astype(np.float32),
        encoder_hidden_states=rng.standard_normal((batch, text_tokens, 32)).astype(np.float32),
        pooled_projections=rng.standard_normal((batch, 32)).astype(np.float32),
        timestep=np.full([batch], 0.75, np.float32)
        if timestep is None
        else np.asarray(timestep, np.float32),
        img_ids=img_ids,
        txt_ids=np.zeros((text_tokens, 3), np.float32),
    )


def seed_all(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)


def randomize_(module, scale: float = 0.3, seed: int = 0):
    """Re-randomise every parameter (zero-initialised layers would hide bugs)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return module


def make_transformer(guidance_embeds: bool, seed: int = 0, **overrides):
    from diffusers import FluxTransformer2DModel

    seed_all(seed)
    # diffusers' own initialisation (nothing in the Flux transformer is zero-initialised)
    return FluxTransformer2DModel(
        **{**TINY_TRANSFORMER, **overrides}, guidance_embeds=guidance_embeds
    ).eval()


def make_controlnet(guidance_embeds: bool = True, seed: int = 1, **overrides):
    from diffusers import FluxControlNetModel

    cfg = {**TINY_TRANSFORMER, "num_layers": 2, "num_single_layers": 1, **overrides}
    seed_all(seed)
    model = FluxControlNetModel(**cfg, guidance_embeds=guidance_embeds).eval()
    # the controlnet_* projections are zero-initialised: randomise them, or the residuals
    # would be zero and the test could not fail
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(
                ("controlnet_blocks", "controlnet_single_blocks", "controlnet_x_embedder")
            ):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


def make_clip_tokenizer(folder: Path):
    """A byte-level BPE vocabulary in CLIP's format (<|endoftext|> has the largest id)."""
    try:
        from transformers.models.clip.tokenization_clip import bytes_to_unicode

        chars = list(bytes_to_unicode().values())
    except ImportError:  # transformers 5 dropped the helper; same table as GPT-2's
        from ppflux.tiny import _bytes_to_unicode

        chars = _bytes_to_unicode()
    vocab = chars + [c + "</w>" for c in chars]
    merges = []
    for word in WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            a, b = pieces[0], pieces[1]
            merges.append(f"{a} {b}")
            pieces = [a + b] + pieces[2:]
            vocab.append(pieces[0])
    vocab = list(dict.fromkeys(vocab)) + ["<|startoftext|>", "<|endoftext|>"]
    merges = list(dict.fromkeys(merges))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "model_max_length": 77,
                "bos_token": "<|startoftext|>",
                "eos_token": "<|endoftext|>",
                "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>",
                "tokenizer_class": "CLIPTokenizer",
            }
        )
    )
    return len(vocab)


def make_t5_tokenizer(folder: Path):
    """A small sentencepiece unigram model in T5's layout (spiece.model + 100 extra ids)."""
    import io

    import sentencepiece as spm

    text = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 4
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text),
        model_writer=model,
        vocab_size=48,
        model_type="unigram",
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        minloglevel=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(model.getvalue())
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "model_max_length": 512,
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "pad_token": "<pad>",
                "extra_ids": 100,
                "tokenizer_class": "T5Tokenizer",
            }
        )
    )
    import sentencepiece as s2

    return s2.SentencePieceProcessor(model_proto=model.getvalue()).get_piece_size() + 100


def build_pipeline_folder(root: Path, guidance_embeds: bool = True) -> Path:
    """A complete diffusers-layout FLUX folder with tiny random components."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
        T5Tokenizer,
    )

    root = Path(root)
    tok_dir, tok2_dir = root / "_tok", root / "_tok2"
    clip_vocab = make_clip_tokenizer(tok_dir)
    t5_vocab = make_t5_tokenizer(tok2_dir)
    seed_all(0)
    clip = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=clip_vocab,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            projection_dim=32,
            eos_token_id=2,
            bos_token_id=0,
            pad_token_id=1,
            hidden_act="quick_gelu",
        )
    ).eval()
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=t5_vocab,
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            is_encoder_decoder=False,
            decoder_start_token_id=0,
        )
    ).eval()
    randomize_(clip, 0.2, 3)
    randomize_(t5, 0.2, 4)
    with torch.no_grad():  # keep norms near 1 so activations stay sane
        for name, p in t5.named_parameters():
            if "layer_norm" in name:
                p.fill_(1.0)
        for name, p in clip.named_parameters():
            if "layer_norm" in name and name.endswith("weight"):
                p.fill_(1.0)
    seed_all(5)
    vae = AutoencoderKL(**TINY_VAE).eval()
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**DEV_SCHEDULER),
        vae=vae,
        text_encoder=clip,
        tokenizer=CLIPTokenizer.from_pretrained(tok_dir),
        text_encoder_2=t5,
        tokenizer_2=T5Tokenizer.from_pretrained(tok2_dir),
        transformer=make_transformer(guidance_embeds),
    )
    pipe.save_pretrained(root / "pipe")
    return root / "pipe"
