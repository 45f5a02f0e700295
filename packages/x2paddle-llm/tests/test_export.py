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
    from x2paddle_llm import _predictor

    root, _, _ = exported
    real_check = _predictor.Worker.check_cases

    def check(self, graph, settings, cases, *args, **kwargs):  # oneDNN wrong, like Paddle's R11
        result = real_check(self, graph, settings, cases, *args, **kwargs)
        return {**result, "ok": False, "reason": "simulated"} if settings.onednn else result

    monkeypatch.setattr(_predictor.Worker, "check_cases", check)
    with pytest.warns(RuntimeWarning, match="plain CPU kernels"):
        runner = InferenceRunner(root / "inf", mode="auto")
    assert runner.onednn is False and runner.choice["verified"]["onednn"]["ok"] is False
    assert runner.choice["repair"]["ok"] is False  # no pass deletion helps a simulated defect
    with pytest.raises(RuntimeError, match="no predictor configuration"):
        InferenceRunner(root / "inf", mode="onednn")


def test_auto_mode_uses_the_fastest_verified_configuration(exported):
    root, _, _ = exported
    runner = InferenceRunner(root / "inf", mode="auto")
    seconds = runner.choice["seconds"]
    assert set(seconds) == {"plain", "onednn"} and runner.choice["verified"]["plain"]["ok"]
    chosen = runner.settings.label
    other = "plain" if chosen == "onednn" else "onednn"
    # oneDNN only when more than 5 % faster (the margin), plain otherwise
    assert (seconds["onednn"] < 0.95 * seconds["plain"]) == (chosen == "onednn")
    assert seconds[chosen] <= seconds[other] or chosen == "plain"


def test_wrong_probe_is_never_silently_accepted(exported, tmp_path):
    import shutil

    root, _, _ = exported
    bad = tmp_path / "inf"
    shutil.copytree(root / "inf", bad)
    probe = dict(np.load(bad / PROBE_NAME))
    probe["step1_out0"] = probe["step1_out0"] + 0.5  # the first decode step's logits
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


def test_two_generations_interleaved_on_one_runner_keep_their_caches(exported):
    """The runner shares each step's caches with the predictor and writes the new ones into the
    previous step's input tensors: two generations stepped alternately on one runner (same
    shapes, so they swap those tensors) each get dygraph's greedy tokens."""
    root, _, _ = exported
    runner = InferenceRunner(root / "inf", mode="plain")
    model = DecoderForCausalLM.from_pretrained(root / "pd")
    prompts = random_prompts(seed=14, lengths=(6, 6))
    expected = [
        generate(model, [p], max_new_tokens=5, eos_token_id=[], pad_token_id=0)[0] for p in prompts
    ]
    state = []
    for prompt in prompts:
        backend = runner.backend(reserve=5)
        ids, mask = left_pad([prompt], 0)
        state.append([backend, mask, [int(np.argmax(backend.prefill(ids, mask)[0]))]])
    for _ in range(4):
        for entry in state:
            backend, mask, tokens = entry
            mask = np.concatenate([mask, np.ones((1, 1), np.int64)], axis=1)
            logits = backend.decode(np.array([[tokens[-1]]], np.int64), mask)
            entry[1] = mask
            tokens.append(int(np.argmax(logits[0])))
    assert [tokens for _, _, tokens in state] == expected


def test_static_cache_keeps_its_shape_and_grows_past_its_reserve(exported):
    """Every decode step feeds the predictor the same shapes (the preallocated cache, written in
    place); decoding past the reserved room grows the cache once and the tokens stay dygraph's."""
    root, _, _ = exported
    runner = InferenceRunner(root / "inf", mode="plain")
    shapes = []
    real_run = runner._run

    def run(predictor, ids, mask, start, keys, values):
        shapes.append((ids.shape, mask.shape, tuple(keys.shape), int(start)))
        return real_run(predictor, ids, mask, start, keys, values)

    runner._run = run
    prompts = random_prompts(seed=13, lengths=(5, 9))
    from x2paddle_llm.generation import GenerationConfig, generate_with_backend

    cfg = GenerationConfig(max_new_tokens=30, eos_token_id=[], pad_token_id=0)
    # reserve 4: capacity 9 + 4 -> 32 slots, so decoding 30 tokens must grow it once (to 64)
    tokens = generate_with_backend(runner.backend(reserve=4), prompts, cfg)
    assert tokens == generate(
        DecoderForCausalLM.from_pretrained(root / "pd"),
        prompts,
        max_new_tokens=30,
        eos_token_id=[],
        pad_token_id=0,
    )
    decode = shapes[1:]
    assert [s[3] for s in decode] == list(range(9, 9 + 29))  # written at the next free slot
    capacities = [s[1][1] for s in decode]
    assert capacities[:23] == [32] * 23 and capacities[23:] == [64] * 6
    assert {s[2][3] for s in decode} == {32, 64} and all(s[0] == (2, 1) for s in decode)


