"""Parity against transformers' GotOcr2ForConditionalGeneration (torch CPU, fp32), same inputs.

Tolerances: preprocessing exact (0.0); vision tower and projector features 1e-5 abs;
logits 1e-4 abs with every argmax equal; greedy token sequences identical.
"""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

from ppgotocr.generation import GenerationConfig, greedy_generate
from ppgotocr.processing import dynamic_preprocess, load_image, normalize

VISION_TOL = 1e-5
LOGITS_TOL = 1e-4


def _hf_processor(size):
    from transformers import GotOcr2ImageProcessorPil

    return GotOcr2ImageProcessorPil(size={"height": size, "width": size})


@pytest.mark.parametrize("size", [1024, 256])
def test_preprocessing_exact(images, size):
    proc = _hf_processor(size)
    for path in images:
        img = load_image(path)
        ref = proc(img, return_tensors="np")["pixel_values"][0]
        ours = normalize(img, size)
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() == 0.0


def test_crop_mode_exact(images):
    """Tiles + global view equal transformers' crop_to_patches with the original's max 6."""
    proc = _hf_processor(256)
    for path in images:
        img = load_image(path)
        ref = proc(img, crop_to_patches=True, min_patches=1, max_patches=6, return_tensors="np")[
            "pixel_values"
        ]
        ours = np.stack([normalize(t, 256) for t in dynamic_preprocess(img, image_size=256)])
        assert ours.shape == ref.shape, path.name
        assert np.abs(ours - ref).max() == 0.0
    # the wide image really is tiled (3x1 grid + global view)
    assert len(dynamic_preprocess(load_image(images[3]), image_size=256)) == 4


def _features(pd_model, hf, pixels):
    with torch.no_grad():
        ref_v = hf.model.vision_tower(torch.tensor(pixels)).last_hidden_state.numpy()
        ref_f = hf.model.get_image_features(torch.tensor(pixels)).pooler_output.numpy()
    with paddle.no_grad():
        v = pd_model.vision_tower(paddle.to_tensor(pixels)).numpy()
        f = pd_model.get_image_features(paddle.to_tensor(pixels)).numpy()
    return ref_v, v, ref_f, f


def test_vision_features(tiny, pd_model, images):
    pixels = np.stack([normalize(load_image(p), 256) for p in images[:2]])
    ref_v, v, ref_f, f = _features(pd_model, tiny["hf"], pixels)
    assert ref_v.std() > 0.1 and ref_f.std() > 0.1  # not a degenerate all-zero comparison
    assert np.abs(ref_v - v).max() <= VISION_TOL
    assert np.abs(ref_f - f).max() <= VISION_TOL


def test_vision_features_1024(tiny, images):
    """The real geometry: 64x64 patches padded to 70 for 14-windows, 256 image tokens."""
    from conftest import build_hf_model

    from ppgotocr.modeling_got_ocr2 import GotOcr2ForConditionalGeneration

    hf = build_hf_model(tiny["tok_path"], image_size=1024, seed=1)
    d = tiny["root"] / "hf1024"
    hf.save_pretrained(d)
    model = GotOcr2ForConditionalGeneration.from_pretrained(d)
    assert model.config.image_seq_length == 256
    pixels = normalize(load_image(images[0]), 1024)[None]
    ref_v, v, ref_f, f = _features(model, hf, pixels)
    assert f.shape == (1, 256, 64)
    assert np.abs(ref_v - v).max() <= VISION_TOL
    assert np.abs(ref_f - f).max() <= VISION_TOL


def _prompt(pipe, image, **kw):
    return pipe.prepare(image, **kw)


@pytest.mark.parametrize("mode", [{}, {"ocr_type": "format"}, {"crop": True}])
def test_logits(tiny, pipe, images, mode):
    p = _prompt(pipe, images[3], **mode)
    with torch.no_grad():
        ref = tiny["hf"](
            input_ids=torch.tensor([p.input_ids]), pixel_values=torch.tensor(p.pixel_values)
        ).logits.numpy()
    with paddle.no_grad():
        ours, _ = pipe.model(
            paddle.to_tensor([p.input_ids]), pixel_values=paddle.to_tensor(p.pixel_values)
        )
    ours = ours.numpy()
    assert np.abs(ref - ours).max() <= LOGITS_TOL
    assert (ref.argmax(-1) == ours.argmax(-1)).all()


def _hf_greedy(hf, p, n, ngram):
    with torch.no_grad():
        out = hf.generate(
            input_ids=torch.tensor([p.input_ids]),
            pixel_values=torch.tensor(p.pixel_values),
            do_sample=False,
            num_beams=1,
            max_new_tokens=n,
            min_new_tokens=n,
            no_repeat_ngram_size=ngram,
        )
    return out[0, len(p.input_ids) :].tolist()


