"""Prompt strings for every mode, byte for byte as the original chat()/chat_crop() build them,
and token ids against transformers' tokenizer on the same tokenizer.json."""

from __future__ import annotations

import pytest
from PIL import Image

from ppgotocr.processing import InputError, build_query, parse_box

# The HF-remote chat() literal: a triple-quoted string whose second line keeps 8 spaces.
SYSTEM = """<|im_start|>system
        You should follow the instructions carefully and explain your answers in detail."""


def mpt_prompt(qs: str) -> str:
    """Conversation(sep_style=MPT).get_prompt() with (user, qs), (assistant, None)."""
    ret = SYSTEM + "<|im_end|>"
    ret += "<|im_start|>user\n" + qs + "<|im_end|>"
    ret += "<|im_start|>assistant\n"
    return ret


def image_block(n_views, per_view=16):
    return "<img>" + "<imgpad>" * per_view * n_views + "</img>" + "\n"


def original_box(box_str, w, h):
    bbox = [float(v) for v in box_str.split(",")]
    bbox = [int(v / w * 1000) if i % 2 == 0 else int(v / h * 1000) for i, v in enumerate(bbox)]
    return str(bbox)


CASES = [
    ("plain", {}, lambda w, h: image_block(1) + "OCR: "),
    ("format", {"ocr_type": "format"}, lambda w, h: image_block(1) + "OCR with format: "),
    (
        "box",
        {"box": "10,20,300,150"},
        lambda w, h: image_block(1) + original_box("10,20,300,150", w, h) + " " + "OCR: ",
    ),
    (
        "box-format",
        {"box": "10,20,300,150", "ocr_type": "format"},
        lambda w, h: (
            image_block(1) + original_box("10,20,300,150", w, h) + " " + "OCR with format: "
        ),
    ),
    ("color", {"color": "red"}, lambda w, h: image_block(1) + "[red]" + " " + "OCR: "),
    (
        "color-format",
        {"color": "blue", "ocr_type": "format"},
        lambda w, h: image_block(1) + "[blue]" + " " + "OCR with format: ",
    ),
]


@pytest.mark.parametrize("name,kw,query", CASES, ids=[c[0] for c in CASES])
def test_single_image_prompts(pipe, images, name, kw, query):
    with Image.open(images[0]) as im:
        w, h = im.size
    p = pipe.prepare(images[0], **kw)
    assert p.prompt == mpt_prompt(query(w, h))
    assert p.no_repeat_ngram_size == 20  # chat() bans 20-grams


def test_crop_and_multipage_prompts(pipe, images):
    p = pipe.prepare(images[3], crop=True)  # 3x1 grid + global view = 4 views
    assert p.pixel_values.shape[0] == 4
    assert p.prompt == mpt_prompt(image_block(4) + "OCR upon the patch reference: ")
    p = pipe.prepare(images[3], crop=True, ocr_type="format")
    assert p.prompt == mpt_prompt(image_block(4) + "OCR with format upon the patch reference: ")
    assert p.no_repeat_ngram_size == 0  # chat_crop() has no n-gram ban
    p = pipe.prepare(images[:3], multi_page=True)
    assert p.pixel_values.shape[0] == 3
    assert p.prompt == mpt_prompt(image_block(3) + "OCR with format across multi pages: ")


def test_token_ids_match_transformers_tokenizer(tiny, pipe, images):
    from transformers import PreTrainedTokenizerFast

    ref = PreTrainedTokenizerFast(tokenizer_file=str(tiny["tok_path"]))
    cfg = pipe.config
    for kw in [
        {},
        {"ocr_type": "format"},
        {"box": "1,2,30,40"},
        {"color": "green"},
        {"crop": True},
    ]:
        p = pipe.prepare(images[3], **kw)
        assert p.input_ids == ref(p.prompt, add_special_tokens=False)["input_ids"]
        n_views = p.pixel_values.shape[0]
        assert p.input_ids.count(cfg.image_token_id) == cfg.image_seq_length * n_views
        start = p.input_ids.index(cfg.img_start_token_id)
        assert p.input_ids[start + 1 + cfg.image_seq_length * n_views] == cfg.img_end_token_id
        assert pipe.tokenizer.decode(p.input_ids) == p.prompt


def test_special_ids_come_from_config(tiny, pd_model):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny["tok_path"]))
    assert pd_model.config.image_token_id == tiny["hf"].config.image_token_id
    assert pd_model.config.img_start_token_id == tok.token_to_id("<img>")
    assert pd_model.config.eos_token_id == tiny["hf"].config.text_config.eos_token_id


def test_tokenizer_rejects_id_mismatch(tiny, pd_model):
    import copy

    from ppgotocr.tokenizer import GotOcrTokenizer

    cfg = copy.deepcopy(pd_model.config)
    cfg.image_token_id += 1
    with pytest.raises(ValueError, match="imgpad"):
        GotOcrTokenizer.from_pretrained(tiny["hf_dir"], cfg)


@pytest.mark.parametrize(
    "box,msg",
    [
        ("1,2,3", "malformed"),
        ("a,b,c,d", "malformed"),
        ("50,50,10,10", "x2 > x1"),
        ("0,0,5000,10", "outside"),
        ("-1,0,5,5", ">= 0"),
    ],
)
def test_malformed_boxes(box, msg):
    with pytest.raises(InputError, match=msg):
        parse_box(box, 500, 700)


def test_box_normalisation_like_original():
    assert parse_box("10,20,300,150", 500, 700) == [20, 28, 600, 214]
    assert parse_box("[250, 350]", 500, 700) == [500, 500]


def test_unknown_color_and_type():
    with pytest.raises(InputError, match="unknown color 'purple'"):
        build_query(color="purple")
    with pytest.raises(InputError, match="unknown OCR type"):
        build_query("latex")
