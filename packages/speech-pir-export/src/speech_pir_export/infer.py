"""Run export folders through the verified predictor: text -> wav, wav -> text / label /
embedding / keyword probability. What a family does at run time is its registry entry's
``generate`` / ``vocode`` / ``decode`` hook; nothing here branches on a model name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import registry
from .errors import ExportError
from .exporter import ExportedModel
from .frontend import features, need_spk_emb, phone_ids, text_to_ids  # noqa: F401
from .registry.asr import ctc_prefix_beam_search, u2_decode, u2_encode, u2_st_translate  # noqa: F401
from .registry.singing import diffsinger_generate  # noqa: F401
from .registry.tacotron2 import tacotron2_generate  # noqa: F401
from .registry.vocoders import wavernn_generate  # noqa: F401


def _spec(exp):
    return registry.get(exp.manifest["model"])


def speaker_embedding(encoder_dir, wav: np.ndarray, sr: int) -> np.ndarray:
    """Utterance embedding from a GE2E or ECAPA-TDNN export."""
    exp = ExportedModel(encoder_dir)
    if exp.manifest["task"] != "vector":
        raise ExportError(f"{encoder_dir}: {exp.manifest['model']} is not a speaker encoder")
    result = _spec(exp).decode(exp, features(exp.manifest, wav, sr))
    return np.asarray(result["embedding"], "float32")


def synthesize(
    am_dir,
    voc_dir,
    *,
    phones=None,
    text=None,
    seed=0,
    notes=None,
    note_durs=None,
    slurs=None,
    spk_emb=None,
):
    """Acoustic model -> vocoder on the predictor: (wav, sample rate)."""
    am = ExportedModel(am_dir)
    voc = ExportedModel(voc_dir)
    if _spec(am).generate is None:
        raise ExportError(f"{am_dir}: {am.manifest['model']} is not a TTS acoustic model")
    if _spec(voc).vocode is None:
        raise ExportError(f"{voc_dir}: {voc.manifest['model']} is not a vocoder")
    mel = _spec(am).generate(
        am,
        phones=phones,
        text=text,
        seed=seed,
        spk_emb=spk_emb,
        notes=notes,
        note_durs=note_durs,
        slurs=slurs,
    )
    wav = vocode(voc, mel, seed=seed)
    return wav, int(voc.meta.get("sample_rate") or am.meta.get("sample_rate") or 24000)


def vocode(voc: ExportedModel, mel: np.ndarray, seed=0) -> np.ndarray:
    hook = _spec(voc).vocode
    if hook is None:
        raise ExportError(f"{voc.folder}: {voc.manifest['model']} is not a vocoder")
    return hook(voc, mel, seed=seed)


def recognize(folder, wav: np.ndarray, sr: int, on_partial=None) -> dict:
    """Features with the export's front end, then the family's decoder. ``on_partial(ids,
    frames)``: streaming partial hypotheses (U2)."""
    exp = ExportedModel(folder)
    hook = _spec(exp).decode
    if hook is None:
        raise ExportError(f"`infer --wav` does not support {exp.manifest['model']} yet")
    feats = features(exp.manifest, wav, sr)
    if on_partial is None:
        return hook(exp, feats)
    if exp.manifest["model"] != "u2":
        raise ExportError(
            f"--stream: partial results are for U2 exports, not {exp.manifest['model']}"
        )
    return hook(exp, feats, on_partial=on_partial)


def _read_wav(path) -> tuple[np.ndarray, int]:
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise ExportError("audio file not found", path)
    try:
        wav, sr = soundfile.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:  # soundfile.LibsndfileError and friends
        raise ExportError(f"not a readable audio file: {exc}", path) from exc
    if wav.ndim > 1:
        wav = wav.mean(axis=1)
    if wav.size == 0:
        raise ExportError("audio file has no samples", path)
    if not np.all(np.isfinite(wav)):
        raise ExportError("audio file has non-finite samples", path)
    return wav, int(sr)


def _read_npy(path, what) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{what} not found", path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ExportError(f"not a .npy file: {exc}", path) from exc
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
        raise ExportError(f"{what} must be a numeric array", path)
    if not np.all(np.isfinite(arr)):
        raise ExportError(f"{what} has non-finite values", path)
    return arr.astype("float32")


def _write_wav(out, wav, sr, overwrite):
    import io

    import soundfile

    from ._atomic import write_bytes

    buf = io.BytesIO()
    soundfile.write(buf, wav, sr, format="WAV")
    write_bytes(out, buf.getvalue(), overwrite=overwrite)


def main(args) -> int:
    """``infer``: everything is checked and computed before the output is written, and the
    output appears complete or not at all (an existing one only with --overwrite)."""
    from ._atomic import prepare_output, write_text
    from ._paddle import native_stdout_to_stderr
    from .exporter import read_manifest

    folder = Path(args.dir)
    manifest = read_manifest(folder)
    spec = registry.get(manifest["model"])
    overwrite = bool(getattr(args, "overwrite", False))
    verbose = bool(getattr(args, "verbose", False))
    if args.text is not None and spec.text_to_text is not None:  # text in, text out
        if args.output:
            prepare_output(args.output, overwrite=overwrite, kind="file")
        with native_stdout_to_stderr(not verbose):
            result = spec.text_to_text(ExportedModel(folder), args.text)
        if args.output:
            write_text(
                args.output, json.dumps(result, ensure_ascii=False) + "\n", overwrite=overwrite
            )
        print(json.dumps(result, ensure_ascii=False))
        return 0
    if args.text is not None or args.phones is not None:
        if spec.generate is None or not args.vocoder:
            raise ExportError("--text/--phones need a TTS acoustic export and --vocoder DIR")
        out = args.output or "out.wav"
        prepare_output(out, overwrite=overwrite, kind="file")
        spk_emb = None
        if getattr(args, "spk_emb", None):
            spk_emb = _read_npy(args.spk_emb, "speaker embedding")
        elif getattr(args, "spk_wav", None):
            if not args.speaker_encoder:
                raise ExportError(
                    "--spk-wav needs --speaker-encoder DIR (a ge2e or ecapa_tdnn export)"
                )
            swav, ssr = _read_wav(args.spk_wav)
            with native_stdout_to_stderr(not verbose):
                spk_emb = speaker_embedding(args.speaker_encoder, swav, ssr)
        with native_stdout_to_stderr(not verbose):
            wav, sr = synthesize(
                folder,
                args.vocoder,
                phones=args.phones,
                text=args.text,
                spk_emb=spk_emb,
                notes=getattr(args, "notes", None),
                note_durs=getattr(args, "note_durs", None),
                slurs=getattr(args, "slurs", None),
            )
        _write_wav(out, wav, sr, overwrite)
        print(f"wrote {out}: {len(wav)} samples at {sr} Hz")
        return 0
    if args.wav is None:
        raise ExportError("give --wav (audio, or a log-mel .npy for a vocoder)")
    if spec.vocode is not None:
        out = args.output or "out.wav"
        prepare_output(out, overwrite=overwrite, kind="file")
        mel = _read_npy(args.wav, "log-mel")
        if mel.ndim != 2:
            raise ExportError(
                f"log-mel must be 2-D (frames, n_mels), got shape {list(mel.shape)}", args.wav
            )
        with native_stdout_to_stderr(not verbose):
            wav = vocode(ExportedModel(folder), mel)
        sr = int(manifest["meta"].get("sample_rate") or 24000)
        _write_wav(out, wav, sr, overwrite)
        print(f"wrote {out}: {len(wav)} samples at {sr} Hz")
        return 0
    if args.output:
        prepare_output(args.output, overwrite=overwrite, kind="file")
    wav, sr = _read_wav(args.wav)
    on_partial = None
    if getattr(args, "stream", False):
        import os
        import sys
        import time

        sys.stdout.flush()
        stdout = os.dup(1)  # partial results go to the real stdout, also inside the redirect
        t0 = time.perf_counter()
        vocab = manifest["meta"].get("vocab")

        def on_partial(ids, frames):
            text = "".join(vocab[i] for i in ids) if vocab else " ".join(map(str, ids))
            line = {
                "partial": text,
                "token_ids": ids,
                "audio_seconds": round(frames / 100, 2),
                "seconds": round(time.perf_counter() - t0, 4),
            }
            os.write(stdout, (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))

    with native_stdout_to_stderr(not verbose):
        result = recognize(folder, wav, sr, on_partial=on_partial)
    if args.output:
        write_text(args.output, json.dumps(result, ensure_ascii=False) + "\n", overwrite=overwrite)
    print(json.dumps(result, ensure_ascii=False))
    return 0