def test_greedy_32_tokens_with_ngram_ban(tiny, pipe, images):
    p = _prompt(pipe, images[0])
    ref = _hf_greedy(tiny["hf"], p, 32, ngram=3)
    with paddle.no_grad():
        feats = pipe.model.get_image_features(paddle.to_tensor(p.pixel_values))
    ours = greedy_generate(
        pipe.model,
        [p.input_ids],
        feats,
        GenerationConfig(max_new_tokens=32, no_repeat_ngram_size=3),
    )[0]
    assert ours == ref
    # the ban really fires: without it the sequence differs (and repeats a 3-gram)
    free = greedy_generate(pipe.model, [p.input_ids], feats, GenerationConfig(max_new_tokens=32))[0]
    assert free != ours
    grams = [tuple(free[i : i + 3]) for i in range(len(free) - 2)]
    assert len(grams) != len(set(grams))


def test_batch_rows_equal_single_runs(tiny, pipe, images):
    """Left-padded batch of prompts of different lengths; each row equals its single run,
    and the single runs equal transformers."""
    prepared = [
        pipe.prepare(images[0]),
        pipe.prepare(images[1], box="10,20,200,150"),
        pipe.prepare(images[2], ocr_type="format", color="green"),
    ]
    assert len({len(p.input_ids) for p in prepared}) == 3
    for p in prepared:
        p.no_repeat_ngram_size = 3
    batch = pipe.generate_ids(prepared, max_new_tokens=20)
    for p, row in zip(prepared, batch):
        single = pipe.generate_ids([p], max_new_tokens=20)[0]
        assert row == single
        assert row == _hf_greedy(tiny["hf"], p, len(row), ngram=3)[: len(row)]


def test_batch_prefill_logits_match_transformers(tiny, pipe, images):
    """transformers with the same left padding and attention mask gives the same last logits."""
    prepared = [pipe.prepare(images[0]), pipe.prepare(images[1], box="10,20,200,150")]
    width = max(len(p.input_ids) for p in prepared)
    pad = pipe.config.pad_token_id
    ids = np.array([[pad] * (width - len(p.input_ids)) + p.input_ids for p in prepared])
    mask = np.array([[0] * (width - len(p.input_ids)) + [1] * len(p.input_ids) for p in prepared])
    pixels = np.concatenate([p.pixel_values for p in prepared])
    with torch.no_grad():
        pos = torch.tensor(mask).cumsum(-1) - 1
        pos.masked_fill_(torch.tensor(mask) == 0, 1)
        ref = (
            tiny["hf"](
                input_ids=torch.tensor(ids),
                attention_mask=torch.tensor(mask),
                position_ids=pos,
                pixel_values=torch.tensor(pixels),
            )
            .logits[:, -1]
            .numpy()
        )
    with paddle.no_grad():
        ours, _ = pipe.model(
            paddle.to_tensor(ids),
            pixel_values=paddle.to_tensor(pixels),
            attention_mask=paddle.to_tensor(mask),
            logits_to_keep=1,
        )
    assert np.abs(ref - ours.numpy()[:, -1]).max() <= LOGITS_TOL


def test_untied_lm_head(tiny, images, tmp_path):
    """tie_word_embeddings=false keeps a separate lm_head (and the converter requires it)."""
    from conftest import build_hf_model

    from ppgotocr.modeling_got_ocr2 import GotOcr2ForConditionalGeneration
    from ppgotocr.pipeline import GotOcrPipeline
    from ppgotocr.tokenizer import GotOcrTokenizer

    hf = build_hf_model(tiny["tok_path"], seed=2, tie=False)
    assert not torch.equal(hf.lm_head.weight, hf.model.language_model.embed_tokens.weight)
    hf.save_pretrained(tmp_path)
    model = GotOcr2ForConditionalGeneration.from_pretrained(tmp_path)
    assert model.lm_head is not None
    pipe = GotOcrPipeline(model, GotOcrTokenizer.from_pretrained(tiny["hf_dir"], model.config))
    p = pipe.prepare(images[0])
    with torch.no_grad():
        ref = hf(
            input_ids=torch.tensor([p.input_ids]), pixel_values=torch.tensor(p.pixel_values)
        ).logits.numpy()
    with paddle.no_grad():
        ours = model(
            paddle.to_tensor([p.input_ids]), pixel_values=paddle.to_tensor(p.pixel_values)
        )[0].numpy()
    assert np.abs(ref - ours).max() <= LOGITS_TOL
    assert (ref.argmax(-1) == ours.argmax(-1)).all()