@pytest.mark.parametrize("variant", ["deepseek_v3", "gemma2"])
def test_static_cache_predictor_matches_transformers(tmp_path, variant):
    """MLA + routed MoE (DeepSeek-V3) and alternating sliding windows (Gemma 2) through the
    preallocated cache, 24 greedy tokens of a left-padded batch against transformers."""
    ref = build_hf_model(tmp_path / "hf", variant)
    convert(tmp_path / "hf", tmp_path / "pd", progress=False)
    export_inference(tmp_path / "pd", tmp_path / "inf")
    runner = InferenceRunner(tmp_path / "inf", mode="plain")
    prompts = random_prompts(seed=14, lengths=(4, 10))
    ids, mask = left_pad(prompts, 0)
    ref.generation_config.eos_token_id = None
    with torch.no_grad():
        hf = ref.generate(
            torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            do_sample=False,
            max_new_tokens=24,
            pad_token_id=0,
        )[:, ids.shape[1] :].tolist()
    assert runner.generate(prompts, max_new_tokens=24, eos_token_id=[], pad_token_id=0) == hf


def test_export_of_an_older_version_is_refused(exported, tmp_path):
    import json
    import shutil

    root, _, _ = exported
    old = tmp_path / "inf"
    shutil.copytree(root / "inf", old)
    meta_path = old / "x2paddle_llm_inference.json"
    meta = json.loads(meta_path.read_text())
    del meta["cache"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="export the converted folder again"):
        InferenceRunner(old)


@pytest.mark.parametrize("window", [None, 3])
def test_eager_and_traced_attention_bias_agree(window):
    """The eager path builds the attention bias with numpy on the host, the exported step with
    tensor ops; both must give the same bias on the same inputs: left padding, queries at the
    end or in the middle of a preallocated cache (free slots after them), a sliding window."""
    import paddle

    from x2paddle_llm.blocks import attention_bias

    def traced(mask2d, ids, start):
        return attention_bias(mask2d, paddle.shape(ids)[1], window, start)

    spec = [
        paddle.static.InputSpec([None, None], "int64", "mask2d"),
        paddle.static.InputSpec([None, None], "int64", "ids"),
        paddle.static.InputSpec([], "int64", "start"),
    ]
    static = paddle.jit.to_static(traced, input_spec=spec, full_graph=True)
    mask = np.ones((3, 12), np.int64)
    mask[1, :4] = 0  # left padding
    mask[2, :1] = 0
    mask[:, 10:] = 0  # free cache slots after the last filled one
    cases = [(10, 0), (1, 8), (3, 6), (1, 9)]  # (query length, start)
    for query_len, start in cases:
        ids = np.zeros((3, query_len), np.int64)
        eager = attention_bias(paddle.to_tensor(mask), query_len, window, start).numpy()
        graph = static(
            paddle.to_tensor(mask), paddle.to_tensor(ids), paddle.to_tensor(start, "int64")
        ).numpy()
        assert eager.shape == graph.shape == (3, 1, query_len, 12)
        np.testing.assert_array_equal(eager, graph)
        # not a trivial bias: padding and later keys masked, each query's own key visible
        assert (eager[1, 0, :, :4] < 0).all()
        for i in range(query_len):
            assert eager[0, 0, i, start + i] == 0 and (eager[:, 0, i, start + i + 1 :] < 0).all()
            if window:
                assert (eager[:, 0, i, : max(start + i - window + 1, 0)] < 0).all()
    # the default start (the last query_len slots) as the eager caller passes it
    eager = attention_bias(paddle.to_tensor(mask), 2, window).numpy()
    np.testing.assert_array_equal(
        eager, attention_bias(paddle.to_tensor(mask), 2, window, 10).numpy()
    )
