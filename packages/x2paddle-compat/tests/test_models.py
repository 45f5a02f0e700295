"""Representative models, random weights: converted and verified three ways.

Tolerance: max|paddle - source| <= 1e-5 + 1e-5 * max|source| for dygraph, jit.load and
the predictor configuration chosen by verification (oneDNN or not).
"""

from __future__ import annotations

import pytest
import torch
import torch_models
from harness import check_onnx, check_torch, export_onnx

TORCH_CASES = [
    "resnet",
    "mobilenet_v3",
    "shufflenet",
    "upsample_seg",
    "lstm",
    "vit",
    "sdpa_gqa",
    "transformer_encoder",
    "gather_index",
]

ONNX_CASES = [
    ("resnet", 13),
    ("mobilenet_v2", 17),
    ("small_cnn", None),
    ("gru", 13),
    ("upsample_seg", 17),
    ("vit", 18),
    ("lstm", None),
]


def _assert_verified(report):
    assert report.ok, report.table()
    for name in ("dygraph", "jit"):
        assert report.results[name].ok, report.table()
    chosen = "predictor+onednn" if report.predictor_config["use_onednn"] else "predictor"
    assert report.results[chosen].ok, report.table()


@pytest.mark.parametrize("family", TORCH_CASES)
def test_torch_model(family, tmp_path):
    module, inputs = torch_models.build(family)
    _assert_verified(check_torch(module, inputs, tmp_path))


@pytest.mark.parametrize(
    "family,opset", ONNX_CASES, ids=[f"{f}-opset{o or 'default'}" for f, o in ONNX_CASES]
)
def test_onnx_model(family, opset, tmp_path):
    module, inputs = torch_models.build(family)
    path = export_onnx(module, inputs, tmp_path / "m.onnx", opset)
    _assert_verified(check_onnx(path, tmp_path))


def test_upsample_predictor_onednn_defect_is_caught(tmp_path):
    """R12: Paddle 3.3.1's oneDNN bilinear_interp fails; verification must notice and
    record a predictor configuration without oneDNN."""
    module, inputs = torch_models.build("upsample_seg")
    report = check_torch(module, inputs, tmp_path)
    assert not report.results["predictor+onednn"].ok
    assert report.predictor_config["use_onednn"] is False
    assert report.results["predictor"].ok


def test_transformers5_llama_gqa_sdpa_mask(tmp_path):
    """LlamaForCausalLM (transformers 5, SDPA, 4 query / 2 KV heads) with attention_mask:
    R21 fixes make it convert; Paddle 3.3.1's oneDNN predictor is silently wrong on it (R11),
    which verification must detect and avoid."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
        use_cache=False,
    )
    llama = transformers.LlamaForCausalLM(config).eval()

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.llama = llama

        def forward(self, ids, mask):
            return self.llama(input_ids=ids, attention_mask=mask, use_cache=False).logits

    ids = torch.randint(0, 64, (1, 8), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(1, 8, dtype=torch.int64)
    report = check_torch(Logits().eval(), [ids, mask], tmp_path)
    _assert_verified(report)
    assert report.predictor_config["use_onednn"] is False, report.table()  # R11
