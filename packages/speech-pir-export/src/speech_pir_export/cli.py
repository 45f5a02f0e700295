"""Command line: speech-pir-export list | fixes | export | verify | infer | demo.

Parsing arguments imports nothing heavy (``--help`` and argument errors never import Paddle);
Paddle's own chatter is silenced unless ``--verbose``, and what native code prints to stdout
goes to stderr, so stdout carries only the tool's own output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from ._errors import run_cli
from ._paddle import native_stdout_to_stderr, quiet_paddle


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
        state = (
            "applied"
            if row["applied"]
            else ("error: " + row["error"] if row["error"] else "pending (module not imported)")
        )
        print(f"- {row['name']} [{row['module']}]: {state}")
        if args.verbose:
            print(f"    root cause: {row['root_cause']}\n    remedy: {row['remedy']}")
    return 0


def _cmd_export(args):
    from .exporter import export

    with native_stdout_to_stderr(not args.verbose):
        manifest = export(
            args.model,
            args.config,
            args.out,
            checkpoint=args.checkpoint,
            stats=args.stats,
            phones_dict=args.phones_dict,
            tones_dict=args.tones_dict,
            speaker_dict=args.speaker_dict,
            preprocess=args.preprocess,
            cmvn=args.cmvn,
            labels=args.labels,
            verify_after=not args.no_verify,
            onednn_check=not args.skip_onednn,
            overwrite=args.overwrite,
        )
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
                print(
                    f"  {graph:28s} {mode:10s} OK   max_abs={res['max_abs']:.2e} "
                    f"max_rel={res['max_rel']:.2e}"
                )
            else:
                detail = res.get("reason") or (
                    f"max_abs={res.get('max_abs', float('nan')):.2e}"
                    f" max_rel={res.get('max_rel', float('nan')):.2e}"
                )
                if "failed_case" in res:
                    detail += (
                        f" (shape case {res['failed_case']} of {len(res.get('cases') or [0])})"
                    )
                print(f"  {graph:28s} {mode:10s} FAIL {detail}")
    for graph, res in ver.get("onednn_repair", {}).items():
        if res.get("ok"):
            print(
                f"  {graph:28s} onednn     REPAIRED by deleting "
                f"{', '.join(res['deleted_passes'])} ({res['checks']} checks)"
            )
        else:
            print(f"  {graph:28s} onednn     not repairable: {res.get('reason')}")
    for graph, res in ver.get("speed", {}).items():
        if "plain_ms" in res:
            print(
                f"  {graph:28s} speed      plain {res['plain_ms']:.2f} ms, oneDNN "
                f"{res['onednn_ms']:.2f} ms -> {res['chosen']}"
            )
    pred = manifest["predictor"]
    used = sum(bool(g.get("onednn")) for g in (pred.get("graphs") or {}).values())
    print(
        f"  predictor settings: oneDNN {'on' if pred['onednn'] else 'off'} "
        f"({used} of {len(pred.get('graphs') or {})} graphs; verified={pred['verified']})"
    )


def _cmd_verify(args):
    from .exporter import verify

    with native_stdout_to_stderr(not args.verbose):
        result = verify(args.dir, onednn_check=not args.skip_onednn, threads=args.threads)
    _print_verification(result["manifest"])
    return 0 if result["ok"] else 3


def _cmd_infer(args):
    from . import infer

    return infer.main(args)


def _cmd_demo(args):
    """Export and verify four small models (acoustic, vocoder, ASR, classification) and
    synthesise; with --out the exports are kept for the commands it prints."""
    import tempfile

    from . import configs
    from ._atomic import atomic_dir
    from .exporter import export

    with tempfile.TemporaryDirectory() as td:
        root = Path(td)
        names = ("fastspeech2", "hifigan", "deepspeech2", "panns_cnn6")
        with (
            atomic_dir(args.out, overwrite=args.overwrite) if args.out else _nullcontext(root)
        ) as folder:
            folder = Path(folder)
            for name in names:
                cfg = configs.path(name)
                print(f"== {name} ({cfg.name})", flush=True)
                with native_stdout_to_stderr(not args.verbose):
                    manifest = export(name, cfg, folder / name, progress=False)
                _print_verification(manifest)
            from .infer import synthesize

            with native_stdout_to_stderr(not args.verbose):
                wav, sr = synthesize(
                    folder / "fastspeech2", folder / "hifigan", phones="1 2 3 4 5 6 7 8"
                )
        print(
            f"== text-to-wave via predictor: {len(wav)} samples at {sr} Hz "
            f"(random weights: noise, not speech)"
        )
        if args.out:
            out = args.out
            print(
                f"kept in {out}; try:\n"
                f'  speech-pir-export infer {out}/fastspeech2 --phones "1 2 3 4 5" '
                f"--vocoder {out}/hifigan --output demo.wav\n"
                f"  speech-pir-export verify {out}/deepspeech2 --skip-onednn"
            )
    return 0


class _nullcontext:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return False


def build_parser():
    p = argparse.ArgumentParser(
        prog="speech-pir-export",
        description="Export PaddleSpeech models (from their config yaml, with optional "
        "checkpoint and statistics) to Paddle 3 PIR, verify them on the Paddle "
        "Inference predictor against dygraph, and run them.",
        epilog="Exit codes: 0 ok; 2 bad input (one line on stderr: error: <file>: <problem>); "
        "3 verification failed; 130 interrupted.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show Paddle's own log lines and warnings (list, fixes: also the notes / root causes)",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("list", parents=[common], help="models of the export registry")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser(
        "fixes", parents=[common], help="the Paddle 3 fixes, their root causes and state"
    )
    s.add_argument("--apply", action="store_true", help="import every target module first")
    s.set_defaults(func=_cmd_fixes)

    s = sub.add_parser(
        "export",
        parents=[common],
        help="export MODEL built from --config into --out",
        description="Writes <graph>.json + <graph>.pdiparams, export.json, "
        "config.yaml and dygraph.pdparams into OUT (atomically), "
        "then verifies with and without oneDNN.",
    )
    s.add_argument("model", help="registry name (see `list`)")
    s.add_argument("--config", required=True, help="PaddleSpeech config yaml")
    s.add_argument(
        "--checkpoint",
        help=".pdz (TTS) or .pdparams (ASR/cls/...) checkpoint; random weights without it",
    )
    s.add_argument(
        "--stats",
        help="feature statistics .npy (2, n_mels); required with a checkpoint for TTS models",
    )
    s.add_argument("--phones-dict", help="phone_id_map.txt (TTS) or vocab.txt (ASR)")
    s.add_argument("--tones-dict", help="tone_id_map.txt (SpeedySpeech)")
    s.add_argument("--speaker-dict", help="speaker_id_map.txt (multi-speaker)")
    s.add_argument(
        "--labels",
        help="text models: class labels, one per line (the "
        "punctuation recipe's punc_vocab; default: its data_params.punc_path)",
    )
    s.add_argument(
        "--preprocess",
        help="ASR/ST: the recipe's feature pipeline (default: the "
        "config's preprocess_config, relative to its recipe folder)",
    )
    s.add_argument(
        "--cmvn",
        help="ASR/ST: the recipe's global CMVN statistics "
        "(data/mean_std.json; default: the path its preprocess config or "
        "cmvn_file names, relative to the recipe folder)",
    )
    s.add_argument("--out", required=True)
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--no-verify", action="store_true")
    s.add_argument(
        "--skip-onednn", action="store_true", help="verify only with oneDNN off (no subprocess)"
    )
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser(
        "verify", parents=[common], help="compare dygraph and predictor for an export folder"
    )
    s.add_argument("dir")
    s.add_argument("--skip-onednn", action="store_true")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=_cmd_verify)

    s = sub.add_parser(
        "infer", parents=[common], help="run an export folder with its verified settings"
    )
    s.add_argument("dir")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", help="text for TTS (PaddleSpeech frontend, needs its vocabulary)")
    g.add_argument("--phones", help="phone symbols or ids separated by spaces (TTS)")
    g.add_argument("--wav", help="wav file (ASR, cls, vector, kws) or a vocoder's .npy mel")
    s.add_argument("--vocoder", help="vocoder export folder for TTS acoustic models")
    s.add_argument("--spk-emb", help="voice cloning: speaker embedding .npy")
    s.add_argument(
        "--spk-wav", help="voice cloning: reference speaker wav (with --speaker-encoder)"
    )
    s.add_argument("--speaker-encoder", help="ge2e or ecapa_tdnn export folder")
    s.add_argument("--notes", help="DiffSinger: note ids, one per phone (with --phones)")
    s.add_argument("--note-durs", help="DiffSinger: note durations in seconds, one per phone")
    s.add_argument("--slurs", help="DiffSinger: is_slur flags (0/1), one per phone; default 0")
    s.add_argument(
        "--output",
        help="output file: wav for TTS / vocoders (default out.wav), "
        "JSON for the others (default: stdout only)",
    )
    s.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    s.add_argument(
        "--stream",
        action="store_true",
        help="U2: print a JSON line with the partial hypothesis after each "
        "encoder chunk, then the final result",
    )
    s.set_defaults(func=_cmd_infer)

    s = sub.add_parser("demo", parents=[common], help="export, verify and run small random models")
    s.add_argument("--out", help="keep the exports in this folder (default: a temporary one)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    s.set_defaults(func=_cmd_demo)
    return p


def _main(argv=None):
    args = build_parser().parse_args(argv)
    quiet_paddle(args.verbose)  # before anything imports Paddle
    if not args.verbose:
        import warnings

        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    from ._paddle import require_paddle

    require_paddle()
    return args.func(args)


def main(argv=None) -> int:
    """Entry point: exit 0 ok, 2 bad input (``error: <file>: <problem>``), 3 verification
    failed, 130 interrupted."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
