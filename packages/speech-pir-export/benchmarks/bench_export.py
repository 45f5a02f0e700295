"""Export time per model, and predictor latency against dygraph on the same inputs (ratio),
with real-time factors for TTS and ASR. Prints rows and writes
results/bench_export.local.json (with --record: the committed results/bench_export.json).

    python benchmarks/bench_export.py [--models fastspeech2,hifigan] [--conf-dir DIR]

By default the embedded small configs are used (random weights); with --conf-dir, the
example configs of the same names are looked up in EXAMPLE_CONFIGS below. Rows of models
not run are kept from the previous result file.

Models whose inference is a Python loop over exported step graphs (Tacotron2, WaveRNN,
DiffSinger, U2 decoding, U2-ST translation) are also timed end to end ("pipeline"): the same
driver over the predictor and over the dygraph graphs (DygraphModel), as a ratio.
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

sys.path.insert(0, str(Path(__file__).parent))
import _results  # noqa: E402
import numpy as np

EXAMPLE_CONFIGS = {
    "fastspeech2": "csmsc/tts3/conf/default.yaml",
    "speedyspeech": "csmsc/tts2/conf/default.yaml",
    "hifigan": "csmsc/voc5/conf/default.yaml",
    "mb_melgan": "csmsc/voc3/conf/default.yaml",
    "pwgan": "csmsc/voc1/conf/default.yaml",
    "deepspeech2": "aishell/asr0/conf/deepspeech2.yaml",
    "deepspeech2_online": "aishell/asr0/conf/deepspeech2_online.yaml",
    "u2": "aishell/asr1/conf/conformer.yaml",
    "panns_cnn6": "esc50/cls0/conf/panns.yaml",
    "ecapa_tdnn": "voxceleb/sv0/conf/ecapa_tdnn.yaml",
    "mdtc": "hey_snips/kws0/conf/mdtc.yaml",
    "tacotron2": "csmsc/tts0/conf/default.yaml",
    "wavernn": "csmsc/voc6/conf/default.yaml",
    "diffsinger": "opencpop/svs1/conf/default.yaml",
    "u2_st": "ted_en_zh/st1/conf/transformer.yaml",
    "ge2e": None,  # no example yaml (upstream keeps the GE2E config in Python)
    "fastspeech2_vc": "aishell3/vc1/conf/default.yaml",
}
REGISTRY_NAME = {"fastspeech2_vc": "fastspeech2"}


def _pipeline(name, meta):
    """The end-to-end Python driver of a restructured model and the audio seconds it
    produces (TTS) or consumes (ASR), as a function of an ExportedModel / DygraphModel."""
    from speech_pir_export import infer

    rng = np.random.default_rng(0)
    if name == "tacotron2":
        ids = rng.integers(1, 50, 10)
        return (
            lambda r: infer.tacotron2_generate(r, ids, maxlenratio=5.0),
            lambda out: out.shape[0] * meta["hop_length"] / meta["sample_rate"],
        )
    if name == "wavernn":
        mel = rng.standard_normal((8, meta["n_mels"])).astype("float32")
        return (
            lambda r: infer.wavernn_generate(r, mel, target=120, overlap=30),
            lambda out: out.size / meta["sample_rate"],
        )
    if name == "diffsinger":
        n = 6
        score = (
            rng.integers(1, 50, n),
            rng.integers(40, 80, n),
            np.full(n, 0.15, np.float32),
            np.zeros(n, np.int64),
        )
        return (
            lambda r: infer.diffsinger_generate(r, *score),
            lambda out: out.shape[0] * meta["hop_length"] / meta["sample_rate"],
        )
    if name in ("u2", "u2_st"):
        feats = rng.standard_normal((1, 200, meta["feat_dim"])).astype("float32")
        fn = (
            (lambda r: infer.u2_decode(r, feats, beam=4))
            if name == "u2"
            else (lambda r: infer.u2_st_translate(r, feats, beam=3, max_len=8))
        )
        return fn, lambda out: 2.0  # 200 frames of 10 ms
    return None


def _time(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _config_name(config) -> str:
    """``embedded:<file>`` or the path below the examples folder: no path of one machine."""
    config = Path(config)
    if config.parent.name == "configs" and config.parent.parent.name == "speech_pir_export":
        return f"embedded:{config.name}"
    parts = config.parts
    return "/".join(parts[-4:]) if "conf" in parts else config.name


def bench(name, config, out, repeat):
    import paddle

    import speech_pir_export as spe
    from speech_pir_export import exporter

    label, name = name, REGISTRY_NAME.get(name, name)
    t0 = time.perf_counter()
    manifest = spe.export(name, config, out, onednn_check=False, progress=False)
    export_s = time.perf_counter() - t0
    _, built = exporter.rebuild(out)
    graph = built.graphs[0]
    feeds = [i.sample(np.random.default_rng(0)) for i in graph.inputs]
    model = spe.ExportedModel(out)
    gname = manifest["graphs"][0]["name"]

    def dygraph():
        with paddle.no_grad():
            graph.layer(*[paddle.to_tensor(x) for x in feeds])

    def predictor():
        model.run(*feeds, graph=gname)

    dy = _time(dygraph, repeat)
    pr = _time(predictor, repeat)
    row = {
        "model": label,
        "config": _config_name(config),
        "export_s": round(export_s, 2),
        "graph_export_s": manifest["export_seconds"],
        "dygraph_s": round(dy, 5),
        "predictor_s": round(pr, 5),
        "predictor_speedup_vs_dygraph": round(dy / pr, 2),
        "verified_max_abs": max(
            r.get("max_abs", 0) for r in manifest["verification"]["onednn_off"].values()
        ),
    }
    meta = manifest["meta"]
    out0 = model.run(*feeds, graph=gname)[0]
    if gname != "model":  # first of several graphs: no audio duration of its own
        pass
    elif manifest["task"] in ("vocoder", "tts-e2e"):
        audio_s = out0.size / float(meta["sample_rate"])
        row["rtf_predictor"] = round(pr / audio_s, 4)
        row["rtf_dygraph"] = round(dy / audio_s, 4)
    elif manifest["task"] == "tts-acoustic":
        audio_s = out0.shape[0] * meta["hop_length"] / float(meta["sample_rate"])
        row["rtf_predictor"] = round(pr / audio_s, 4)
        row["rtf_dygraph"] = round(dy / audio_s, 4)
    elif manifest["task"] == "asr" and name.startswith("deepspeech2"):
        audio_s = feeds[0].shape[1] * 0.01
        row["rtf_predictor"] = round(pr / audio_s, 4)
        row["rtf_dygraph"] = round(dy / audio_s, 4)
    row["first_graph"] = gname
    pipe = _pipeline(name, meta)
    if pipe is not None:
        fn, seconds = pipe
        dyg = spe.DygraphModel(out)
        p_pr = _time(lambda: fn(model), 2)
        p_dy = _time(lambda: fn(dyg), 2)
        audio_s = seconds(fn(model))
        row["pipeline"] = {
            "predictor_s": round(p_pr, 4),
            "dygraph_s": round(p_dy, 4),
            "predictor_speedup_vs_dygraph": round(p_dy / p_pr, 2),
            "audio_s": round(audio_s, 3),
            "rtf_predictor": round(p_pr / audio_s, 4),
            "rtf_dygraph": round(p_dy / audio_s, 4),
        }
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", default=",".join(EXAMPLE_CONFIGS))
    ap.add_argument("--conf-dir", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    _results.add_arguments(ap)
    args = ap.parse_args(argv)
    from speech_pir_export import configs

    rows = []
    with tempfile.TemporaryDirectory() as td:
        for name in args.models.split(","):
            if args.conf_dir and not EXAMPLE_CONFIGS.get(name):
                continue
            cfg = (
                Path(args.conf_dir) / EXAMPLE_CONFIGS[name] if args.conf_dir else configs.path(name)
            )
            try:
                rows.append(bench(name, cfg, Path(td) / name, args.repeat))
            except Exception as exc:  # report and go on
                rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
            print(json.dumps(rows[-1]), flush=True)
    previous = Path(_results.output_path("bench_export", args))
    if previous.exists():  # keep rows of models not run this time
        ran = {r["model"] for r in rows}
        old_rows = json.loads(previous.read_text()).get("rows", [])
        rows = [r for r in old_rows if r.get("model") not in ran] + rows
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        },
        "configs": "example" if args.conf_dir else "embedded-small",
        "predictor": "Paddle Inference CPU, oneDNN off, 1 thread",
        "rows": rows,
    }
    Path(_results.output_path("bench_export", args)).parent.mkdir(parents=True, exist_ok=True)
    Path(_results.output_path("bench_export", args)).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
