"""The narrow public API resolves to the documented objects."""

from __future__ import annotations

import x2paddle_llm


def test_public_names():
    from x2paddle_llm import (
        DecoderForCausalLM,
        InferenceRunner,
        convert,
        export_inference,
        generate,
    )

    assert callable(convert) and convert.__module__ == "x2paddle_llm.convert"
    assert callable(generate) and callable(export_inference)
    assert DecoderForCausalLM.__name__ == "DecoderForCausalLM" and InferenceRunner.__name__ == "InferenceRunner"
    assert x2paddle_llm.__version__ == "0.1.0"
    for name in x2paddle_llm.__all__:
        assert getattr(x2paddle_llm, name) is not None
