"""The public API, pinned: adding or removing a name is a deliberate change of this list."""

from __future__ import annotations

import inspect

import ppgotocr

PUBLIC = [
    "GotOcr2Config",
    "GotOcr2TextConfig",
    "GotOcr2VisionConfig",
    "GotOcr2ForConditionalGeneration",
    "GotOcrTokenizer",
    "GotOcrPipeline",
    "__version__",
]


def test_all_is_pinned():
    assert sorted(ppgotocr.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(ppgotocr, name) is not None


def test_exported_forward_and_call_are_documented():
    from ppgotocr.training import _sft_loss_class

    model = ppgotocr.GotOcr2ForConditionalGeneration
    for fn in (model.forward, model.get_image_features, _sft_loss_class().forward):
        doc = inspect.getdoc(fn) or ""
        assert "Args:" in doc and "Returns:" in doc, fn.__qualname__
    for name in (
        "input_ids",
        "pixel_values",
        "image_features",
        "attention_mask",
        "past_key_values",
        "logits_to_keep",
    ):
        assert name in model.forward.__doc__
