import os
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GLOG_minloglevel", "2")
# MDTC's oneDNN predictor can deadlock after corrupting the heap; don't wait 120 s for it
os.environ.setdefault("SPEECH_PIR_EXPORT_PREDICT_TIMEOUT", "20")
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def export_root(tmp_path_factory):
    """One folder of exports per test session: test_export.py fills it (with its oneDNN
    checks); later modules reuse what is there instead of exporting again."""
    return tmp_path_factory.mktemp("exports")


def ensure_export(root, name, config=None):
    import speech_pir_export as spe
    from speech_pir_export import configs

    out = root / (config or name)
    if not (out / "export.json").is_file():
        m = spe.export(name, configs.path(config or name), out, onednn_check=False, progress=False)
        assert m["predictor"]["verified"], m["verification"]
    return out
