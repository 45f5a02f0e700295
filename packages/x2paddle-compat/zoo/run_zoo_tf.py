"""TensorFlow part of the zoo: rebuild test_benchmark's TF families as Keras models, freeze them
the TF2 way, convert, verify against TensorFlow. Runs in the TensorFlow venv (numpy<2,
protobuf<5): ``nox -s zoo-x2paddle-compat-tf`` or ``python tests/zoo/run_zoo_tf.py``.

Results go to benchmarks/results/zoo_tf.local.json and the table is printed; with ``--record``
to the committed zoo_tf.json, and the README table is re-rendered from it plus
benchmarks/results/zoo.json (the PyTorch/ONNX/Caffe part).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "tf"))

import run_zoo  # noqa: E402


def _verify(family: str, tmp: str):
    import keras_zoo

    from x2paddle_compat import convert_tensorflow, sources
    from x2paddle_compat.verify import verify

    pb = keras_zoo.write_family(family, Path(tmp) / "frozen.pb")
    out = convert_tensorflow(pb, Path(tmp) / "paddle")
    inputs = sources.tf_inputs(pb)
    refs = sources.run_tensorflow(pb, inputs)
    return verify(out, inputs, refs, atol=1e-5, rtol=1e-5)


def run(manifest: Path, only: set) -> list[dict]:
    import keras_zoo
    from tqdm import tqdm

    import x2paddle_compat  # noqa: F401  (applies the fixes)

    with open(manifest, newline="") as fh:
        families = [r["model"] for r in csv.DictReader(fh) if r["framework"] == "TensorFlow"]
    rows = []
    for family in tqdm(families, desc="zoo-tf"):
        if only and family not in only:
            continue
        if family not in keras_zoo.FAMILIES:
            rows.append(
                run_zoo._row(
                    "TensorFlow",
                    family,
                    None,
                    not_rebuilt=keras_zoo.MISSING.get(family, "no builder"),
                )
            )
            continue
        label = keras_zoo.FAMILIES[family][0]
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                rows.append(
                    run_zoo._row(
                        "TensorFlow",
                        family,
                        label,
                        report=_verify(family, tmp),
                        secs=time.perf_counter() - start,
                    )
                )
            except Exception as exc:  # a failure is a result of the zoo, not a crash
                traceback.print_exc()
                rows.append(
                    run_zoo._row(
                        "TensorFlow",
                        family,
                        label,
                        error=f"{type(exc).__name__}: {exc}",
                        secs=time.perf_counter() - start,
                    )
                )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--manifest", type=Path, default=run_zoo.DEFAULT_MANIFEST)
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace those families' rows in the existing zoo_tf.json",
    )
    p.add_argument("--no-readme", action="store_true")
    p.add_argument(
        "--record",
        action="store_true",
        help="update the committed results/zoo_tf.json and the README table (default: results/zoo_tf.local.json, table printed)",
    )
    args = p.parse_args(argv)
    if not args.manifest.exists():
        print(f"manifest not found: {args.manifest}", file=sys.stderr)
        return 2
    rows = run(args.manifest, set(args.only))
    out = run_zoo.TF_JSON
    if args.only and out.exists():
        if not args.merge:
            print(run_zoo.table(rows))
            return 0
        new = {r["family"]: r for r in rows}
        rows = [new.pop(r["family"], r) for r in json.loads(out.read_text())] + list(new.values())
    if not args.record:
        out = out.with_name("zoo_tf.local.json")
        out.write_text(json.dumps(rows, indent=1))
        print(run_zoo.table(rows))
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    others = (
        json.loads((run_zoo.RESULTS / "zoo.json").read_text())
        if (run_zoo.RESULTS / "zoo.json").exists()
        else []
    )
    md = (
        run_zoo.table(rows)
        if args.no_readme
        else run_zoo.write_readme(run_zoo.combined_rows(others))
    )
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
