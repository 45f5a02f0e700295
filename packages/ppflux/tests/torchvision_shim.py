"""Import torchvision's Python parts when its compiled ops cannot load.

The only torchvision 0.28 wheel on PyPI for torch 2.13 is a CUDA build; with the CPU torch wheel
its ``_C`` extension does not load and ``import torchvision`` raises "operator torchvision::nms
does not exist" (and so does everything that imports it, e.g. ``transformers.modeling_utils``).
diffusers' training script needs only ``torchvision.transforms`` (pure Python on PIL images), so
this imports torchvision with the fake-kernel registrations of its C ops skipped. Nothing else
is changed. Used by conftest.py and the training-script runner (``run_diffusers_script.py``).
"""

from __future__ import annotations

import importlib.util
import sys


def import_torchvision():
    """Return the torchvision module, or None when it is not installed."""
    if importlib.util.find_spec("torchvision") is None:
        return None
    import torch.library

    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        real = torch.library.register_fake
        torch.library.register_fake = lambda *a, **k: lambda fn: fn
        try:
            import torchvision
        finally:
            torch.library.register_fake = real
    return torchvision
