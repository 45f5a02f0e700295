"""oneDNN as repaired by verify (passes deleted where a graph needs it) vs the plain CPU
predictor (oneDNN off), per graph, same inputs, same process, interleaved runs.

    python benchmarks/bench_onednn.py [--conf-dir CONF_DIR] [--models u2,pwgan] [--repeat 7]

Exports each model (random weights) with the oneDNN check and repair, then times every graph
with oneDNN off and with the recorded per-graph setting. Writes
benchmarks/results/bench_onednn.json and prints a Markdown table. With --conf-dir (default
$SPEECH_PIR_EXPORT_CONF_DIR) the example configs below are used, else the embedded small ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

# the families whose export was verified with oneDNN off in the 0.2.0 zoo run, and two where
# oneDNN worked as it came, for comparison
EXAMPLE_CONFIGS = {
    "u2": "aishell/asr1/conf/chunk_conformer.yaml",
    "u2_st": "ted_en_zh/st1/conf/transformer.yaml",
    "pwgan": "csmsc/voc1/conf/default.yaml",
    "style_melgan": "csmsc/voc4/conf/default.yaml",
    "mdtc": "hey_snips/kws0/conf/mdtc.yaml",
    "vits": "csmsc/vits/conf/default.yaml",
    "hifigan": "csmsc/voc5/conf/default.yaml",
    "fastspeech2": "csmsc/tts3/conf/default.yaml",
}
EMBEDDED = {
    "u2": "u2",
    "u2_st": "u2_st",
    "pwgan": "pwgan",
    "mdtc": "mdtc",
    "hifigan": "hifigan",
    "fastspeech2": "fastspeech2",
}


def _median_ms(fn, repeat):
    fn()  # warm-up (oneDNN primitive creation)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench(name, config, repeat):
    import speech_pir_export as spe
    from speech_pir_export import _predictor, exporter

    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / name
        t0 = time.perf_counter()
        manifest = spe.export(name, config, out, onednn_check=True, progress=False)
        export_s = time.perf_counter() - t0
        _, built = exporter.rebuild(out)
        rows = []
        for graph in built.graphs:
            chosen = _predictor.Settings.from_dict(manifest["predictor"]["graphs"][graph.name])
            plain_on = manifest["verification"]["onednn_on"][graph.name]
            repair = manifest["verification"].get("onednn_repair", {}).get(graph.name, {})
            feeds = exporter.sample_inputs(None, graph)
            off = _predictor.create_predictor(out / graph.name, _predictor.Settings(False))
            row = {
                "model": name,
                "graph": graph.name,
                "onednn_as_it_comes": "ok"
                if plain_on.get("ok")
                else (plain_on.get("reason") or "mismatch")[:90],
                "deleted_passes": chosen.deleted_passes if chosen.onednn else None,
                "repair_checks": repair.get("checks"),
                "repair_reason": repair.get("reason"),
            }
            row["off_ms"] = round(
                _median_ms(lambda p=off, f=feeds: _predictor.run_predictor(p, f), repeat), 3
            )
            if chosen.onednn:
                on = _predictor.create_predictor(out / graph.name, chosen)
                row["onednn_ms"] = round(
                    _median_ms(lambda p=on, f=feeds: _predictor.run_predictor(p, f), repeat), 3
                )
                # second interleaved pair: a ratio counts only when it holds twice
                row["off_ms_2"] = round(
                    _median_ms(lambda p=off, f=feeds: _predictor.run_predictor(p, f), repeat), 3
                )
                row["onednn_ms_2"] = round(
                    _median_ms(lambda p=on, f=feeds: _predictor.run_predictor(p, f), repeat), 3
                )
                row["speedup"] = round(row["off_ms"] / row["onednn_ms"], 2)
                row["speedup_2"] = round(row["off_ms_2"] / row["onednn_ms_2"], 2)
            rows.append(row)
        return rows, round(export_s, 1)


def table(rows) -> str:
    lines = [
        "| model | graph | oneDNN as it comes | passes deleted | plain ms | oneDNN ms | "
        "oneDNN speed-up (run 1 / run 2) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("onednn_ms") is None:
            passes, on, speed = f"not repairable: {r['repair_reason']}", "-", "-"
        else:
            passes = ", ".join(r["deleted_passes"]) or "none needed"
            on = f"{r['onednn_ms']:.2f}"
            speed = f"{r['speedup']:.2f}x / {r['speedup_2']:.2f}x"
        lines.append(
            f"| {r['model']} | {r['graph']} | {r['onednn_as_it_comes']} | {passes} | "
            f"{r['off_ms']:.2f} | {on} | {speed} |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--conf-dir", default=os.environ.get("SPEECH_PIR_EXPORT_CONF_DIR"))
    ap.add_argument("--embedded", action="store_true", help="use the embedded small configs")
    ap.add_argument("--models", default=None)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_onednn.json"))
    args = ap.parse_args(argv)
    from speech_pir_export import configs

    use_examples = bool(args.conf_dir) and not args.embedded
    names = (
        args.models.split(",")
        if args.models
        else list(EXAMPLE_CONFIGS if use_examples else EMBEDDED)
    )
    load = os.getloadavg()
    rows, exports = [], {}
    for name in names:
        config = (
            Path(args.conf_dir) / EXAMPLE_CONFIGS[name]
            if use_examples
            else configs.path(EMBEDDED[name])
        )
        print(f"== {name}", file=sys.stderr, flush=True)
        got, export_s = bench(name, config, args.repeat)
        rows += got
        exports[name] = export_s
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in load],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "configs": "example" if use_examples else "embedded-small",
        "threads": 1,
        "repeat": args.repeat,
        "export_seconds": exports,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(rows))
    print(f"load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
