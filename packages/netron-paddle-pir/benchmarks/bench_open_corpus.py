"""Open time of real Paddle models in headless Chromium: netron-paddle-pir vs netron's paddle.js.

The models come from the corpus file (tests/models.json): every entry tagged ``bench`` plus a
choice of the CI ones, all written by ``paddle.jit.save`` (paddle.vision and paddle.text models,
BERT-style masked encoders, encoder stacks of 1,200 to 10,000 ops, a 250-block residual MLP).
Each model is served twice by the launcher (our reader; netron's own paddle.js) and opened in
one Chromium until the graph is drawn: one discarded warm-up open each, then ``--rounds``
interleaved rounds, every other one in reverse order (so in half the rounds upstream opens a
model first, in the other half ours; since 0.4.4's second pair of runs). Writes the medians, their ratio, the paired statistics of the rounds (the
median of the per-round differences, ours - upstream, and how many rounds ours was faster) and the
machine load to ``--output``, for
three clocks: the wall time from ``page.goto()`` (polled), the page's own clock at the drawn graph,
and the reader's part of it (from Netron's request of ``paddle.js`` to the drawn graph; before that
request both pages run the same Netron code).

With ``--control NAME ...`` those models are also opened a third time per round with upstream's
reader again, from another port (an A/A control, since 0.4.4's runs 5-6): the differences
between upstream and this identical copy (``control_*``: medians, upstream's over the control's,
paired differences upstream - control) show how far two identical pages drift apart in the same
run, the noise floor for the ours/upstream ratios.

    python benchmarks/bench_open_corpus.py [--rounds 2] [--only NAME ...] [--control NAME ...] [--record]

By default the result goes to ``benchmarks/results/open_corpus.local.json`` (not committed);
``--record`` writes the committed ``open_corpus.json``. Before timing, the script waits up to
``--wait`` seconds for the 1-minute load average to fall below ``--quiet-load`` and records
whether it did.

Needs paddle, node, chromium and tests/browser/node_modules (tests/setup_browser.sh).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
CI_CHOICE = [
    "cnn_bn",
    "lstm",
    "transformer",
    "dtypes",
    "nested_cf",
    "static_separate",
    "shufflenet",
    "tagger",
    "control_flow",
    "bert_2_post",
    "resnet50",
    "mobilenet_v3",
    "encoder12",
    "encoder118",
]


def chosen_entries(only):
    from netron_paddle_pir.corpus import load_spec

    entries = load_spec(PACKAGE / "tests" / "models.json")
    names = lambda e: e["target"].split("/")[0]  # noqa: E731
    picked = [e for e in entries if "bench" in e.get("tags", []) or names(e) in CI_CHOICE]
    return [e for e in picked if not only or names(e) in only]


def _timings(mine: dict, theirs: dict, kind: str) -> dict:
    """Both readers' times ``<kind>ms`` of one model, their medians and upstream's over ours."""
    ours = statistics.median(x for x in mine[f"{kind}ms"] if x is not None)
    upstream = statistics.median(x for x in theirs[f"{kind}ms"] if x is not None)
    return {
        f"ours_{kind}ms": mine[f"{kind}ms"],
        f"upstream_{kind}ms": theirs[f"{kind}ms"],
        f"ours_{kind}median_ms": ours,
        f"upstream_{kind}median_ms": upstream,
        f"ratio_{kind}upstream_over_ours": round(upstream / ours, 2),
        **_paired(mine[f"{kind}ms"], theirs[f"{kind}ms"], kind),
    }


def _paired(ours: list, upstream: list, kind: str) -> dict:
    """The rounds as pairs: the two readers' opens of one round ran one after the other, so the
    per-round difference (ours - upstream, ms) cancels what both of them met in that round."""
    pairs = [(a, b) for a, b in zip(ours, upstream) if a is not None and b is not None]
    differences = [a - b for a, b in pairs]
    return {
        f"paired_{kind}differences_ms": differences,
        f"paired_{kind}median_difference_ms": statistics.median(differences) if pairs else None,
        f"paired_{kind}rounds_ours_faster": sum(1 for d in differences if d < 0),
        f"paired_{kind}rounds_equal": sum(1 for d in differences if d == 0),
        f"paired_{kind}rounds": len(pairs),
    }


def _control(theirs: dict, control: dict, kind: str) -> dict:
    """Upstream's times against the control's (upstream's reader again, on another port)."""
    upstream = statistics.median(x for x in theirs[f"{kind}ms"] if x is not None)
    copy = statistics.median(x for x in control[f"{kind}ms"] if x is not None)
    paired = _paired(theirs[f"{kind}ms"], control[f"{kind}ms"], kind)
    return {
        f"control_{kind}ms": control[f"{kind}ms"],
        f"control_{kind}median_ms": copy,
        f"ratio_{kind}control_over_upstream": round(copy / upstream, 2),
        # upstream - control per round; "ours_faster" counts the rounds upstream was faster.
        **{f"control_{key}": value for key, value in paired.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds (default: 2)")
    parser.add_argument("--only", nargs="*", help="model names (default: all bench models)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="result file (default: benchmarks/results/open_corpus.local.json, or the "
        "committed open_corpus.json with --record)",
    )
    parser.add_argument(
        "--control",
        nargs="*",
        default=[],
        help="models also opened with upstream's reader a second time, from another port (an "
        "A/A control of the noise between identical pages; default: none)",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the committed benchmarks/results/open_corpus.json (default: off)",
    )
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=1.5,
        help="wait (up to --wait seconds) until the 1-minute load is below this (default: 1.5)",
    )
    parser.add_argument(
        "--wait", type=int, default=300, help="longest wait for a quiet machine (default: 300)"
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="folder with the models already built (default: build them into a temporary one)",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        name = "open_corpus.json" if args.record else "open_corpus.local.json"
        args.output = HERE / "results" / name
    import netron_paddle_pir
    from netron_paddle_pir.corpus import build
    from netron_paddle_pir.server import Viewer

    if not (PACKAGE / "tests" / "browser" / "node_modules" / "playwright-core").is_dir():
        subprocess.run(["bash", str(PACKAGE / "tests" / "setup_browser.sh")], check=True)
    node = shutil.which("node")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    entries = chosen_entries(args.only)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        if args.corpus:
            tmp = args.corpus
            missing = [e for e in entries if not (tmp / e["target"]).exists()]
            if missing:
                build(tmp, quiet=False, entries=missing)
        else:
            build(tmp, quiet=False, entries=entries)
        waited = _wait_for_quiet(args.quiet_load, args.wait)
        load_before = os.getloadavg()
        with Viewer() as ours, Viewer(upstream_only=True) as upstream:
            cases = []
            for entry in entries:
                name = entry["target"].split("/")[0]
                path = tmp / entry["target"]
                doc = json.loads(path.read_text(encoding="utf-8"))
                ops = sum(1 for op in _walk(doc) if op["#"] != "p")
                params = sum(1 for op in _walk(doc) if op["#"] == "p")
                readers = [("ours", ours), ("upstream", upstream)]
                if name in args.control:
                    readers.append(("control", upstream))  # add() gives it its own port
                for reader, viewer in readers:
                    cases.append(
                        {
                            "name": f"{name}:{reader}",
                            "model": name,
                            "reader": reader,
                            "ops": ops,
                            "parameters": params,
                            "url": viewer.add(path),
                        }
                    )
            spec = Path(scratch) / "spec.json"
            spec.write_text(
                json.dumps({"chromium": chromium, "cases": cases, "rounds": args.rounds})
            )
            started = time.perf_counter()
            run = subprocess.run(
                [node, str(HERE / "open_time.mjs"), str(spec)],
                capture_output=True,
                text=True,
                timeout=7200,
            )
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                return 1
            results = json.loads(run.stdout)
            seconds = time.perf_counter() - started
    load_after = os.getloadavg()
    rows = []
    for entry in entries:
        name = entry["target"].split("/")[0]
        mine = next(r for r in results if r["name"] == f"{name}:ours")
        theirs = next(r for r in results if r["name"] == f"{name}:upstream")
        control = next((r for r in results if r["name"] == f"{name}:control"), None)
        controls = {}
        if control is not None:
            for kind in ("", "page_", "reader_", "start_"):
                controls.update(_control(theirs, control, kind))
        rows.append(
            {
                "model": name,
                "source": entry.get("source", ""),
                "ops": mine["ops"],
                "parameters": mine["parameters"],
                **_timings(mine, theirs, ""),
                # The page's own clock at the drawn graph (no 50 ms polling step): open_time.mjs.
                **_timings(mine, theirs, "page_"),
                # From Netron's request of paddle.js to the drawn graph (page clock): the reader's
                # part. Before it both pages run the same Netron code (start_ms, shared).
                **_timings(mine, theirs, "reader_"),
                **_timings(mine, theirs, "start_"),
                "ours_nodes": mine.get("nodes"),
                "upstream_nodes": theirs.get("nodes"),
                "ours_message": mine.get("message", ""),
                "upstream_message": theirs.get("message", ""),
                **controls,
            }
        )
    report = {
        "benchmark": "open real jit.save models in headless Chromium until the graph is drawn",
        "netron_paddle_pir": netron_paddle_pir.__version__,
        "netron": importlib.metadata.version("netron"),
        "paddle": importlib.metadata.version("paddlepaddle"),
        "rounds": args.rounds,
        "round_order": "every other round reversed (upstream first in half the rounds)",
        "control": "upstream's reader a second time, from another port (A/A), for: "
        + (", ".join(args.control) or "none"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "waited_for_quiet_s": waited,
        "quiet": load_before[0] < args.quiet_load,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "seconds": round(seconds, 1),
        "models": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    for row in rows:
        print(
            f"{row['model']:>14} {row['ops']:>6} ops  ours {row['ours_median_ms']:>7.0f} ms  "
            f"upstream {row['upstream_median_ms']:>7.0f} ms  ratio {row['ratio_upstream_over_ours']}  "
            f"page clock: ours {row['ours_page_median_ms']:>7.0f} ms  upstream "
            f"{row['upstream_page_median_ms']:>7.0f} ms  ratio {row['ratio_page_upstream_over_ours']}  "
            f"reader's part: ours {row['ours_reader_median_ms']:>7.0f} ms  upstream "
            f"{row['upstream_reader_median_ms']:>7.0f} ms  ratio {row['ratio_reader_upstream_over_ours']}"
        )
        print(
            f"{'':>26}paired (ours - upstream, median; rounds ours faster): "
            + "  ".join(
                f"{label} {row[f'paired_{kind}median_difference_ms']:+.0f} ms "
                f"{row[f'paired_{kind}rounds_ours_faster']}/{row[f'paired_{kind}rounds']}"
                for label, kind in (("wall", ""), ("page", "page_"), ("reader's part", "reader_"))
            )
        )
        if "control_median_ms" in row:
            print(
                f"{'':>26}A/A control (upstream - its copy, median; rounds upstream faster): "
                + "  ".join(
                    f"{label} {row[f'control_paired_{kind}median_difference_ms']:+.0f} ms "
                    f"{row[f'control_paired_{kind}rounds_ours_faster']}/"
                    f"{row[f'control_paired_{kind}rounds']}"
                    for label, kind in (
                        ("wall", ""),
                        ("page", "page_"),
                        ("reader's part", "reader_"),
                        ("start", "start_"),
                    )
                )
            )
    print(f"load before {report['load_before']}, after {report['load_after']} -> {args.output}")
    return 0


def _wait_for_quiet(limit, longest):
    """Seconds waited until the 1-minute load average fell below ``limit`` (or gave up)."""
    start = time.perf_counter()
    while os.getloadavg()[0] >= limit and time.perf_counter() - start < longest:
        time.sleep(10)
    return round(time.perf_counter() - start)


def _walk(doc):
    def blocks(block):
        for op in block["ops"]:
            yield op
            for region in op.get("regions", []):
                for inner in region["blocks"]:
                    yield from blocks(inner)

    yield from blocks(doc["program"]["regions"][0]["blocks"][0])


if __name__ == "__main__":
    sys.exit(main())
