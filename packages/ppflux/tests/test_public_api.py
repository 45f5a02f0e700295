"""The public names of ppflux: changing them is a decision, not an accident."""

from __future__ import annotations

import ppflux

PUBLIC = [
    "__version__",
    "FluxTransformer2DModel",
    "FluxControlNetModel",
    "FluxMultiControlNetModel",
    "FlowMatchEulerDiscreteScheduler",
    "calculate_shift",
    "FluxPipeline",
    "FluxImg2ImgPipeline",
    "FluxInpaintPipeline",
    "FluxControlNetPipeline",
    "FluxControlNetImg2ImgPipeline",
    "FluxControlNetInpaintPipeline",
    "FluxFillPipeline",
    "FluxControlPipeline",
    "FluxControlImg2ImgPipeline",
    "FluxControlInpaintPipeline",
    "FluxKontextPipeline",
    "FluxKontextInpaintPipeline",
    "FluxPriorReduxPipeline",
    "ReduxImageEncoder",
    "SiglipVisionModel",
    "FirstBlockCacheConfig",
    "TaylorSeerCacheConfig",
    "apply_first_block_cache",
    "LayoutError",
]


def test_all_is_pinned():
    assert ppflux.__all__ == PUBLIC


def test_every_public_name_resolves_and_is_documented():
    for name in PUBLIC[1:]:
        obj = getattr(ppflux, name)
        assert obj.__module__.startswith("ppflux."), name
        if name.endswith("Pipeline"):
            assert obj.__call__.__doc__ and "Returns" in obj.__call__.__doc__, name
        if name.endswith("Model"):
            assert obj.forward.__doc__, name


def test_version_matches_the_distribution():
    from importlib.metadata import version

    assert ppflux.__version__ == version("ppflux")
