"""Shared fixtures: tiny random FLUX components built with diffusers, saved in its layout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from reference import transformer_inputs  # noqa: E402,F401  (tests import it from here)


@pytest.fixture(scope="session")
def dev_pipe_dir(tmp_path_factory) -> Path:
    import reference

    return reference.build_pipeline_folder(tmp_path_factory.mktemp("flux-dev"), True)


@pytest.fixture(scope="session")
def schnell_transformer_dir(tmp_path_factory) -> Path:
    import reference

    out = tmp_path_factory.mktemp("flux-schnell") / "transformer"
    reference.make_transformer(False, seed=7).save_pretrained(out)
    return out


def to_torch(inputs: dict) -> dict:
    return {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}


def to_paddle(inputs: dict) -> dict:
    import paddle

    return {k: (paddle.to_tensor(v) if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}


_PARITY: dict = {}


@pytest.fixture
def parity(request):
    """Record a measured difference: parity(name, value, tolerance). With PPFLUX_PARITY_OUT set,
    all records are written there as JSON at the end of the session (README's table)."""

    def record(name, value, tolerance):
        _PARITY[name] = {
            "max_abs_diff": float(value),
            "tolerance": tolerance,
            "test": request.node.nodeid,
        }

    return record


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("PPFLUX_PARITY_OUT")
    if out and _PARITY:
        import json

        Path(out).write_text(json.dumps(_PARITY, indent=2, sort_keys=True))


# A CUDA-only torchvision next to the CPU torch would break transformers' import; runs before
# any test module is imported.
import torchvision_shim  # noqa: E402

torchvision_shim.import_torchvision()
