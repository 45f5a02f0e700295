"""Paddle Inference export: same tokens as dygraph (and transformers), verified predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import build_hf_model, random_prompts
from x2paddle_llm._atomic import OutputExistsError
from x2paddle_llm.convert import convert
from x2paddle_llm.export import PROBE_NAME, InferenceRunner, export_inference
from x2paddle_llm.generation import generate, left_pad
from x2paddle_llm.modeling_decoder import DecoderForCausalLM


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    ref = build_hf_model(root / "hf", "mistral")  # sliding window 6: exercised by 16 + 11 tokens
    convert(root / "hf", root / "pd", progress=False)
    meta = export_inference(root / "pd", root / "inf")
    return root, ref, meta


def test_export_layout(exported):
    root, _, meta = exported
    assert meta["model_file"] == "model.json"  # PIR
    assert (root / "inf" / "model.pdiparams").is_file() and (root / "inf" / PROBE_NAME).is_file()


@pytest.mark.parametrize("mode", ["auto", "plain"])
def test_predictor_generates_same_tokens_as_dygraph_and_transformers(exported, mode):
    root, ref, _ = exported
    runner = InferenceRunner(root / "inf", mode=mode)
    assert runner.probe_diff <= 1e-4
    prompts = random_prompts(seed=9, lengths=(4, 11))
    kw = dict(max_new_tokens=16, eos_token_id=[], pad_token_id=0)
    via_predictor = runner.generate(prompts, **kw)
    via_dygraph = generate(DecoderForCausalLM.from_pretrained(root / "pd"), prompts, **kw)
    assert via_predictor == via_dygraph
    ids, mask = left_pad(prompts, 0)
    ref.generation_config.eos_token_id = None
    with torch.no_grad():
        hf = ref.generate(
            torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            do_sample=False,
            max_new_tokens=16,
            pad_token_id=0,
        )[:, ids.shape[1] :].tolist()
    assert via_predictor == hf
    # dynamic batch: a batch of three and a batch of one through the same predictor
    three = random_prompts(seed=10, lengths=(3, 8, 5))
    assert runner.generate(three, **kw) == generate(
        DecoderForCausalLM.from_pretrained(root / "pd"), three, **kw
    )


def test_onednn_disagreement_falls_back(exported, monkeypatch):
    root, _, _ = exported
    real_check = InferenceRunner._check

    def check(self, predictor):  # pretend the oneDNN predictor is wrong, like Paddle 3.3.1's R11
        diff = real_check(self, predictor)
        return diff + 1.0 if len(self.attempts) == 0 else diff

    monkeypatch.setattr(InferenceRunner, "_check", check)
    with pytest.warns(RuntimeWarning, match="plain CPU kernels"):
        runner = InferenceRunner(root / "inf", mode="auto")
    assert runner.onednn is False and runner.attempts[0]["max_abs_diff"] > 1
    with pytest.raises(RuntimeError, match="no predictor configuration"):
        InferenceRunner(root / "inf", mode="onednn")


def test_wrong_probe_is_never_silently_accepted(exported, tmp_path):
    import shutil

    root, _, _ = exported
    bad = tmp_path / "inf"
    shutil.copytree(root / "inf", bad)
    probe = dict(np.load(bad / PROBE_NAME))
    probe["step1_logits"] = probe["step1_logits"] + 0.5
    np.savez(bad / PROBE_NAME, **probe)
    with pytest.raises(RuntimeError, match="no predictor configuration"):
        InferenceRunner(bad)


def test_export_refuses_existing_folder(exported):
    root, _, _ = exported
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_inference(root / "pd", root / "inf")


def test_export_qwen3_tied(tmp_path):
    build_hf_model(tmp_path / "hf", "qwen3-tied")
    convert(tmp_path / "hf", tmp_path / "pd", progress=False)
    export_inference(tmp_path / "pd", tmp_path / "inf")
    runner = InferenceRunner(tmp_path / "inf")
    prompts = random_prompts(seed=11, lengths=(6, 2))
    kw = dict(max_new_tokens=12, eos_token_id=[], pad_token_id=0)
    assert runner.generate(prompts, **kw) == generate(
        DecoderForCausalLM.from_pretrained(tmp_path / "pd"), prompts, **kw
    )


def _one_variant_per_family():
    from conftest import VARIANTS

    seen = {}
    for name, (model_type, _) in VARIANTS.items():
        seen.setdefault(model_type, name)
    return sorted(seen.values())


@pytest.mark.parametrize("variant", _one_variant_per_family())
def test_every_family_exports_and_the_predictor_agrees(tmp_path, variant):
    """PIR export with the KV-cache step, probed at start-up, then the same greedy tokens as dygraph
    for a left-padded batch (plain CPU kernels: the probe alone covers oneDNN, tested above)."""
    build_hf_model(tmp_path / "hf", variant)
    convert(tmp_path / "hf", tmp_path / "pd", progress=False)
    export_inference(tmp_path / "pd", tmp_path / "inf")
    runner = InferenceRunner(tmp_path / "inf", mode="plain")
    assert runner.probe_diff <= 1e-4
    prompts = random_prompts(seed=12, lengths=(3, 7))
    kw = dict(max_new_tokens=6, eos_token_id=[], pad_token_id=0)
    assert runner.generate(prompts, **kw) == generate(
        DecoderForCausalLM.from_pretrained(tmp_path / "pd"), prompts, **kw
    )
