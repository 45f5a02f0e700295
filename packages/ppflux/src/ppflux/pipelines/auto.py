"""Pick the ppflux pipeline class named in a model_index.json."""

from __future__ import annotations

import json
from pathlib import Path


def pipeline_class_for(folder: Path):
    from .pipeline_flux import FluxPipeline
    from .pipeline_flux_controlnet import FluxControlNetPipeline
    from .pipeline_flux_img2img import FluxImg2ImgPipeline
    from .pipeline_flux_inpaint import FluxInpaintPipeline

    name = json.loads((Path(folder) / "model_index.json").read_text()).get("_class_name", "")
    return {"FluxControlNetPipeline": FluxControlNetPipeline,
            "FluxImg2ImgPipeline": FluxImg2ImgPipeline,
            "FluxInpaintPipeline": FluxInpaintPipeline}.get(name, FluxPipeline)
