"""Subprocess worker: run every graph of an export folder on given feeds (crash isolation)."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("feeds")
    ap.add_argument("out")
    ap.add_argument("--onednn", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    from .exporter import create_predictor, run_predictor

    data = np.load(args.feeds)
    graphs: dict[str, list] = {}
    for key in data.files:
        g, i = key.rsplit("::", 1)
        graphs.setdefault(g, []).append((int(i), data[key]))
    out, counts, errors, seconds = {}, {}, {}, {}
    for g, items in graphs.items():
        feeds = [x for _, x in sorted(items, key=lambda t: t[0])]
        t0 = time.perf_counter()
        try:
            res = run_predictor(create_predictor(args.folder, g, onednn=args.onednn,
                                                 threads=args.threads), feeds)
        except Exception as exc:
            errors[g] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"
            continue
        seconds[g] = round(time.perf_counter() - t0, 3)
        counts[g] = len(res)
        for i, r in enumerate(res):
            out[f"{g}::{i}"] = r
    meta = {"counts": counts, "errors": errors, "seconds": seconds}
    np.savez(args.out, __meta__=np.array(json.dumps(meta)), **out)


if __name__ == "__main__":
    main()
