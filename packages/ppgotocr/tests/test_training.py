"""SFT: masking as the original, 3 steps of loss/grads/params vs torch + transformers' GOT model
(same masking, torch AdamW, transformers' cosine warmup schedule, clip_grad_norm_) within 1e-5
relative, exact resume, and bad data errors."""

from __future__ import annotations

import copy
import json

import numpy as np
import paddle
import pytest
import torch

from ppgotocr.convert import is_linear_weight, transformers_to_paddle_name
from ppgotocr.modeling_got_ocr2 import GotOcr2ForConditionalGeneration
from ppgotocr.processing import InputError
from ppgotocr.training import IGNORE_INDEX, SFTDataset, TrainArgs, Trainer

REL_TOL = 1e-5  # loss, grad norm and every gradient, at each of the 3 steps
# Parameters after each update: Adam divides by sqrt(v), so for elements whose gradient is
# ~1e-7 (e.g. k_proj.bias) float noise in g becomes a visible share of a +-lr step.
PARAM_TOL = 1e-4


def _data(tmp_path, images, extra=None):
    samples = [
        {
            "image": images[0].name,
            "conversations": [
                {"from": "human", "value": "<image>\nOCR: "},
                {"from": "gpt", "value": "Hello world"},
            ],
        },
        {
            "image": images[1].name,
            "conversations": [
                {"from": "human", "value": "<image>\nOCR with format: "},
                {"from": "gpt", "value": "$x^2$ | a | b |"},
                {"from": "human", "value": "again"},
                {"from": "gpt", "value": "Invoice 42"},
            ],
        },
        {
            "image": images[3].name,
            "crop": True,
            "conversations": [
                {"from": "human", "value": "<image>\nOCR upon the patch reference: "},
                {"from": "gpt", "value": "The quick brown fox"},
            ],
        },
    ] + (extra or [])
    path = tmp_path / "data.json"
    path.write_text(json.dumps(samples))
    return path


def test_label_masking_matches_original_template(tiny, pipe, images, tmp_path):
    ds = SFTDataset(_data(tmp_path, images), images[0].parent, pipe.tokenizer, pipe.config)
    tok = pipe.tokenizer
    ids, labels, pixels = ds.items[1]
    assert pixels.shape[0] == 1 and ds.items[2][2].shape[0] == 4  # crop sample: 3 tiles + global
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>system\nYou should follow")  # training: no indentation
    kept = tok.decode([t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX])
    # only the assistant turns (and their <|im_end|>) are learned, both rounds
    assert kept == "$x^2$ | a | b |<|im_end|>Invoice 42<|im_end|>"


