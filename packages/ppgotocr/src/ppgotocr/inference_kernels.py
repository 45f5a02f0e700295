"""Which kernels each exported program runs on: verified against the probe, then chosen by speed.

Built on the shared predictor set-up (``_predictor``: settings, a crash-isolated worker that
checks a configuration against reference outputs, interleaved timing, ``choose_fastest``).
What ppgotocr adds here:

* the decoder step is verified on every probe call (prefill and decode steps) but timed on the
  decode steps only, because decoding is what a page spends its time on;
* the choice is recorded in the export folder (``kernels.json``) with the machine it was made
  on (Paddle version, CPU, thread count, mode), made again when any of those differ, and
  reused otherwise, so start-up does not time the programs every run.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from . import _predictor
from ._predictor import Settings

KERNELS_NAME = "kernels.json"
MODES = ("auto", "onednn", "plain")
# oneDNN is taken only when it is more than this much faster than the plain kernels (noise)
MARGIN = 0.05
WORKER_TIMEOUT = 900.0  # seconds per request: a real-size vision program runs ~20 s per view


def machine_signature(threads: int, mode: str) -> dict:
    """What a recorded choice depends on."""
    import paddle

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "paddle": paddle.__version__,
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "threads": threads,
        "mode": mode,
    }


def candidates(mode: str, threads: int) -> list[Settings]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    plain, onednn = Settings(False, [], threads), Settings(True, [], threads)
    return {"auto": [plain, onednn], "onednn": [onednn], "plain": [plain]}[mode]


def choose_program(
    graph,
    cases,
    *,
    timing_cases=None,
    mode: str = "auto",
    threads: int = 1,
    tolerance: float = 1e-4,
    repeats: int = 5,
    warmup: int = 1,
) -> dict:
    """Verify each candidate on ``cases`` (in a worker), time the verified ones on
    ``timing_cases`` (default: ``cases``) and return ``_predictor.choose_fastest``'s record,
    with ``verified`` holding every candidate's check on all ``cases``."""
    with _predictor.Worker(WORKER_TIMEOUT) as worker:
        return _predictor.choose_fastest(
            graph,
            cases,
            timing_cases=timing_cases,
            candidates=candidates(mode, threads),
            repair=False,
            tolerance=tolerance,
            threads=threads,
            repeats=repeats,
            warmup=warmup,
            margin=MARGIN,
            worker=worker,
        )


def load_recorded(folder: Path, signature: dict) -> dict | None:
    """The recorded per-program choices when they were made under ``signature``."""
    path = Path(folder) / KERNELS_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("signature") != signature:
        return None
    programs = data.get("programs")
    return programs if isinstance(programs, dict) else None


def record(folder: Path, signature: dict, programs: dict) -> bool:
    """Write ``kernels.json`` atomically; False (with a note) when the folder is read-only."""
    path = Path(folder) / KERNELS_NAME
    tmp = path.with_name(f".{KERNELS_NAME}.{os.getpid()}.part")
    try:
        tmp.write_text(
            json.dumps({"signature": signature, "programs": programs}, indent=2) + "\n",
            encoding="utf-8",
        )
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        print(
            f"note: {path}: could not record the kernel choice ({exc.strerror}); it is made "
            "again at the next start",
            file=sys.stderr,
        )
        return False
    return True


def summary(choice: dict) -> str:
    """e.g. ``plain CPU kernels (chosen by speed: plain 4.1 ms, onednn 9.8 ms)``."""
    settings = Settings.from_dict(choice["settings"])
    name = "oneDNN" if settings.onednn else "plain CPU kernels"
    secs = {k: v for k, v in (choice.get("seconds") or {}).items() if v is not None}
    if len(secs) > 1:
        timed = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in secs.items())
        return f"{name} (chosen by speed: {timed})"
    failed = [k for k, v in (choice.get("verified") or {}).items() if not v.get("ok")]
    if failed:
        return f"{name} ({', '.join(failed)} failed the check)"
    return name
