"""Pick the ppflux pipeline class named in a model_index.json."""

from __future__ import annotations

import json
from pathlib import Path


def pipeline_class_for(folder: Path):
    """The ppflux class of the folder's ``_class_name`` (FluxPipeline when unknown)."""
    import ppflux

    name = json.loads((Path(folder) / "model_index.json").read_text()).get("_class_name", "")
    if name.endswith("Pipeline") and name in ppflux.__all__:
        return getattr(ppflux, name)
    return ppflux.FluxPipeline
