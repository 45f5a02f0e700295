"""Streaming latency: first packet and real-time factor of the streaming paths of ``infer``.

    python benchmarks/bench_streaming.py [--conf-dir CONF_DIR] [--repeat 3]

* FastSpeech2 (CNNDecoder, csmsc/tts3/conf/cnndecoder.yaml) + HiFiGAN (csmsc/voc5): seconds
  from phone ids to the first log-mel chunk (first packet, acoustic model) and to its
  vocoded audio; RTF = total seconds / seconds of audio, streamed vs whole-utterance.
* U2 (aishell/asr1/conf/chunk_conformer.yaml, chunk 16): seconds from the end of the first
  chunk of audio to its partial hypothesis; RTF of the whole decode.

Random weights (the durations of a random FastSpeech2 are set to 1.5 log-frames per phone),
predictor with the export's verified settings (chosen by speed), 1 thread, median of
--repeat runs; measured twice (run 1, run 2), each after waiting (up to 5 min) for the
1-minute load to drop below 1.5. Without --conf-dir (default $SPEECH_PIR_EXPORT_CONF_DIR)
the embedded small configs are used. Prints the JSON and writes
results/bench_streaming.local.json, or with --record the committed
results/bench_streaming.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _results  # noqa: E402

CONFIGS = {
    "fastspeech2_streaming": "csmsc/tts3/conf/cnndecoder.yaml",
    "hifigan": "csmsc/voc5/conf/default.yaml",
    "u2": "aishell/asr1/conf/chunk_conformer.yaml",
}


def _median(xs):
    return round(statistics.median(xs), 4)


def measure_tts(am, voc, repeat):
    from speech_pir_export.infer import vocode
    from speech_pir_export.registry.tts import generate_streaming

    phones = " ".join(str(3 + i % 50) for i in range(40))
    sr, hop = int(voc.meta["sample_rate"]), int(voc.meta["hop_length"])
    first_mel, first_wav, stream_total, whole_total, audio_s = [], [], [], [], 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        marks = []

        def on_chunk(mel, t0=t0, marks=marks):
            if not marks:
                marks.append(time.perf_counter() - t0)
                vocode(voc, mel)  # the first audio packet
                marks.append(time.perf_counter() - t0)
            else:
                vocode(voc, mel)

        mel = generate_streaming(am, phones=phones, on_chunk=on_chunk)
        stream_total.append(time.perf_counter() - t0)
        first_mel.append(marks[0])
        first_wav.append(marks[1])
        t0 = time.perf_counter()
        whole = generate_streaming(am, phones=phones, block=10**9)
        vocode(voc, whole)
        whole_total.append(time.perf_counter() - t0)
        audio_s = mel.shape[0] * hop / sr
    return {
        "phones": 40,
        "audio_seconds": round(audio_s, 3),
        "block_frames": am.meta["streaming"]["block_frames"],
        "context_frames": am.meta["streaming"]["context_frames"],
        "first_mel_chunk_s": _median(first_mel),
        "first_audio_packet_s": _median(first_wav),
        "rtf_streamed": round(_median(stream_total) / audio_s, 4),
        "rtf_whole": round(_median(whole_total) / audio_s, 4),
    }


def measure_asr(asr, repeat):
    import numpy as np

    from speech_pir_export.infer import features, u2_decode

    wav = np.random.default_rng(0).standard_normal(16000 * 5).astype("float32") * 0.1
    feats = features(asr.manifest, wav, 16000)
    firsts, totals, marks = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        marks = []
        u2_decode(
            asr,
            feats,
            on_partial=lambda ids, f, t0=t0, m=marks: m.append((time.perf_counter() - t0, f)),
        )
        totals.append(time.perf_counter() - t0)
        firsts.append(marks[0][0])
    return {
        "audio_seconds": 5.0,
        "chunks": len(marks),
        "first_chunk_audio_s": marks[0][1] / 100,
        "first_partial_s": _median(firsts),
        "rtf": round(_median(totals) / 5.0, 4),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--conf-dir", default=os.environ.get("SPEECH_PIR_EXPORT_CONF_DIR"))
    ap.add_argument("--repeat", type=int, default=3)
    _results.add_arguments(ap)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import speech_pir_export as spe
    from speech_pir_export import configs

    def cfg(name):
        if args.conf_dir:
            return Path(args.conf_dir) / CONFIGS[name]
        return configs.path(name)

    result = {
        "version": spe.__version__,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "configs": "example" if args.conf_dir else "embedded-small",
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        for name in CONFIGS:
            print(f"== export {name}", file=sys.stderr, flush=True)
            spe.export(name, cfg(name), td / name, onednn_check=True, progress=False)
        am, voc = spe.ExportedModel(td / "fastspeech2_streaming"), spe.ExportedModel(td / "hifigan")
        asr = spe.ExportedModel(td / "u2")
        result["predictor"] = {
            name: {g: s.label for g, s in m.settings.items()}
            for name, m in (("fastspeech2_streaming", am), ("hifigan", voc), ("u2", asr))
        }
        for run in (1, 2):  # a figure counts only when it holds twice in the same run
            gate = _results.wait_quiet(max_wait=args.max_wait)
            print(f"== run {run} ({gate})", file=sys.stderr, flush=True)
            result["runs"].append(
                {
                    "gate": gate,
                    "tts": measure_tts(am, voc, args.repeat),
                    "asr": measure_asr(asr, args.repeat),
                    "load_after": _results.load1(),
                }
            )
    result["quiet"] = all(r["gate"]["quiet"] for r in result["runs"])
    _results.write("bench_streaming", args, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
