"""The compiled grouped matrix product (``x2paddle_llm.kernels``) and the stacked MoE experts
that use it: numbers against plain products, gradients, refusals, the fallback when the kernel
is off, and exports that record (and need) it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import build_hf_model, random_prompts

from x2paddle_llm import kernels
from x2paddle_llm.blocks import MoE
from x2paddle_llm.convert import convert
from x2paddle_llm.errors import X2PaddleLLMError
from x2paddle_llm.export import META_NAME, InferenceRunner, export_inference
from x2paddle_llm.generation import generate, left_pad
from x2paddle_llm.modeling_decoder import DecoderForCausalLM

pytestmark = pytest.mark.skipif(
    not kernels.available(), reason=f"compiled kernels unavailable: {kernels.unavailable_reason()}"
)


def _reference(x, bounds, w):
    out = np.zeros((x.shape[0], w.shape[2]), np.float32)
    for e in range(w.shape[0]):
        out[bounds[e] : bounds[e + 1]] = x[bounds[e] : bounds[e + 1]] @ w[e]
    return out


def test_grouped_matmul_matches_per_expert_products_and_their_gradients():
    import paddle

    rng = np.random.default_rng(0)
    # experts 1 and 3 empty; one row before the first expert's and one after the last's
    bounds = np.array([1, 3, 3, 6, 6, 8], np.int64)
    x = rng.standard_normal((9, 16)).astype(np.float32)
    w = rng.standard_normal((5, 16, 12)).astype(np.float32)
    g = rng.standard_normal((9, 12)).astype(np.float32)
    xt, wt = paddle.to_tensor(x, stop_gradient=False), paddle.to_tensor(w, stop_gradient=False)
    out = kernels.grouped_matmul(xt, paddle.to_tensor(bounds), wt)
    np.testing.assert_allclose(out.numpy(), _reference(x, bounds, w), rtol=1e-5, atol=1e-5)
    assert not out.numpy()[[0, 8]].any()  # rows outside every expert: zero

    dx, dw = paddle.grad(out, [xt, wt], paddle.to_tensor(g))
    ref_dx, ref_dw = np.zeros_like(x), np.zeros_like(w)
    for e in range(5):
        s, t = bounds[e], bounds[e + 1]
        ref_dx[s:t] = g[s:t] @ w[e].T
        ref_dw[e] = x[s:t].T @ g[s:t]
    np.testing.assert_allclose(dx.numpy(), ref_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw.numpy(), ref_dw, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "bounds, message",
    [([0, 2, 1, 4], "non-decreasing"), ([0, 2, 9, 9], "non-decreasing"), ([0, 4], "needs experts")],
)
def test_grouped_matmul_refuses_bad_bounds(bounds, message):
    import paddle

    x, w = paddle.randn([4, 8]), paddle.randn([3, 8, 5])
    with pytest.raises(Exception, match=message):
        kernels.grouped_matmul(x, paddle.to_tensor(np.array(bounds, np.int64)), w)


def _stacked_layers(model):
    return [m for m in model.sublayers() if isinstance(m, MoE) and m.stacked_in is not None]


@pytest.fixture
def kernels_off(monkeypatch):
    """This process as one where the kernels cannot be loaded (the operator stays registered
    in Paddle, so whatever still runs it would be found out)."""
    monkeypatch.setattr(kernels, "_state", {"error": "off for this test"})


@pytest.fixture(scope="module")
def moe_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("moe")
    build_hf_model(tmp / "hf", "qwen3_moe")
    convert(tmp / "hf", tmp / "pd", progress=False)
    return tmp / "pd"


def test_stacked_and_per_expert_moe_agree(moe_dir, monkeypatch):
    import paddle

    stacked = DecoderForCausalLM.from_pretrained(moe_dir)
    assert _stacked_layers(stacked) and all(m.experts is None for m in _stacked_layers(stacked))
    monkeypatch.setattr(kernels, "_state", {"error": "off for this test"})
    plain = DecoderForCausalLM.from_pretrained(moe_dir)
    assert not _stacked_layers(plain)
    prompts = random_prompts(seed=5, lengths=(3, 11))  # prefill with many rows per expert
    ids, mask = left_pad(prompts, 0)
    with paddle.no_grad():
        a, b = (
            m(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask))[0]
            for m in (stacked, plain)
        )
    keep = mask.astype(bool)
    assert np.abs(a.numpy() - b.numpy())[keep].max() <= 1e-5
    kw = dict(max_new_tokens=12, eos_token_id=[], pad_token_id=0)
    assert generate(stacked, prompts, **kw) == generate(plain, prompts, **kw)


def test_export_records_the_kernel_and_refuses_clearly_without_it(moe_dir, tmp_path, monkeypatch):
    meta = export_inference(moe_dir, tmp_path / "inf")
    assert meta["kernels"] == ["x2pl_grouped_matmul"]
    assert json.loads((tmp_path / "inf" / META_NAME).read_text())["kernels"] == meta["kernels"]
    # auto: the plain and oneDNN candidates are checked in worker processes, which register
    # the kernel library from the environment this process set when it loaded it
    runner = InferenceRunner(tmp_path / "inf", mode="auto")
    assert runner.probe_diff <= 1e-4
    assert all(r["ok"] for r in runner.choice["verified"].values()), runner.choice["verified"]

    monkeypatch.setattr(kernels, "_state", {"error": "off for this test"})
    with pytest.raises(kernels.KernelUnavailable, match="X2PADDLE_LLM_KERNELS=0") as info:
        InferenceRunner(tmp_path / "inf", mode="plain")
    assert isinstance(info.value, X2PaddleLLMError)  # the CLI prints one line, exit status 2
    assert info.value.path == str(tmp_path / "inf")


def test_a_failed_build_warns_once_and_falls_back(moe_dir, monkeypatch):
    def no_compiler(paddle):
        raise RuntimeError("g++: command not found")

    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setattr(kernels, "_build", no_compiler)
    with pytest.warns(RuntimeWarning, match="g\\+\\+: command not found"):
        assert kernels.load() is None
    assert not kernels.available()  # no second build, no second warning
    assert kernels.unavailable_reason() == "RuntimeError: g++: command not found"
    assert not _stacked_layers(DecoderForCausalLM.from_pretrained(moe_dir))


def test_export_without_the_kernel_is_paddle_operators_only(moe_dir, tmp_path, kernels_off):
    meta = export_inference(moe_dir, tmp_path / "inf")
    assert meta["kernels"] == []
    model_file = (tmp_path / "inf" / meta["model_file"]).read_text()
    assert "x2pl_grouped_matmul" not in model_file
    runner = InferenceRunner(tmp_path / "inf", mode="plain")
    prompts = random_prompts(seed=6, lengths=(4, 6))
    kw = dict(max_new_tokens=6, eos_token_id=[], pad_token_id=0)
    assert runner.generate(prompts, **kw) == generate(
        DecoderForCausalLM.from_pretrained(moe_dir), prompts, **kw
    )


def test_switch_turns_the_kernels_off(monkeypatch):
    for value in ("0", "off", "False"):
        monkeypatch.setenv(kernels.ENV_SWITCH, value)
        assert not kernels.enabled()
    monkeypatch.setenv(kernels.ENV_SWITCH, "1")
    assert kernels.enabled()
