"""Tiny GOT models for demos and tests: a byte-level BPE tokenizer with GOT's special tokens
(trained on the spot) and randomly initialised weights. Useless for real OCR, by design."""

from __future__ import annotations

from pathlib import Path

SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|extra_0|>",
    "<|extra_1|>",
    "<|extra_2|>",
    "<|extra_3|>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<quad>",
    "</quad>",
    "<img>",
    "</img>",
    "<imgpad>",
)
# Qwen's pre-tokenisation regex
QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CORPUS = [
    "You should follow the instructions carefully and explain your answers in detail.",
    "OCR: OCR with format: OCR upon the patch reference: across multi pages [red] [green] [blue]",
    "The quick brown fox jumps over the lazy dog 0123456789 .,;:!?()[]{}<>-_=+*/\\'\"",
    "Invoice number total amount date page table | --- | $x^2 + y^2 = z^2$ \\frac{a}{b}",
    "PaddlePaddle GOT OCR general optical character recognition theory document text line",
]


def build_tokenizer(folder, vocab_size: int = 400) -> Path:
    """Write ``tokenizer.json`` (+ ``tokenizer_config.json``); GOT specials follow the BPE vocab."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    tok.add_special_tokens(list(SPECIALS))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        '{"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>", '
        '"pad_token": "<|endoftext|>", "model_max_length": 32768}\n'
    )
    return folder / "tokenizer.json"


def tiny_config(tokenizer_path, image_size: int = 256, text_hidden: int = 64, layers: int = 2):
    from tokenizers import Tokenizer

    from .configuration_got_ocr2 import GotOcr2Config, GotOcr2TextConfig, GotOcr2VisionConfig

    tok = Tokenizer.from_file(str(tokenizer_path))
    vision = GotOcr2VisionConfig(
        hidden_size=32,
        output_channels=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=16,
        window_size=14,
        global_attn_indexes=[1, 3],
        mlp_dim=64,
    )
    text = GotOcr2TextConfig(
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        hidden_size=text_hidden,
        intermediate_size=2 * text_hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
    )
    return GotOcr2Config(
        vision=vision,
        text=text,
        image_token_id=tok.token_to_id("<imgpad>"),
        img_start_token_id=tok.token_to_id("<img>"),
        img_end_token_id=tok.token_to_id("</img>"),
        eos_token_id=tok.token_to_id("<|endoftext|>"),
        pad_token_id=tok.token_to_id("<|endoftext|>"),
    )


def build_tiny_model(folder, seed: int = 0, image_size: int = 256, overwrite: bool = False):
    """A random tiny ppgotocr folder (config, weights, tokenizer). Returns the folder."""
    import tempfile

    import numpy as np

    from ._atomic import prepare_output
    from .convert import write_safetensors_atomic
    from .modeling_got_ocr2 import GotOcr2ForConditionalGeneration, paddle

    folder = Path(folder)
    prepare_output(folder, overwrite=overwrite)
    with tempfile.TemporaryDirectory() as tmp:
        tok_path = build_tokenizer(tmp)
        config = tiny_config(tok_path, image_size=image_size)
        paddle.seed(seed)
        model = GotOcr2ForConditionalGeneration(config)
        rng = np.random.default_rng(seed)
        state = {}
        for name, p in model.state_dict().items():  # random everywhere, incl. rel-pos / pos-embed
            shape = list(p.shape)
            if "norm" in name:
                value = (1.0 if name.endswith("weight") else 0.0) + 0.1 * rng.standard_normal(shape)
            elif len(shape) == 4:  # conv OIHW: keep activations O(1)
                value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
            elif len(shape) == 2 and "embed_tokens" not in name and "rel_pos" not in name:
                value = rng.standard_normal(shape) / np.sqrt(shape[0])  # Linear [in, out]
            else:
                value = 0.1 * rng.standard_normal(shape)
            state[name] = value.astype(np.float32)
        extra = [Path(tmp) / "tokenizer.json", Path(tmp) / "tokenizer_config.json"]
        write_safetensors_atomic(folder, iter(state.items()), config, extra, overwrite=overwrite)
    return folder
