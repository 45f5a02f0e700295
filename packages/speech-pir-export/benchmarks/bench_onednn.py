"""Per family: the oneDNN repair, oneDNN vs plain CPU predictor speed, and what export chose.

    python benchmarks/bench_onednn.py [--conf-dir CONF_DIR | --embedded] [--models u2,pwgan]
                                      [--record]

Exports each model (random weights) with the oneDNN check: ``verify`` checks every run-time
shape class of each graph, repairs oneDNN by deleting passes where it fails, then times the
verified configurations (plain, oneDNN as repaired) on those inputs in one process
(median of 7 interleaved passes after a warm-up) and records the faster (oneDNN only when
more than 5 % faster). That timing is run 1; this script times the same pair again in a
fresh worker (run 2), so each ratio is measured twice in the same run. Before each model it
waits (up to 5 min) for the 1-minute load to drop below 1.5 and records the load.

Prints the JSON and a Markdown table; writes results/bench_onednn.local.json, or with
--record the committed results/bench_onednn.json. With --conf-dir (default
$SPEECH_PIR_EXPORT_CONF_DIR) the example configs below are used, else the embedded ones.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _results  # noqa: E402

EXAMPLE_CONFIGS = {
    "u2": "aishell/asr1/conf/chunk_conformer.yaml",
    "u2_st": "ted_en_zh/st1/conf/transformer.yaml",
    "pwgan": "csmsc/voc1/conf/default.yaml",
    "mdtc": "hey_snips/kws0/conf/mdtc.yaml",
    "hifigan": "csmsc/voc5/conf/default.yaml",
    "fastspeech2": "csmsc/tts3/conf/default.yaml",
    "fastspeech2_streaming": "csmsc/tts3/conf/cnndecoder.yaml",
    "deepspeech2": "aishell/asr0/conf/deepspeech2.yaml",
}
EMBEDDED = {name: name for name in EXAMPLE_CONFIGS}


def bench(name, config, max_wait=300.0):
    import speech_pir_export as spe
    from speech_pir_export import _predictor, exporter

    gate = _results.wait_quiet(max_wait=max_wait)
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / name
        manifest = spe.export(name, config, out, onednn_check=True, progress=False)
        ver = manifest["verification"]
        _, built = exporter.rebuild(out)
        rows = []
        with _predictor.Worker(120) as worker:
            for graph in built.graphs:
                g = graph.name
                on, repair = ver["onednn_on"][g], ver["onednn_repair"].get(g, {})
                speed = ver.get("speed", {}).get(g)
                row = {
                    "model": name,
                    "graph": g,
                    "cases": len(exporter.verification_cases(graph)),
                    "onednn_as_it_comes": "ok"
                    if on.get("ok")
                    else (on.get("reason") or "mismatch")[:90]
                    + (f" (case {on['failed_case']})" if "failed_case" in on else ""),
                    "repair_ok": repair.get("ok", True),
                    "deleted_passes": repair.get("deleted_passes", []),
                    "repair_reason": repair.get("reason"),
                    "chosen": manifest["predictor"]["graphs"][g],
                    "gate": gate,
                }
                if speed:
                    onednn = _predictor.Settings.from_dict(speed["onednn"])
                    cases = exporter.verification_cases(graph)
                    again = exporter._faster(out / g, onednn, cases, worker)
                    row["runs"] = [
                        {
                            k: speed.get(k)
                            for k in ("plain_ms", "onednn_ms", "onednn_speedup", "load")
                        },
                        {
                            k: again.get(k)
                            for k in ("plain_ms", "onednn_ms", "onednn_speedup", "load")
                        },
                    ]
                    row["chosen_label"] = speed["chosen"]
                    row["run2_would_choose"] = again["chosen"]
                else:
                    row["chosen_label"] = _predictor.Settings.from_dict(row["chosen"]).label
                rows.append(row)
        return rows


def table(rows) -> str:
    lines = [
        "| model | graph | shape cases | oneDNN as it comes | passes deleted | plain ms (run 1 / 2) "
        "| oneDNN ms (run 1 / 2) | oneDNN speed-up (run 1 / 2) | chosen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["repair_ok"]:
            passes = "not repairable (kernel defect): oneDNN off"
        else:
            passes = ", ".join(r["deleted_passes"]) or "none needed"
        if r.get("runs"):
            a, b = r["runs"]
            plain = f"{a['plain_ms']:.2f} / {b['plain_ms']:.2f}"
            one = f"{a['onednn_ms']:.2f} / {b['onednn_ms']:.2f}"
            ratio = f"{a['onednn_speedup']:.2f}x / {b['onednn_speedup']:.2f}x"
        else:
            plain = one = ratio = "-"
        lines.append(
            f"| {r['model']} | {r['graph']} | {r['cases']} | {r['onednn_as_it_comes']} | "
            f"{passes} | {plain} | {one} | {ratio} | {r['chosen_label']} |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--conf-dir", default=os.environ.get("SPEECH_PIR_EXPORT_CONF_DIR"))
    ap.add_argument("--embedded", action="store_true", help="use the embedded small configs")
    ap.add_argument("--models", default=None)
    _results.add_arguments(ap)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import speech_pir_export as spe
    from speech_pir_export import configs

    use_examples = bool(args.conf_dir) and not args.embedded
    names = args.models.split(",") if args.models else list(EXAMPLE_CONFIGS)
    rows = []
    for name in names:
        config = (
            Path(args.conf_dir) / EXAMPLE_CONFIGS[name]
            if use_examples
            else configs.path(EMBEDDED[name])
        )
        print(f"== {name}", file=sys.stderr, flush=True)
        rows += bench(name, config, args.max_wait)
    result = {
        "version": spe.__version__,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "configs": "example" if use_examples else "embedded-small",
        "threads": 1,
        "timing": "median of 7 interleaved passes over the shape cases after a warm-up",
        "quiet": all(r["gate"]["quiet"] for r in rows),
        "rows": rows,
    }
    _results.write("bench_onednn", args, result)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
