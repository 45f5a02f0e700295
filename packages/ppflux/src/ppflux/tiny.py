"""A tiny FLUX-shaped pipeline with random weights, built without any download (demo, tests).

Same component layout and configs as FLUX.1-dev, shrunk: 2 double + 2 single blocks, hidden
32, a 4-level 16-channel VAE, 2-layer CLIP and T5, local tokenizers. THE WEIGHTS ARE RANDOM.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

WORDS = (
    "a photo of cat dog red blue green tree house on the in with small big sky sun moon "
    "river mountain painting oil sketch bright dark light astronaut riding horse"
).split()


def _bytes_to_unicode():
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_clip_tokenizer(folder: Path) -> int:
    chars = _bytes_to_unicode()
    vocab = chars + [c + "</w>" for c in chars]
    merges = []
    for word in WORDS:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append(f"{pieces[0]} {pieces[1]}")
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            vocab.append(pieces[0])
    vocab = list(dict.fromkeys(vocab)) + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}))
    return len(vocab)


def write_t5_tokenizer(folder: Path) -> int:
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
        json.dumps({"model_max_length": 512, "extra_ids": 100})
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue()).get_piece_size() + 100


def build_tiny_pipeline(
    folder: Path, guidance_embeds: bool = True, seed: int = 0, overwrite: bool = False
):
    """Write a Paddle-layout tiny pipeline folder with RANDOM weights and return its path.

    The folder appears only when complete; an existing non-empty one is refused unless
    ``overwrite``."""
    import os
    import shutil

    from ._atomic import atomic_dir, prepare_output
    from ._compat import require_paddle

    folder = prepare_output(folder, overwrite=overwrite)
    paddle = require_paddle()
    from ppdiffusers import AutoencoderKL
    from ppdiffusers.transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from .models.transformer_flux import FluxTransformer2DModel
    from .pipelines import components as C
    from .pipelines.pipeline_flux import FluxPipeline
    from .scheduler import FlowMatchEulerDiscreteScheduler

    with atomic_dir(folder, overwrite=overwrite) as tmp:
        work = tmp / "sources"
        clip_vocab = write_clip_tokenizer(work / "tokenizer")
        t5_vocab = write_t5_tokenizer(work / "tokenizer_2")
        paddle.seed(seed)
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
        )
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
            )
        )
        vae = AutoencoderKL(
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
        transformer = FluxTransformer2DModel(
            in_channels=64,
            num_layers=2,
            num_single_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            guidance_embeds=guidance_embeds,
            axes_dims_rope=(4, 6, 6),
        )
        scheduler = FlowMatchEulerDiscreteScheduler(
            shift=3.0,
            use_dynamic_shifting=guidance_embeds,
            base_shift=0.5,
            max_shift=1.15,
            base_image_seq_len=256,
            max_image_seq_len=4096,
        )
        pipe = FluxPipeline(
            scheduler=scheduler,
            vae=vae,
            text_encoder=clip,
            tokenizer=C.load_tokenizer(work / "tokenizer", "clip"),
            text_encoder_2=t5,
            tokenizer_2=C.load_tokenizer(work / "tokenizer_2", "t5"),
            transformer=transformer,
        )
        saved = tmp / "pipeline"
        pipe.save_pretrained(saved)
        # the tokenizer sources are what a diffusers folder holds; copy them verbatim
        for name in ("tokenizer", "tokenizer_2"):
            for f in (work / name).iterdir():
                shutil.copy(f, saved / name / f.name)
        shutil.rmtree(work)
        for entry in saved.iterdir():
            os.replace(entry, tmp / entry.name)
        saved.rmdir()
    return folder
