"""Command line: speech-pir-export list | fixes | export | verify | infer | demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_list(args):
    from .registry import MODELS

    for name, spec in MODELS.items():
        extra = f"  ({spec.notes})" if spec.notes and args.verbose else ""
        print(f"{name:24s} {spec.task:13s} {spec.family}{extra}")
    return 0


def _cmd_fixes(args):
    from . import fixes

    rows = fixes.import_all_targets() if args.apply else fixes.report()
    for row in rows:
        state = "applied" if row["applied"] else ("error: " + row["error"] if row["error"]
                                                  else "pending (module not imported)")
        print(f"- {row['name']} [{row['module']}]: {state}")
        if args.verbose:
            print(f"    root cause: {row['root_cause']}\n    remedy: {row['remedy']}")
    return 0


def _cmd_export(args):
    from .exporter import export

    manifest = export(args.model, args.config, args.out, checkpoint=args.checkpoint,
                      stats=args.stats, phones_dict=args.phones_dict,
                      tones_dict=args.tones_dict, speaker_dict=args.speaker_dict,
                      verify_after=not args.no_verify, onednn_check=not args.skip_onednn,
                      overwrite=args.overwrite)
    _print_verification(manifest)
    print(f"exported {args.model} -> {args.out}")
    return 0 if manifest["predictor"].get("verified") or args.no_verify else 3


def _print_verification(manifest):
    ver = manifest.get("verification")
    if not ver:
        return
    for mode in ("onednn_off", "onednn_on"):
        for graph, res in ver.get(mode, {}).items():
            if res.get("ok"):
                print(f"  {graph:28s} {mode:10s} OK   max_abs={res['max_abs']:.2e} "
                      f"max_rel={res['max_rel']:.2e}")
            else:
                detail = res.get("reason") or (f"max_abs={res.get('max_abs', float('nan')):.2e}"
                                               f" max_rel={res.get('max_rel', float('nan')):.2e}")
                print(f"  {graph:28s} {mode:10s} FAIL {detail}")
    pred = manifest["predictor"]
    print(f"  predictor settings: oneDNN {'on' if pred['onednn'] else 'off'} "
          f"(verified={pred['verified']})")


def _cmd_verify(args):
    from .exporter import verify

    result = verify(args.dir, onednn_check=not args.skip_onednn, threads=args.threads)
    _print_verification(result["manifest"])
    return 0 if result["ok"] else 3


def _cmd_infer(args):
    from . import infer

    return infer.main(args)


def _cmd_demo(args):
    """Export and verify three small models (acoustic, vocoder, ASR) and synthesise."""
    import tempfile

    from . import configs
    from .exporter import export

    with tempfile.TemporaryDirectory() as td:
        for name in ("fastspeech2", "hifigan", "deepspeech2", "panns_cnn6"):
            cfg = configs.path(name)
            print(f"== {name} ({cfg.name})")
            manifest = export(name, cfg, Path(td) / name)
            _print_verification(manifest)
        from .infer import synthesize

        wav, sr = synthesize(Path(td) / "fastspeech2", Path(td) / "hifigan",
                             phones="1 2 3 4 5 6 7 8")
        print(f"== text-to-wave via predictor: {len(wav)} samples at {sr} Hz "
              f"(random weights: noise, not speech)")
    return 0


def build_parser():
    p = argparse.ArgumentParser(
        prog="speech-pir-export",
        description="Export PaddleSpeech models (from their config yaml, with optional "
                    "checkpoint and statistics) to Paddle 3 PIR, verify them on the Paddle "
                    "Inference predictor against dygraph, and run them.")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("list", help="models of the export registry")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("fixes", help="the Paddle 3 fixes, their root causes and state")
    s.add_argument("--apply", action="store_true", help="import every target module first")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=_cmd_fixes)

    s = sub.add_parser("export", help="export MODEL built from --config into --out",
                       description="Writes <graph>.json + <graph>.pdiparams, export.json, "
                                   "config.yaml and dygraph.pdparams into OUT (atomically), "
                                   "then verifies with and without oneDNN.")
    s.add_argument("model", help="registry name (see `list`)")
    s.add_argument("--config", required=True, help="PaddleSpeech config yaml")
    s.add_argument("--checkpoint", help=".pdz (TTS) or .pdparams (ASR/cls/...) checkpoint; "
                                        "random weights without it")
    s.add_argument("--stats", help="feature statistics .npy (2, n_mels); required with a "
                                   "checkpoint for TTS models")
    s.add_argument("--phones-dict", help="phone_id_map.txt (TTS) or vocab.txt (ASR)")
    s.add_argument("--tones-dict", help="tone_id_map.txt (SpeedySpeech)")
    s.add_argument("--speaker-dict", help="speaker_id_map.txt (multi-speaker)")
    s.add_argument("--out", required=True)
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--no-verify", action="store_true")
    s.add_argument("--skip-onednn", action="store_true",
                   help="verify only with oneDNN off (no subprocess)")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("verify", help="compare dygraph and predictor for an export folder")
    s.add_argument("dir")
    s.add_argument("--skip-onednn", action="store_true")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=_cmd_verify)

    s = sub.add_parser("infer", help="run an export folder with its verified settings")
    s.add_argument("dir")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", help="text for TTS (PaddleSpeech frontend, needs its vocabulary)")
    g.add_argument("--phones", help="phone symbols or ids separated by spaces (TTS)")
    g.add_argument("--wav", help="wav file (ASR, cls, vector, kws) or a vocoder's .npy mel")
    s.add_argument("--vocoder", help="vocoder export folder for TTS acoustic models")
    s.add_argument("--spk-emb", help="voice cloning: speaker embedding .npy")
    s.add_argument("--spk-wav", help="voice cloning: reference speaker wav "
                   "(with --speaker-encoder)")
    s.add_argument("--speaker-encoder", help="ge2e or ecapa_tdnn export folder")
    s.add_argument("--notes", help="DiffSinger: note ids, one per phone (with --phones)")
    s.add_argument("--note-durs", help="DiffSinger: note durations in seconds, one per phone")
    s.add_argument("--slurs", help="DiffSinger: is_slur flags (0/1), one per phone; default 0")
    s.add_argument("--output", help="output wav (TTS) or .npy")
    s.set_defaults(func=_cmd_infer)

    s = sub.add_parser("demo", help="export, verify and run small random models")
    s.set_defaults(func=_cmd_demo)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .exporter import ExportError
    from .registry import ConfigError

    try:
        return args.func(args)
    except (ConfigError, ExportError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"speech-pir-export: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())


