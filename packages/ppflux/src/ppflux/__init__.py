"""ppflux: FLUX.1 for PPDiffusers (models, pipelines, ControlNet, weight conversion, LoRA)."""

from __future__ import annotations

__version__ = "0.5.5"

from ._compat import use_fast_mkl_path_on_amd  # noqa: E402

use_fast_mkl_path_on_amd()  # before anything calls MKL (see _compat)

_LAZY = {
    "FluxTransformer2DModel": "ppflux.models.transformer_flux",
    "FluxControlNetModel": "ppflux.models.controlnet_flux",
    "FluxMultiControlNetModel": "ppflux.models.controlnet_flux",
    "FlowMatchEulerDiscreteScheduler": "ppflux.scheduler",
    "calculate_shift": "ppflux.scheduler",
    "FluxPipeline": "ppflux.pipelines.pipeline_flux",
    "FluxImg2ImgPipeline": "ppflux.pipelines.pipeline_flux_img2img",
    "FluxInpaintPipeline": "ppflux.pipelines.pipeline_flux_inpaint",
    "FluxControlNetPipeline": "ppflux.pipelines.pipeline_flux_controlnet",
    "FluxControlNetImg2ImgPipeline": "ppflux.pipelines.pipeline_flux_controlnet",
    "FluxControlNetInpaintPipeline": "ppflux.pipelines.pipeline_flux_controlnet",
    "FluxFillPipeline": "ppflux.pipelines.pipeline_flux_fill",
    "FluxControlPipeline": "ppflux.pipelines.pipeline_flux_control",
    "FluxControlImg2ImgPipeline": "ppflux.pipelines.pipeline_flux_control",
    "FluxControlInpaintPipeline": "ppflux.pipelines.pipeline_flux_control",
    "FluxKontextPipeline": "ppflux.pipelines.pipeline_flux_kontext",
    "FluxKontextInpaintPipeline": "ppflux.pipelines.pipeline_flux_kontext",
    "FluxPriorReduxPipeline": "ppflux.pipelines.pipeline_flux_prior_redux",
    "ReduxImageEncoder": "ppflux.models.redux",
    "SiglipVisionModel": "ppflux.models.siglip",
    "FirstBlockCacheConfig": "ppflux.cache",
    "TaylorSeerCacheConfig": "ppflux.cache",
    "apply_first_block_cache": "ppflux.cache",
    "LayoutError": "ppflux.models.loading",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    # Lazy so that `ppflux --help` and the converter do not pay for importing paddle.
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return getattr(module, name)
    raise AttributeError(f"module 'ppflux' has no attribute {name!r}")
