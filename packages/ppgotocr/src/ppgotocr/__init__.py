"""GOT-OCR2.0 in PaddlePaddle: model, inference modes, weight conversion, post-training."""

from __future__ import annotations

__version__ = "0.3.2"

__all__ = [
    "GotOcr2Config",
    "GotOcr2TextConfig",
    "GotOcr2VisionConfig",
    "GotOcr2ForConditionalGeneration",
    "GotOcrTokenizer",
    "GotOcrPipeline",
    "__version__",
]


def __getattr__(name):  # lazy: the tokenizer/preprocessing parts work without paddle
    if name in ("GotOcr2Config", "GotOcr2TextConfig", "GotOcr2VisionConfig"):
        from . import configuration_got_ocr2

        return getattr(configuration_got_ocr2, name)
    if name == "GotOcr2ForConditionalGeneration":
        from . import modeling_got_ocr2

        return getattr(modeling_got_ocr2, name)
    if name == "GotOcrTokenizer":
        from .tokenizer import GotOcrTokenizer

        return GotOcrTokenizer
    if name == "GotOcrPipeline":
        from .pipeline import GotOcrPipeline

        return GotOcrPipeline
    raise AttributeError(name)
