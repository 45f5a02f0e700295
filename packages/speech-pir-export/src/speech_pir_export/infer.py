"""Run export folders through the verified predictor: text -> wav, wav -> text / label /
embedding / keyword probability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .exporter import ExportedModel, ExportError


def phone_ids(manifest: dict, phones: str) -> np.ndarray:
    vocab = manifest.get("meta", {}).get("vocab")
    ids = []
    for tok in phones.split():
        if tok.isdigit():
            ids.append(int(tok))
        elif vocab and tok in vocab:
            ids.append(vocab.index(tok))
        else:
            raise ExportError(f"phone {tok!r} is not in the export's vocabulary"
                              + ("" if vocab else " (export has none: pass ids)"))
    if not ids:
        raise ExportError("no phones given")
    return np.asarray(ids, dtype=np.int64)


def text_to_ids(manifest: dict, text: str) -> np.ndarray:
    """PaddleSpeech's Chinese frontend (pypinyin + its phone map), offline."""
    vocab = manifest.get("meta", {}).get("vocab")
    if not vocab:
        raise ExportError("--text needs an export made with --phones-dict (the phone "
                          "vocabulary); use --phones with ids otherwise")
    try:
        from paddlespeech.t2s.frontend.zh_frontend import Frontend
    except Exception as exc:  # optional heavy deps (jieba, g2pM, paddlenlp...)
        raise ExportError(f"PaddleSpeech's text frontend is not importable here ({exc}); "
                          "use --phones") from exc
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(f"{p} {i}" for i, p in enumerate(vocab)))
    frontend = Frontend(phone_vocab_path=fh.name)
    out = frontend.get_input_ids(text, merge_sentences=True)
    return np.asarray(out["phone_ids"][0].numpy(), dtype=np.int64)


def _numbers(text, n, dtype, what):
    vals = np.asarray([float(v) for v in str(text).replace(",", " ").split()], dtype)
    if len(vals) != n:
        raise ExportError(f"{what}: {len(vals)} values for {n} phones")
    return vals


def _need_spk_emb(exp, spk_emb) -> np.ndarray:
    dim = exp.meta["spk_embed_dim"]
    if spk_emb is None:
        raise ExportError(f"{exp.manifest['model']} is a voice-cloning model: give a speaker "
                          f"embedding of {dim} values (--spk-emb NPY, or --spk-wav WAV with "
                          "--speaker-encoder DIR)")
    emb = np.asarray(spk_emb, "float32").reshape(-1)
    if emb.shape != (dim,):
        raise ExportError(f"speaker embedding has {emb.size} values, the model expects {dim}")
    return emb


