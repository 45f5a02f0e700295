"""Front ends: text -> phone ids for acoustic models, waveform -> features for models that
take audio. Everything a model needs is read from its export's manifest (``meta``)."""

from __future__ import annotations

import numpy as np

from .errors import ExportError


def phone_ids(manifest: dict, phones: str) -> np.ndarray:
    vocab = manifest.get("meta", {}).get("vocab")
    ids = []
    for tok in phones.split():
        if tok.isdigit():
            ids.append(int(tok))
        elif vocab and tok in vocab:
            ids.append(vocab.index(tok))
        else:
            raise ExportError(
                f"phone {tok!r} is not in the export's vocabulary"
                + ("" if vocab else " (export has none: pass ids)")
            )
    if not ids:
        raise ExportError("no phones given")
    return np.asarray(ids, dtype=np.int64)


def text_to_ids(manifest: dict, text: str) -> np.ndarray:
    """PaddleSpeech's Chinese frontend (pypinyin + its phone map), offline."""
    vocab = manifest.get("meta", {}).get("vocab")
    if not vocab:
        raise ExportError(
            "--text needs an export made with --phones-dict (the phone "
            "vocabulary); use --phones with ids otherwise"
        )
    try:
        from paddlespeech.t2s.frontend.zh_frontend import Frontend
    except Exception as exc:  # optional heavy deps (jieba, g2pM, paddlenlp...)
        raise ExportError(
            f"PaddleSpeech's text frontend is not importable here ({exc}); use --phones"
        ) from exc
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as td:
        vocab_file = Path(td) / "phone_id_map.txt"
        vocab_file.write_text("\n".join(f"{p} {i}" for i, p in enumerate(vocab)), encoding="utf-8")
        try:  # upstream's default: the g2pW polyphone model, fetched on first use
            frontend = Frontend(g2p_model="g2pW", phone_vocab_path=str(vocab_file))
        except Exception as exc:
            import sys

            print(
                f"warning: PaddleSpeech's g2pW model is not available ({_first_line(exc)}); "
                "using its pypinyin g2p instead (polyphones may differ)",
                file=sys.stderr,
            )
            frontend = Frontend(g2p_model="pypinyin", phone_vocab_path=str(vocab_file))
    out = frontend.get_input_ids(text, merge_sentences=True)
    return np.asarray(out["phone_ids"][0].numpy(), dtype=np.int64)


def _first_line(exc) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:160] if lines else type(exc).__name__


def numbers(text, n, dtype, what):
    try:
        vals = np.asarray([float(v) for v in str(text).replace(",", " ").split()], dtype)
    except ValueError as exc:
        raise ExportError(f"{what}: not a list of numbers ({exc})") from exc
    if len(vals) != n:
        raise ExportError(f"{what}: {len(vals)} values for {n} phones")
    return vals


def need_spk_emb(exp, spk_emb) -> np.ndarray:
    dim = exp.meta["spk_embed_dim"]
    if spk_emb is None:
        raise ExportError(
            f"{exp.manifest['model']} is a voice-cloning model: give a speaker "
            f"embedding of {dim} values (--spk-emb NPY, or --spk-wav WAV with "
            "--speaker-encoder DIR)"
        )
    emb = np.asarray(spk_emb, "float32").reshape(-1)
    if emb.shape != (dim,):
        raise ExportError(f"speaker embedding has {emb.size} values, the model expects {dim}")
    return emb


def acoustic_feeds(exp, *, phones=None, text=None, spk_emb=None, **_) -> list[np.ndarray]:
    """The feeds of an acoustic model's first graph: phone ids (from ``phones`` or ``text``),
    then zero tones, speaker 0, or the speaker embedding, as its inputs ask."""
    ids = phone_ids(exp.manifest, phones) if phones is not None else text_to_ids(exp.manifest, text)
    feeds = [ids]
    for inp in exp.manifest["graphs"][0]["inputs"][1:]:
        if inp["name"] == "tones":
            feeds.append(np.zeros_like(ids))
        elif inp["name"] == "spk_id":
            feeds.append(np.array([0], np.int64))  # speaker 0
        elif inp["name"] == "spk_emb":
            feeds.append(need_spk_emb(exp, spk_emb))
    return feeds


def features(manifest: dict, wav: np.ndarray, sr: int) -> np.ndarray:
    """Features of a waveform (float samples in [-1, 1]) as the export's recorded front end
    computes them: ``meta.frontend`` (ASR / ST recipes: Kaldi fbank + global CMVN; GE2E: its
    preprocessor's partial utterances, (N, T, n_mels)), else a
    log-mel spectrogram with ``meta.feature`` parameters. Returns (1, T, dim), or
    (1, dim, T) with ``meta.layout == "NCT"``."""
    meta = manifest.get("meta", {})
    front = meta.get("frontend") or {}
    kind = front.get("type", "logmel")
    want_sr = int(front.get("sample_rate") or meta.get("sample_rate") or sr)
    if sr != want_sr:
        raise ExportError(
            f"wav has {sr} Hz, the model expects {want_sr} Hz (resample it, "
            f"e.g. sox in.wav -r {want_sr} out.wav)"
        )
    if kind == "external":
        raise ExportError(f"{manifest['model']}: {front.get('reason')}")
    if kind == "fbank_kaldi":
        feats = kaldi_fbank(wav, front)[None]
    elif kind == "ge2e":
        return ge2e_partials(wav, front)
    elif kind == "logmel":
        feats = _logmel(meta, wav, sr)
    else:
        raise ExportError(f"unknown front end {kind!r} in the export's manifest")
    if meta.get("layout") == "NCT":
        return np.ascontiguousarray(feats.transpose(0, 2, 1))
    return feats