def _torch_loss(hf, ids, labels, mask, pixels):
    m = hf.model
    with torch.no_grad():  # the original vision_tower_high incl. net_2/net_3 has no grad
        v = m.vision_tower(torch.tensor(pixels)).last_hidden_state
        v = m.multi_modal_projector.conv_upsampler2(m.multi_modal_projector.conv_upsampler1(v))
        v = v.flatten(2).permute(0, 2, 1)
    feats = m.multi_modal_projector.multimodal_projector(v)
    ids_t = torch.tensor(ids)
    emb = m.language_model.embed_tokens(ids_t)
    sel = (ids_t == hf.config.image_token_id).unsqueeze(-1).expand_as(emb)
    emb = emb.masked_scatter(sel, feats.reshape(-1, feats.shape[-1]))
    out = m.language_model(inputs_embeds=emb, attention_mask=torch.tensor(mask)).last_hidden_state
    logits = hf.lm_head(out).float()
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        torch.tensor(labels[:, 1:]).reshape(-1),
        ignore_index=IGNORE_INDEX,
    )


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def test_three_steps_match_torch(tiny, pipe, images, tmp_path):
    from transformers import get_cosine_schedule_with_warmup

    args = TrainArgs(
        lr=1e-3, warmup_steps=1, weight_decay=0.01, max_grad_norm=1.0, batch_size=2, max_steps=3
    )
    model = GotOcr2ForConditionalGeneration.from_pretrained(tiny["hf_dir"])
    ds = SFTDataset(_data(tmp_path, images), images[0].parent, pipe.tokenizer, model.config)
    trainer = Trainer(model, pipe.tokenizer, ds, args)
    model.train()

    hf = copy.deepcopy(tiny["hf"]).train()
    train_t = {
        n: p
        for n, p in hf.named_parameters()
        if not (n.startswith("model.vision_tower.") or ".conv_upsampler" in n)
    }
    for n, p in hf.named_parameters():
        p.requires_grad_(n in train_t)
    t2p = {n: transformers_to_paddle_name(n) for n in train_t if n != "lm_head.weight"}
    assert sorted(t2p.values()) == sorted(trainer.params)  # same trainable set
    decay = [p for n, p in train_t.items() if not (n.endswith(".bias") or "layer_norm" in n)]
    no_decay = [p for n, p in train_t.items() if n.endswith(".bias") or "layer_norm" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3,
        foreach=False,
    )
    sched = get_cosine_schedule_with_warmup(opt, 1, 3)

    batches = trainer.batches()
    fired_clip = False
    for step in range(3):
        batch = next(batches)
        loss_p = trainer.train_step([batch])
        opt.zero_grad()
        loss_t = _torch_loss(hf, *batch)
        loss_t.backward()
        loss_t = loss_t.detach()
        norm_t = float(torch.nn.utils.clip_grad_norm_(list(train_t.values()), 1.0))
        fired_clip |= norm_t > 1.0
        assert abs(loss_p - float(loss_t)) / abs(float(loss_t)) <= REL_TOL, step
        assert abs(trainer.grad_norm - norm_t) / norm_t <= REL_TOL
        for tn, pn in t2p.items():
            g_t = train_t[tn].grad.numpy()
            g_p = trainer.params[pn].grad.numpy()
            if is_linear_weight(pn):
                g_p = g_p.T
            assert _rel(g_p, g_t) <= REL_TOL, (step, tn)
        opt.step()
        sched.step()
        for tn, pn in t2p.items():
            w_p = trainer.params[pn].numpy()
            w_p = w_p.T if is_linear_weight(pn) else w_p
            assert _rel(w_p, train_t[tn].detach().numpy()) <= PARAM_TOL, (step, tn)
    assert fired_clip  # clipping was exercised
    # the vision tower got no gradient and did not move
    ref = GotOcr2ForConditionalGeneration.from_pretrained(tiny["hf_dir"])
    assert np.array_equal(model.vision_tower.pos_embed.numpy(), ref.vision_tower.pos_embed.numpy())


