"""Without paddle: preprocessing/tokenizer work, the model import names both wheels."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
sys.modules["paddle"] = None  # simulate a machine without paddle
import ppgotocr
from ppgotocr.processing import build_query, normalize
from ppgotocr.tokenizer import GotOcrTokenizer
assert build_query("format") == "OCR with format: "
try:
    from ppgotocr import GotOcr2ForConditionalGeneration
except ImportError as exc:
    msg = str(exc)
    assert "paddlepaddle" in msg and "paddlepaddle-gpu" in msg, msg
    print("ok")
"""


def test_clear_import_error_without_paddle():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


CONVERT_CODE = """
import sys
sys.modules["paddle"] = None  # simulate a machine without paddle
from ppgotocr.cli import main
code = main(["convert", sys.argv[1], sys.argv[2]])
assert "paddle" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
print(code)
"""


def test_convert_works_without_paddle(tiny, tmp_path):
    out = tmp_path / "converted"
    run = subprocess.run(
        [sys.executable, "-c", CONVERT_CODE, str(tiny["hf_dir"]), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "0"
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