def speaker_embedding(encoder_dir, wav: np.ndarray, sr: int) -> np.ndarray:
    """Utterance embedding from a GE2E or ECAPA-TDNN export (GE2E: mean of the embeddings of
    partial windows, re-normalised, as LSTMSpeakerEncoder.embed_utterance)."""
    exp = ExportedModel(encoder_dir)
    if exp.manifest["task"] != "vector":
        raise ExportError(f"{encoder_dir}: {exp.manifest['model']} is not a speaker encoder")
    feats = features(exp.manifest, wav, sr)
    if exp.manifest["model"] != "ge2e":
        return exp.run(feats)[0][0]
    n = int(exp.meta.get("partial_n_frames", 160))
    t = feats.shape[1]
    starts = list(range(0, max(t - n, 0) + 1, max(n // 2, 1)))
    parts = np.concatenate([feats[:, s:s + n] for s in starts]) if t >= n else feats
    emb = exp.run(np.ascontiguousarray(parts))[0].mean(axis=0)
    return (emb / max(np.linalg.norm(emb), 1e-12)).astype("float32")


def synthesize(am_dir, voc_dir, *, phones=None, text=None, seed=0, notes=None,
               note_durs=None, slurs=None, spk_emb=None):
    am = ExportedModel(am_dir)
    voc = ExportedModel(voc_dir)
    if am.manifest["model"] == "diffsinger":
        if phones is None or notes is None or note_durs is None:
            raise ExportError("DiffSinger needs --phones, --notes and --note-durs")
        ids = phone_ids(am.manifest, phones)
        n = len(ids)
        slur = (np.zeros(n, np.int64) if slurs is None
                else _numbers(slurs, n, np.int64, "--slurs"))
        mel = diffsinger_generate(am, ids, _numbers(notes, n, np.int64, "--notes"),
                                  _numbers(note_durs, n, np.float32, "--note-durs"), slur,
                                  seed=seed, progress=True)
        wav = vocode(voc, mel, seed=seed)
        return wav, int(voc.meta.get("sample_rate") or am.meta.get("sample_rate") or 24000)
    if am.manifest["task"] != "tts-acoustic":
        raise ExportError(f"{am_dir}: {am.manifest['model']} is not a TTS acoustic model")
    if voc.manifest["task"] != "vocoder":
        raise ExportError(f"{voc_dir}: {voc.manifest['model']} is not a vocoder")
    ids = phone_ids(am.manifest, phones) if phones is not None else text_to_ids(am.manifest,
                                                                                 text)
    feeds = [ids]
    for inp in am.manifest["graphs"][0]["inputs"][1:]:
        if inp["name"] == "tones":
            feeds.append(np.zeros_like(ids))
        elif inp["name"] == "spk_id":
            feeds.append(np.array([0], np.int64))  # speaker 0
        elif inp["name"] == "spk_emb":
            feeds.append(_need_spk_emb(am, spk_emb))
    if am.manifest["model"] == "tacotron2":
        mel = tacotron2_generate(am, ids, seed=seed, spk_emb=spk_emb)
    else:
        mel = am.run(*feeds)[0]
    wav = vocode(voc, mel, seed=seed)
    return wav, int(voc.meta.get("sample_rate") or am.meta.get("sample_rate") or 24000)


def vocode(voc: ExportedModel, mel: np.ndarray, seed=0) -> np.ndarray:
    if voc.manifest["model"] == "wavernn":
        return wavernn_generate(voc, mel, seed=seed, progress=True)
    feeds = [mel.astype("float32")]
    noise = voc.meta.get("noise")
    if noise:
        graph_inputs = voc.manifest["graphs"][0]["inputs"]
        ch = graph_inputs[1]["shape"][1]
        expr = noise["shape"][2]
        frames = mel.shape[0]
        length = int(eval(expr, {"ceil": np.ceil, "frames": frames}))  # noqa: S307 - own text
        feeds.append(np.random.default_rng(seed).standard_normal((1, ch, length))
                     .astype("float32"))
    return voc.run(*feeds)[0].reshape(-1)


def features(manifest: dict, wav: np.ndarray, sr: int) -> np.ndarray:
    """Features from a waveform with the export's parameters (log-mel, or the log-linear
    spectrogram DeepSpeech2 uses). PaddleSpeech's training-time CMVN is not applied."""
    import paddle
    from paddle.audio.features import LogMelSpectrogram, Spectrogram

    meta = manifest.get("meta", {})
    want_sr = int(meta.get("sample_rate") or sr)
    if sr != want_sr:
        raise ExportError(f"wav has {sr} Hz, the model expects {want_sr} Hz")
    x = paddle.to_tensor(wav.astype("float32")[None])
    model = manifest["model"]
    if model.startswith("deepspeech2"):
        n_fft = 2 * (int(meta.get("feat_dim") or 161) - 1)
        spec = Spectrogram(n_fft=n_fft, hop_length=int(sr * 0.01), power=2.0)(x)
        return np.log(spec.numpy() + 1e-10).transpose(0, 2, 1).astype("float32")
    feat = meta.get("feature") or {}
    n_mels = int(meta.get("n_mels") or feat.get("n_mels") or meta.get("feat_dim") or 80)
    mel = LogMelSpectrogram(sr=sr, n_fft=int(feat.get("n_fft", 512)),
                            hop_length=int(feat.get("hop_length", sr // 100)), n_mels=n_mels,
                            f_min=float(feat.get("f_min", 50.0)))(x).numpy()
    if model == "ecapa_tdnn":
        return mel.astype("float32")  # (1, n_mels, T)
    return mel.transpose(0, 2, 1).astype("float32")  # (1, T, n_mels)


def recognize(folder, wav: np.ndarray, sr: int) -> dict:
    exp = ExportedModel(folder)
    task = exp.manifest["task"]
    feats = features(exp.manifest, wav, sr)
    if task == "asr" and exp.manifest["model"].startswith("deepspeech2"):
        feeds = [feats, np.array([feats.shape[1]], np.int64)]
        for inp in exp.manifest["graphs"][0]["inputs"][2:]:
            shape = [1 if s == -1 else s for s in inp["shape"]]
            feeds.append(np.zeros(shape, "float32"))
        probs = exp.run(*feeds)[0][0]
        best = probs.argmax(-1)
        blank = int(exp.meta.get("blank_id", 0))
        ids = [int(t) for i, t in enumerate(best) if t != blank and (i == 0 or
                                                                      t != best[i - 1])]
        vocab = exp.meta.get("vocab")
        text = "".join(vocab[i] for i in ids) if vocab else " ".join(map(str, ids))
        return {"text": text, "token_ids": ids}
    if exp.manifest["model"] in ("u2", "u2_st"):
        ids = (u2_decode(exp, feats) if exp.manifest["model"] == "u2"
               else u2_st_translate(exp, feats))
        vocab = exp.meta.get("vocab")
        text = "".join(vocab[i] for i in ids) if vocab else " ".join(map(str, ids))
        return {"text": text, "token_ids": ids}
    if task in ("cls", "vector", "kws"):
        out = exp.run(feats)[0]
        if task == "cls":
            return {"label": int(out[0].argmax()), "logits": out[0].tolist()}
        if task == "kws":
            return {"keyword_prob_max": float(out.max())}
        if exp.manifest["model"] == "ge2e":
            return {"embedding": speaker_embedding(folder, wav, sr).tolist()}
        return {"embedding": out[0].tolist()}
    raise ExportError(f"`infer --wav` does not support {exp.manifest['model']} yet")


def main(args) -> int:
    folder = Path(args.dir)
    from .exporter import read_manifest

    manifest = read_manifest(folder)
    task = manifest["task"]
    if args.text is not None or args.phones is not None:
        if task not in ("tts-acoustic", "svs-acoustic") or not args.vocoder:
            raise ExportError("--text/--phones need a TTS acoustic export and --vocoder DIR")
        spk_emb = None
        if getattr(args, "spk_emb", None):
            spk_emb = np.load(args.spk_emb)
        elif getattr(args, "spk_wav", None):
            if not args.speaker_encoder:
                raise ExportError("--spk-wav needs --speaker-encoder DIR (a ge2e or "
                                  "ecapa_tdnn export)")
            import soundfile

            swav, ssr = soundfile.read(args.spk_wav, dtype="float32", always_2d=False)
            spk_emb = speaker_embedding(args.speaker_encoder,
                                        swav.mean(axis=1) if swav.ndim > 1 else swav, ssr)
        wav, sr = synthesize(folder, args.vocoder, phones=args.phones, text=args.text,
                             spk_emb=spk_emb,
                             notes=getattr(args, "notes", None),
                             note_durs=getattr(args, "note_durs", None),
                             slurs=getattr(args, "slurs", None))
        out = args.output or "out.wav"
        import soundfile

        soundfile.write(out, wav, sr)
        print(f"wrote {out}: {len(wav)} samples at {sr} Hz")
        return 0
    if task == "vocoder":
        mel = np.load(args.wav)
        wav = vocode(ExportedModel(folder), mel)
        out = args.output or "out.wav"
        import soundfile

        soundfile.write(out, wav, int(manifest["meta"].get("sample_rate") or 24000))
        print(f"wrote {out}")
        return 0
    import soundfile

    wav, sr = soundfile.read(args.wav, dtype="float32", always_2d=False)
    if wav.ndim > 1:
        wav = wav.mean(axis=1)
    result = recognize(folder, wav, sr)
    if "embedding" in result and not args.output:
        result["embedding"] = result["embedding"][:8] + ["..."]
    print(json.dumps(result, ensure_ascii=False))
    if args.output:
        Path(args.output).write_text(json.dumps(result), encoding="utf-8")
    return 0


def tacotron2_generate(exp: ExportedModel, ids: np.ndarray, *, threshold=0.5,
                       maxlenratio=10.0, minlenratio=0.0, seed=0, spk_emb=None) -> np.ndarray:
    """Upstream Decoder.inference's loop, in Python over the exported step graph."""
    d = exp.meta["decoder"]
    rng = np.random.default_rng(seed)
    feeds = [ids] + ([_need_spk_emb(exp, spk_emb)] if exp.meta.get("spk_embed_dim") else [])
    hs = exp.run(*feeds, graph="encoder")[0]
    t = hs.shape[1]
    z = np.zeros((d["layers"], 1, d["units"]), "float32")
    c = np.zeros_like(z)
    prev_out = np.zeros((1, d["odim"]), "float32")
    att_prev = np.full((1, t), 1.0 / t, "float32")  # upstream: uniform over the input
    outs = []
    maxlen, minlen = int(t * maxlenratio), int(t * minlenratio)
    idx = 0
    p_keep = 1.0 - d["prenet_dropout"]
    while True:
        idx += d["reduction_factor"]
        masks = ((rng.random((max(d["prenet_layers"], 1), 1, d["prenet_units"])) < p_keep)
                 / p_keep).astype("float32")
        out, prob, att_w, z, c = exp.run(hs, att_prev, z, c, prev_out, masks,
                                         graph="decoder_step")
        outs.append(out)
        prev_out = np.ascontiguousarray(out[:, :, -1])
        att_prev = (att_prev + att_w) if d["cumulate_att_w"] and idx > 1 else att_w
        att_prev = att_prev.astype("float32")
        if (float(prob.max()) >= threshold or idx >= maxlen) and idx >= minlen:
            break
    return exp.run(np.concatenate(outs, axis=2), graph="postnet")[0]


# --------------------------------------------------------------------------------------------
# WaveRNN: upstream WaveRNN.generate, in Python over the exported conditioner / step graphs
# --------------------------------------------------------------------------------------------


def _fold_with_overlap(x: np.ndarray, target: int, overlap: int) -> np.ndarray:
    """(1, T, F) -> (folds, target + 2 * overlap, F), as upstream fold_with_overlap."""
    total = x.shape[1]
    folds = (total - overlap) // (target + overlap)
    extended = folds * (overlap + target) + overlap
    remaining = total - extended
    if remaining != 0:
        folds += 1
        pad = target + 2 * overlap - remaining
        x = np.concatenate([x, np.zeros((1, pad, x.shape[2]), x.dtype)], axis=1)
    return np.stack([x[0, i * (target + overlap):i * (target + overlap) + target + 2 * overlap]
                     for i in range(folds)])


def _xfade_and_unfold(y: np.ndarray, overlap: int) -> np.ndarray:
    folds, length = y.shape
    target = length - 2 * overlap
    total = folds * (target + overlap) + overlap
    t = np.linspace(-2.3, 2.3, overlap, dtype="float32")
    fade_in = 1.0 / (1.0 + np.exp(-t))
    y = y.copy()
    y[:, :overlap] *= fade_in
    y[:, -overlap:] *= 1.0 - fade_in
    out = np.zeros(total, "float32")
    for i in range(folds):
        start = i * (target + overlap)
        out[start:start + length] += y[i]
    return out


def wavernn_generate(exp, logmel: np.ndarray, *, seed=0, batched=None, target=None,
                     overlap=None, progress=False) -> np.ndarray:
    """Log-mel (T, n_mels) -> waveform (T * hop,). ``exp`` is an ExportedModel (predictor)
    or exporter.DygraphModel (same graphs in dygraph): one step graph call per sample of
    each fold; the uniform draws of the categorical sampling come from ``seed``."""
    w = exp.meta["wavernn"]
    batched = w["gen_batched"] if batched is None else batched
    target = w["target"] if target is None else target
    overlap = w["overlap"] if overlap is None else overlap
    mels, aux = exp.run(logmel.astype("float32"), graph="conditioner")
    wave_len = logmel.shape[0] * w["hop_length"]
    if batched:
        mels, aux = (_fold_with_overlap(mels, target, overlap),
                     _fold_with_overlap(aux, target, overlap))
    b, steps = mels.shape[:2]
    rng = np.random.default_rng(seed)
    h1 = np.zeros((b, w["rnn_dims"]), "float32")
    h2 = np.zeros_like(h1)
    x = np.zeros((b, 1), "float32")
    out = np.empty((b, steps), "float32")
    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="wavernn", unit="step", leave=False)
    for i in it:
        u = rng.random((b, 1)).astype("float32")
        x, h1, h2, _ = exp.run(x, np.ascontiguousarray(mels[:, i]),
                               np.ascontiguousarray(aux[:, i]), h1, h2, u, graph="step")
        out[:, i] = x[:, 0]
    if w["mu_law"]:
        mu = w["n_classes"] - 1
        out = np.sign(out) / mu * ((1 + mu) ** np.abs(out) - 1)
    wav = _xfade_and_unfold(out, overlap) if batched else out[0]
    wav = wav[:wave_len].astype("float32")
    fade = min(10 * w["hop_length"], len(wav))  # upstream fails when wav < 10 hops
    wav[len(wav) - fade:] *= np.linspace(1, 0, 10 * w["hop_length"], dtype="float32")[
        10 * w["hop_length"] - fade:]
    return wav


# --------------------------------------------------------------------------------------------
# DiffSinger: upstream DiffSinger.inference (shallow diffusion, DDPM), in Python over the
# exported fs2 / denoiser graphs
# --------------------------------------------------------------------------------------------


def diffsinger_generate(exp, text, note, note_dur, is_slur, *, seed=0,
                        num_inference_steps=None, progress=False) -> np.ndarray:
    """Score -> log-mel (T, n_mels). Noise draws (initial, then one per step t > 0) come
    from ``seed`` in upstream's order."""
    d = exp.meta["diffusion"]
    acp = np.asarray(d["alphas_cumprod"], "float32")
    steps = int(num_inference_steps or d["num_inference_steps"])
    ref, cond = exp.run(np.asarray(text, np.int64), np.asarray(note, np.int64),
                        np.asarray(note_dur, np.float32), np.asarray(is_slur, np.int64),
                        graph="fs2")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(ref.shape).astype("float32")
    stride = d["num_train_timesteps"] // steps
    timesteps = np.arange(steps)[::-1] * stride
    t0 = timesteps[0]
    x = np.sqrt(acp[t0]) * ref + np.sqrt(1 - acp[t0]) * noise
    it = timesteps
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="diffsinger", unit="step", leave=False)
    for t in it:
        eps = exp.run(x.astype("float32"), np.array([t], np.int64), cond, graph="denoiser")[0]
        prev = t - stride
        a_t = acp[t]
        a_prev = acp[prev] if prev >= 0 else np.float32(1.0)
        beta_t, beta_prev = 1 - a_t, 1 - a_prev
        cur_alpha = a_t / a_prev
        cur_beta = 1 - cur_alpha
        if d["prediction_type"] != "epsilon":
            raise ExportError(f"DDPM prediction_type {d['prediction_type']!r} not supported")
        x0 = (x - beta_t ** 0.5 * eps) / a_t ** 0.5
        if d["clip_sample"]:
            x0 = np.clip(x0, -d["clip_sample_range"], d["clip_sample_range"])
        x = (a_prev ** 0.5 * cur_beta / beta_t) * x0 + (cur_alpha ** 0.5 * beta_prev / beta_t) * x
        if t > 0:
            var = max((1 - a_prev) / (1 - a_t) * cur_beta, 1e-20)
            if d["variance_type"] != "fixed_small":
                raise ExportError(f"DDPM variance_type {d['variance_type']!r} not supported")
            x = x + var ** 0.5 * rng.standard_normal(x.shape).astype("float32")
    if d["stretch"]:
        lo = np.asarray(d["spec_min"], "float32")[None, :, None]
        hi = np.asarray(d["spec_max"], "float32")[None, :, None]
        x = (x + 1) / 2 * (hi - lo) + lo
    return x[0].T.astype("float32")


# --------------------------------------------------------------------------------------------
# U2 / U2-ST: upstream's chunk-by-chunk encoder loop, CTC prefix beam search and attention
# rescoring (U2) or autoregressive beam search (U2-ST), in Python over the exported graphs
# --------------------------------------------------------------------------------------------


def u2_encode(exp, feats: np.ndarray, *, chunk_size=16) -> np.ndarray:
    """(1, T, feat) -> encoder output (1, T', D): U2Model._forward_encoder with
    simulate_streaming (all left chunks kept in the attention cache)."""
    sub = int(exp.meta["subsampling_rate"])
    context = int(exp.meta["right_context"]) + 1
    stride = sub * chunk_size
    window = (chunk_size - 1) * sub + context
    inputs = exp.manifest["graphs"][0]["inputs"]
    att_shape = inputs[2]["shape"]
    att = np.zeros((att_shape[0], att_shape[1], 0, att_shape[3]), "float32")
    has_cnn = len(inputs) > 3
    if has_cnn:
        cnn_shape = inputs[3]["shape"]
        cnn = (np.zeros((cnn_shape[0], 1, cnn_shape[2], 0), "float32") if cnn_shape[2] != -1
               else np.zeros((0, 0, 0, 0), "float32"))
    n = feats.shape[1]
    if n < context:
        raise ExportError(f"input too short: {n} frames, the encoder needs >= {context}")
    outs, offset = [], 0
    for cur in range(0, n - context + 1, stride):
        chunk = np.ascontiguousarray(feats[:, cur:min(cur + window, n)], dtype="float32")
        feeds = [chunk, np.array([offset], np.int32), att] + ([cnn] if has_cnn else [])
        res = exp.run(*feeds, graph="forward_encoder_chunk")
        y, att = res[0], res[1]
        if has_cnn:
            cnn = res[2]
        outs.append(y)
        offset += y.shape[1]
    return np.concatenate(outs, axis=1)


def _log_add(*xs):
    m = max(xs)
    if m == -np.inf:
        return m
    return m + np.log(sum(np.exp(x - m) for x in xs))


def ctc_prefix_beam_search(log_probs: np.ndarray, beam: int, blank: int = 0):
    """(T, V) log-probabilities -> [(prefix tuple, log score)] best first (upstream's
    _ctc_prefix_beam_search)."""
    hyps = [((), (0.0, -np.inf))]
    for lp in log_probs:
        nxt: dict = {}
        for s in np.argsort(-lp, kind="stable")[:beam]:
            s, ps = int(s), float(lp[s])
            for prefix, (pb, pnb) in hyps:
                last = prefix[-1] if prefix else None
                if s == blank:
                    n_pb, n_pnb = nxt.get(prefix, (-np.inf, -np.inf))
                    nxt[prefix] = (_log_add(n_pb, pb + ps, pnb + ps), n_pnb)
                elif s == last:
                    n_pb, n_pnb = nxt.get(prefix, (-np.inf, -np.inf))
                    nxt[prefix] = (n_pb, _log_add(n_pnb, pnb + ps))
                    new = prefix + (s,)
                    n_pb, n_pnb = nxt.get(new, (-np.inf, -np.inf))
                    nxt[new] = (n_pb, _log_add(n_pnb, pb + ps))
                else:
                    new = prefix + (s,)
                    n_pb, n_pnb = nxt.get(new, (-np.inf, -np.inf))
                    nxt[new] = (n_pb, _log_add(n_pnb, pb + ps, pnb + ps))
        hyps = sorted(nxt.items(), key=lambda kv: _log_add(*kv[1]), reverse=True)[:beam]
    return [(prefix, _log_add(*scores)) for prefix, scores in hyps]


def u2_decode(exp, feats: np.ndarray, *, beam=10, chunk_size=16, ctc_weight=0.5,
              mode="attention_rescoring") -> list[int]:
    """Token ids of the best hypothesis: CTC prefix beam search over ``ctc_activation``,
    then (attention_rescoring) ``forward_attention_decoder`` scores + ctc_weight * CTC
    score, as U2Model.attention_rescoring."""
    enc = u2_encode(exp, feats, chunk_size=chunk_size)
    log_probs = exp.run(enc, graph="ctc_activation")[0][0]
    hyps = ctc_prefix_beam_search(log_probs, beam, int(exp.meta.get("blank_id", 0)))
    if mode == "ctc_prefix_beam_search":
        return list(hyps[0][0])
    sos = eos = int(exp.meta["sos_eos"])
    width = max(len(h) for h, _ in hyps) or 1
    pad = np.full((len(hyps), width + 1), eos, np.int64)
    pad[:, 0] = sos
    for i, (h, _) in enumerate(hyps):
        pad[i, 1:1 + len(h)] = h if h else [int(exp.meta.get("blank_id", 0))]
    lens = np.array([len(h) + 1 for h, _ in hyps], np.int64)
    dec = exp.run(pad, lens, enc, graph="forward_attention_decoder")[0]
    best, best_score = 0, -np.inf
    for i, (h, ctc_score) in enumerate(hyps):
        score = sum(float(dec[i, j, w]) for j, w in enumerate(h)) + float(dec[i, len(h), eos])
        score += ctc_score * ctc_weight
        if score > best_score:
            best, best_score = i, score
    return list(hyps[best][0])


def u2_st_translate(exp, feats: np.ndarray, *, beam=5, max_len=None, chunk_size=16
                    ) -> list[int]:
    """Target token ids: beam search over ``forward_st_decoder`` (the whole prefix is
    re-decoded each step: the exported decoder has no cache), ended by <eos>."""
    enc = u2_encode(exp, feats, chunk_size=chunk_size)
    sos = eos = int(exp.meta["sos_eos"])
    max_len = max_len or max(4, enc.shape[1])
    beams = [((sos,), 0.0)]
    done = []
    for _ in range(max_len):
        hyps = np.array([b[0] for b in beams], np.int64)
        lens = np.full(len(beams), hyps.shape[1], np.int64)
        lp = exp.run(hyps, lens, enc, graph="forward_st_decoder")[0][:, -1]
        cand = []
        for i, (prefix, score) in enumerate(beams):
            for tok in np.argsort(-lp[i], kind="stable")[:beam]:
                cand.append((prefix + (int(tok),), score + float(lp[i, tok])))
        cand.sort(key=lambda c: c[1], reverse=True)
        beams = []
        for prefix, score in cand:
            (done if prefix[-1] == eos else beams).append((prefix, score))
            if len(beams) == beam:
                break
        if not beams or (done and max(d[1] for d in done) >= beams[0][1]):
            break
    best = max(done or beams, key=lambda c: c[1])[0]
    return [t for t in best[1:] if t != eos]