def test_resume_equals_uninterrupted(tiny, pipe, images, tmp_path):
    data = _data(tmp_path, images)
    args = TrainArgs(lr=1e-3, warmup_steps=1, batch_size=1, grad_accum=2, max_steps=4, save_steps=2)

    def make(out):
        model = GotOcr2ForConditionalGeneration.from_pretrained(tiny["hf_dir"])
        ds = SFTDataset(data, images[0].parent, pipe.tokenizer, model.config)
        return Trainer(model, pipe.tokenizer, ds, args, out)

    a = make(tmp_path / "a")
    losses_a = a.train(progress=False)
    assert (tmp_path / "a" / "checkpoint-2" / "optimizer.safetensors").is_file()
    b = make(tmp_path / "b")
    b.load_checkpoint(tmp_path / "a" / "checkpoint-2")
    losses_b = b.train(progress=False)
    assert losses_b == losses_a
    for (n, pa), (_, pb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert np.array_equal(pa.numpy(), pb.numpy()), n


@pytest.mark.parametrize(
    "bad,msg",
    [
        ("{not json", "malformed JSON"),
        (json.dumps([{"image": "missing.png", "conversations": []}]), "sample 0: .*no such file"),
        (
            json.dumps(
                [
                    {
                        "image": "IMG",
                        "conversations": [
                            {"from": "human", "value": "OCR: "},
                            {"from": "gpt", "value": "x"},
                        ],
                    }
                ]
            ),
            "sample 0: needs exactly one <image>",
        ),
        (
            json.dumps([{"image": "IMG", "conversations": [{"from": "gpt", "value": "<image>"}]}]),
            "sample 0: turn 0 should be from human",
        ),
    ],
)
def test_bad_data(tiny, pipe, images, tmp_path, bad, msg):
    path = tmp_path / "bad.json"
    path.write_text(bad.replace("IMG", images[0].name))
    with pytest.raises(InputError, match=msg):
        SFTDataset(path, images[0].parent, pipe.tokenizer, pipe.config)


def test_train_cli_writes_loadable_model(tiny, images, tmp_path):
    from ppgotocr.cli import main

    data = _data(tmp_path, images)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--model",
                str(tiny["hf_dir"]),
                "--data",
                str(data),
                "--images",
                str(images[0].parent),
                "--output",
                str(out),
                "--max-steps",
                "2",
                "--save-steps",
                "1",
                "--lr",
                "1e-3",
            ]
        )
        == 0
    )
    assert (out / "checkpoint-1" / "trainer_state.json").is_file()
    trained = GotOcr2ForConditionalGeneration.from_pretrained(out / "final")
    base = GotOcr2ForConditionalGeneration.from_pretrained(tiny["hf_dir"])
    with paddle.no_grad():
        assert not np.array_equal(
            trained.multi_modal_projector.multimodal_projector.weight.numpy(),
            base.multi_modal_projector.multimodal_projector.weight.numpy(),
        )


def test_train_vision_switch_gradients_match_torch(tiny, pipe, images, tmp_path):
    """--train-vision: one step's loss and the vision tower / upsampler gradients vs torch."""
    model = GotOcr2ForConditionalGeneration.from_pretrained(tiny["hf_dir"])
    ds = SFTDataset(_data(tmp_path, images), images[0].parent, pipe.tokenizer, model.config)
    trainer = Trainer(
        model,
        pipe.tokenizer,
        ds,
        TrainArgs(batch_size=2, max_steps=1, max_grad_norm=0.0, train_vision=True),
    )
    assert "vision_tower.pos_embed" in trainer.params
    batch = next(trainer.batches())
    loss_p = trainer.train_step([batch])
    hf = copy.deepcopy(tiny["hf"]).train()
    ids, labels, mask, pixels = batch
    out = hf(
        input_ids=torch.tensor(ids),
        pixel_values=torch.tensor(pixels),
        attention_mask=torch.tensor(mask),
    )
    logits = out.logits.float()
    loss_t = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), torch.tensor(labels[:, 1:]).reshape(-1)
    )
    loss_t.backward()
    loss_t = float(loss_t.detach())
    assert abs(loss_p - loss_t) / loss_t <= REL_TOL
    checked = 0
    for tn, p in hf.named_parameters():
        if not (tn.startswith("model.vision_tower.") or ".conv_upsampler" in tn):
            continue
        pn = transformers_to_paddle_name(tn)
        g_p = trainer.params[pn].grad.numpy()
        g_p = g_p.T if is_linear_weight(pn) else g_p
        assert _rel(g_p, p.grad.numpy()) <= REL_TOL, tn
        checked += 1
    assert checked > 40


def test_freeze_options(pd_model):
    from ppgotocr.training import trainable_names

    default = set(trainable_names(pd_model))
    assert "multi_modal_projector.multimodal_projector.weight" in default
    assert not any(n.startswith("vision_tower.") or ".conv_upsampler" in n for n in default)
    assert any(n.startswith("language_model.layers.") for n in default)
    frozen_lm = set(trainable_names(pd_model, freeze_lm_model=True))
    assert frozen_lm == {
        "multi_modal_projector.multimodal_projector.weight",
        "multi_modal_projector.multimodal_projector.bias",
        "language_model.embed_tokens.weight",
    }
    with_vision = set(trainable_names(pd_model, train_vision=True))
    assert "vision_tower.pos_embed" in with_vision
    assert "multi_modal_projector.conv_upsampler1.weight" in with_vision