def ge2e_partials(wav: np.ndarray, front: dict) -> np.ndarray:
    """(N,) samples in [-1, 1] -> (partials, partial_n_frames, n_mels): GE2E's recipe front end,
    PaddleSpeech's own ``SpeakerVerificationPreprocessor`` with the recorded settings (volume
    normalisation to the target dBFS, increase only; long silences trimmed with webrtcvad;
    power mel; partial utterances)."""
    try:
        import webrtcvad  # noqa: F401
    except ImportError as exc:  # upstream then silently skips the VAD step
        raise ExportError(
            "GE2E's front end trims silences with webrtcvad, which is not importable here "
            f"({exc}): pip install webrtcvad"
        ) from exc
    from paddlespeech.vector.exps.ge2e.audio_processor import SpeakerVerificationPreprocessor

    proc = SpeakerVerificationPreprocessor(
        sampling_rate=int(front["sampling_rate"]),
        audio_norm_target_dBFS=front["audio_norm_target_dBFS"],
        vad_window_length=int(front["vad_window_length"]),
        vad_moving_average_width=int(front["vad_moving_average_width"]),
        vad_max_silence_length=int(front["vad_max_silence_length"]),
        mel_window_length=front["mel_window_length"],
        mel_window_step=front["mel_window_step"],
        n_mels=int(front["n_mels"]),
        partial_n_frames=int(front["partial_n_frames"]),
        min_pad_coverage=front["min_pad_coverage"],
        partial_overlap_ratio=front["partial_overlap_ratio"],
    )
    wav = np.asarray(wav, "float32")
    if not np.any(wav):
        raise ExportError("audio is silent (all samples are zero): nothing to embed")
    wav = proc.preprocess_wav(wav)
    if wav.size == 0:
        raise ExportError("the voice activity detector found no speech in the audio")
    return np.ascontiguousarray(proc.extract_mel_partials(wav), dtype="float32")


def kaldi_fbank(wav: np.ndarray, front: dict) -> np.ndarray:
    """(N,) samples in [-1, 1] -> (T, n_mels): the recipe's ``fbank_kaldi`` step (on 16-bit
    sample values, as PaddleSpeech reads wavs with dtype int16), then its ``cmvn_json`` step
    (float64, as its GlobalCMVN). The fbank itself is PaddleSpeech's Kaldi-compatible one."""
    import paddle
    from paddlespeech.audio.compliance import kaldi

    pcm = np.round(np.clip(wav, -1.0, 1.0 - 1.0 / 32768) * 32768.0).astype("float32")
    fs = int(front["sample_rate"])
    ms = fs / 1000
    min_len = int(front["win_length"])
    if pcm.size < min_len:
        raise ExportError(
            f"audio too short: {pcm.size} samples, the front end needs at least "
            f"{min_len} (one {front['win_length'] / ms:g} ms frame)"
        )
    mat = kaldi.fbank(
        paddle.to_tensor(pcm[None]),
        n_mels=int(front["n_mels"]),
        frame_length=front["win_length"] / ms,
        frame_shift=front["n_shift"] / ms,
        dither=0.0,
        energy_floor=float(front.get("energy_floor", 0.0)),
        sr=fs,
    )
    feats = np.squeeze(mat.numpy())
    if feats.ndim == 1:
        feats = feats[None]
    cmvn = front.get("cmvn")
    if cmvn:
        feats = (feats - np.asarray(cmvn["mean"], "float64")) / np.asarray(cmvn["std"], "float64")
    return feats.astype("float32")


def _logmel(meta: dict, wav: np.ndarray, sr: int) -> np.ndarray:
    import paddle
    from paddle.audio.features import LogMelSpectrogram

    feat = meta.get("feature") or {}
    n_mels = int(meta.get("n_mels") or feat.get("n_mels") or meta.get("feat_dim") or 80)
    x = paddle.to_tensor(wav.astype("float32")[None])
    mel = LogMelSpectrogram(
        sr=sr,
        n_fft=int(feat.get("n_fft", 512)),
        hop_length=int(feat.get("hop_length", sr // 100)),
        n_mels=n_mels,
        f_min=float(feat.get("f_min", 50.0)),
    )(x).numpy()
    return mel.transpose(0, 2, 1).astype("float32")  # (1, T, n_mels)
