"""Child process of verify.run_predictor_isolated: FOLDER IN.npz OUT.npz USE_ONEDNN."""

from __future__ import annotations

import sys

import numpy as np


def main(argv: list[str]) -> int:
    folder, src, dst, onednn = argv
    from .verify import run_predictor

    data = np.load(src)
    inputs = {k: data[k] for k in data.files}
    outs = run_predictor(folder, inputs, use_onednn=onednn == "1")
    np.savez(dst, **{f"out{i}": o for i, o in enumerate(outs)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
