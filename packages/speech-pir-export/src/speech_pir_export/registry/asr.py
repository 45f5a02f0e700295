"""Speech recognition and translation: DeepSpeech2 (offline / online), U2 (Conformer,
Transformer, U2++, Squeezeformer) and U2-ST. U2 decoding (chunk-by-chunk encoder with caches,
CTC prefix beam search, attention rescoring) and U2-ST beam search run in Python over the
exported graphs."""

from __future__ import annotations

import tempfile

import numpy as np
import paddle

from ..errors import ConfigError, ExportError
from . import Built, Call, Graph, Input, _floats, _need, _vocab_size, _yacs, register


def _ds2_offline(m, audio_chunk, audio_chunk_lens):
    return m(audio_chunk, audio_chunk_lens)


def _ds2_online(m, audio_chunk, audio_chunk_lens, chunk_state_h_box, chunk_state_c_box):
    probs, lens, h, c = m(audio_chunk, audio_chunk_lens, chunk_state_h_box, chunk_state_c_box)
    # with GRU the c state passes through unchanged: an output that *is* a feed makes the
    # predictor fail ("More than one shadow output named ..."), so copy
    return probs, lens, paddle.assign(h), paddle.assign(c)


def _u2_encoder_chunk(m, xs, offset, att_cache, cnn_cache):
    return m.forward_encoder_chunk(xs, offset, -1, att_cache, cnn_cache)


def _u2_ctc(m, xs):
    return m.ctc_activation(xs)


def _u2_att_decoder(m, hyps, hyps_lens, encoder_out):
    return m.forward_attention_decoder(hyps, hyps_lens, encoder_out, 0.0)


def _chunk_cases(window, context, feat, att_empty, cnn_empty=None):
    """The shape classes ``u2_encode`` feeds a chunk encoder, chained through the dygraph
    layer's own caches: the first chunk (zero-size caches, offset 0), a later full chunk
    (filled caches) and a short last chunk (``context`` frames)."""

    def cases(layer, rng):
        att, cnn, offset, out = np.zeros(att_empty, "float32"), None, 0, []
        if cnn_empty is not None:
            cnn = np.zeros(cnn_empty, "float32")
        for frames in (window, window, context):
            xs = rng.standard_normal((1, frames, feat)).astype("float32")
            feeds = [xs, np.array([offset], np.int32), att] + ([cnn] if cnn is not None else [])
            out.append(feeds)
            with paddle.no_grad():
                res = layer(*[paddle.to_tensor(f) for f in feeds])
            att = res[1].numpy()
            if cnn is not None:
                cnn = res[2].numpy()
            offset += int(res[0].shape[1])
        return out

    return cases


def _st_encoder_chunk(m, xs, offset, att_cache):
    return m.encoder.forward_chunk(xs, offset, -1, att_cache, paddle.zeros([0, 0, 0, 0]))[:2]


def _st_decoder(m, hyps, hyps_lens, encoder_out):
    n = paddle.shape(hyps)[0]
    memory = paddle.tile(encoder_out, [n, 1, 1])
    mask = paddle.ones([n, 1, paddle.shape(encoder_out)[1]], dtype="bool")
    out = m.st_decoder(memory, mask, hyps, hyps_lens)[0]
    return paddle.nn.functional.log_softmax(out, axis=-1)


def _text_result(exp, ids) -> dict:
    vocab = exp.meta.get("vocab")
    text = "".join(vocab[i] for i in ids) if vocab else " ".join(map(str, ids))
    return {"text": text, "token_ids": [int(i) for i in ids]}


def decode_ds2(exp, feats) -> dict:
    """Greedy CTC over the ``model`` graph (zero initial states for the online model)."""
    feeds = [feats, np.array([feats.shape[1]], np.int64)]
    for inp in exp.manifest["graphs"][0]["inputs"][2:]:
        shape = [1 if s == -1 else s for s in inp["shape"]]
        feeds.append(np.zeros(shape, "float32"))
    probs = exp.run(*feeds)[0][0]
    best = probs.argmax(-1)
    blank = int(exp.meta.get("blank_id", 0))
    ids = [int(t) for i, t in enumerate(best) if t != blank and (i == 0 or t != best[i - 1])]
    return _text_result(exp, ids)


def _is_ds2(online: bool):
    def detect(cfg):
        return (
            "num_rnn_layers" in cfg
            and "rnn_layer_size" in cfg
            and (
                ("rnn_direction" in cfg and (cfg["rnn_direction"] == "forward") == online)
                or ("rnn_direction" not in cfg and online is False)
            )
        )

    return detect


def _asr_meta(cfg, ctx, extra=None):
    sr = cfg.get("sample_rate") or 16000
    feat_dim = cfg.get("feat_dim") or cfg.get("input_dim")
    return {
        "sample_rate": sr,
        "feat_dim": feat_dim,
        "vocab": ctx.vocab,
        "blank_id": cfg.get("blank_id", 0),
        "frontend": audio_frontend(cfg, ctx, int(feat_dim), int(sr)),
    } | (extra or {})


# preprocess steps of the recipes that only augment training data (no-ops at inference,
# which is how PaddleSpeech's Transformation runs them with train=False)
TRAIN_ONLY = (
    "time_warp",
    "freq_mask",
    "time_mask",
    "spec_augment",
    "speed_perturbation",
    "noise_injection",
    "bandpass_perturbation",
    "impulse_response",
    "speed",
    "volume_perturbation",
)


def audio_frontend(cfg, ctx, feat_dim: int, sample_rate: int) -> dict:
    """The recipe's feature pipeline (``preprocess_config``: Kaldi fbank, then global CMVN
    from ``cmvn_json``), recorded so that ``infer`` applies exactly it. The raw inputs are
    recorded too (``preprocess``, ``cmvn_stats``), so a rebuild derives the same."""
    pre = ctx.preprocess
    steps = [] if not pre else pre.get("process") or []
    if not isinstance(steps, list) or not all(isinstance(x, dict) and "type" in x for x in steps):
        raise ConfigError("preprocess config: `process` must be a list of {type: ...} steps")
    unknown = [
        x["type"] for x in steps if x["type"] not in ("fbank_kaldi", "cmvn_json", *TRAIN_ONLY)
    ]
    if unknown:
        raise ConfigError(
            f"preprocess config: step(s) {', '.join(unknown)} are not supported "
            "at inference (supported: fbank_kaldi, cmvn_json; SpecAugment "
            "steps are skipped as upstream does at test time)"
        )
    fbank = next((x for x in steps if x["type"] == "fbank_kaldi"), None)
    out = {"preprocess": pre, "cmvn_stats": ctx.cmvn}
    if fbank is None and pre is not None:
        # e.g. ted_en_zh st1: fbank + pitch computed by Kaldi in data preparation
        return out | {
            "type": "external",
            "reason": (
                f"the recipe's {feat_dim}-dim features come from its data preparation (Kaldi "
                "tools), not from its preprocess config: compute them outside and pass them to "
                "the graphs (ExportedModel.run)"
            ),
        }
    fbank = fbank or {}
    fs = int(fbank.get("fs", sample_rate))
    out |= {
        "type": "fbank_kaldi",
        "sample_rate": fs,
        "n_mels": int(fbank.get("n_mels", feat_dim)),
        "n_shift": int(fbank.get("n_shift", fs // 100)),
        "win_length": int(fbank.get("win_length", fs // 40)),
        "energy_floor": float(fbank.get("energy_floor", 0.0)),
        "dither": 0.0,  # upstream runs with train=False: no dither at inference
        "source": "preprocess config"
        if pre is not None
        else "default (no preprocess config given): Kaldi fbank 25/10 ms",
    }
    if out["n_mels"] != feat_dim:
        raise ConfigError(
            f"preprocess config: fbank_kaldi n_mels {out['n_mels']} != the "
            f"model's feat_dim {feat_dim}"
        )
    if any(x["type"] == "cmvn_json" for x in steps):
        if ctx.cmvn is None:
            if not ctx.random_init:
                raise ConfigError(
                    "the recipe normalises features with global CMVN "
                    "(cmvn_json in its preprocess config): give the recipe's "
                    "data/mean_std.json with --cmvn"
                )
            out["cmvn_note"] = "no CMVN statistics given (random weights): identity"
        else:
            out["cmvn"] = cmvn_from_stats(ctx.cmvn, feat_dim)
    return out


def cmvn_from_stats(stats: dict, dim: int) -> dict:
    """PaddleSpeech's ``mean_std.json`` (mean_stat, var_stat, frame_num) -> mean and std,
    computed as its GlobalCMVN does (float64, std floored at 1e-20)."""
    try:
        count = float(stats["frame_num"])
        mean = np.asarray(stats["mean_stat"], "float64") / count
        var = np.asarray(stats["var_stat"], "float64") / count - mean**2
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"CMVN statistics need frame_num, mean_stat and var_stat: {exc}") from exc
    if mean.shape != (dim,) or count <= 0:
        raise ConfigError(
            f"CMVN statistics have {mean.size} dims (frame_num {count:g}); the model expects {dim}"
        )
    return {"mean": mean.tolist(), "std": np.maximum(np.sqrt(np.maximum(var, 0.0)), 1e-20).tolist()}


def _model_cmvn_file(c: dict, ctx, tmpdir) -> str | None:
    """A config whose model normalises inside (``cmvn_file`` set): the statistics become
    the encoder's GlobalCMVN layer, so they travel in the graph."""
    value = c.get("cmvn_file")
    if value in (None, "", "None", "null"):
        return None
    import json
    from pathlib import Path

    stats = ctx.cmvn
    if stats is None:
        if not ctx.random_init:
            raise ConfigError(
                f"the model normalises its input with {value} (cmvn_file): give "
                "that file with --cmvn"
            )
        dim = int(c.get("input_dim") or c.get("feat_dim") or 80)
        stats = {"frame_num": 1, "mean_stat": [0.0] * dim, "var_stat": [1.0] * dim}
    path = Path(tmpdir) / "cmvn.json"
    path.write_text(json.dumps(stats), encoding="utf-8")
    c["cmvn_file_type"] = "json"
    return str(path)


def _ds2(online):
    def build(cfg, ctx):
        from paddlespeech.s2t.models.ds2 import DeepSpeech2InferModel

        for key in ("num_conv_layers", "num_rnn_layers", "rnn_layer_size"):
            _need(cfg, key, "DeepSpeech2")
        c = dict(cfg)
        c.setdefault("input_dim", c.get("feat_dim") or 161)
        c["output_dim"] = _vocab_size(ctx) if ctx.vocab else c.get("output_dim") or 100
        c.setdefault("blank_id", 0)
        c.setdefault("rnn_direction", "forward" if online else "bidirect")
        c.setdefault("num_fc_layers", 0)
        c.setdefault("fc_layers_size_list", [])
        if isinstance(c["fc_layers_size_list"], str):  # "512, 256" in some example configs
            c["fc_layers_size_list"] = [
                int(v) for v in c["fc_layers_size_list"].split(",") if v.strip()
            ]
        c.setdefault("use_gru", False)
        model = DeepSpeech2InferModel.from_config(_yacs(c))
        feat = c["input_dim"]
        inputs = [
            Input("audio_chunk", [-1, -1, feat], "float32", _floats(1, 40, feat)),
            Input("audio_chunk_lens", [-1], "int64", lambda rng: np.array([40], np.int64)),
        ]
        outputs = ["probs", "probs_lens"]
        if online:
            n, h = c["num_rnn_layers"], c["rnn_layer_size"]
            inputs += [
                Input("chunk_state_h_box", [n, -1, h], "float32", _floats(n, 1, h)),
                Input("chunk_state_c_box", [n, -1, h], "float32", _floats(n, 1, h)),
            ]
            outputs += ["state_h", "state_c"]

        layer = Call(_ds2_online if online else _ds2_offline, model)
        return Built(
            model,
            [Graph("model", layer, inputs, outputs)],
            _asr_meta(c, ctx, {"rnn_direction": c["rnn_direction"]}),
        )

    return build


register("deepspeech2", "asr", "DeepSpeech2 (offline)", detect=_is_ds2(False), decode=decode_ds2)(
    _ds2(False)
)
register(
    "deepspeech2_online", "asr", "DeepSpeech2 (online)", detect=_is_ds2(True), decode=decode_ds2
)(_ds2(True))


def _is_u2_st(cfg):
    return "encoder" in cfg and "asr_weight" in (cfg.get("model_conf") or {})


def _is_u2(cfg):
    return (
        not _is_u2_st(cfg)
        and "encoder" in cfg
        and "decoder" in cfg
        and "ctc_weight" in (cfg.get("model_conf") or {})
        and "cmvn_file" in cfg
    )


@register(
    "u2",
    "asr",
    "U2 / Conformer / Transformer",
    detect=_is_u2,
    decode=lambda exp, feats, **kw: _text_result(exp, u2_decode(exp, feats, **kw)),
    notes="graphs: forward_encoder_chunk (streaming encoder with caches), "
    "ctc_activation (log-softmax over the vocabulary), "
    "forward_attention_decoder (attention rescoring of CTC hypotheses)",
)
def _u2(cfg, ctx):
    from paddlespeech.s2t.models.u2 import U2Model

    for key in ("encoder", "decoder", "model_conf"):
        _need(cfg, key, "U2")
    c = dict(cfg)
    c["input_dim"] = c.get("feat_dim") or c.get("input_dim") or 80
    c["output_dim"] = _vocab_size(ctx) if ctx.vocab else c.get("output_dim") or 100
    with tempfile.TemporaryDirectory() as td:
        c["cmvn_file"] = _model_cmvn_file(c, ctx, td)
        model = U2Model.from_config(_yacs(c))
    enc = c["encoder_conf"]["output_size"]
    heads = c["encoder_conf"]["attention_heads"]
    nblocks = c["encoder_conf"]["num_blocks"]
    feat = c["input_dim"]
    cnn_k = c["encoder_conf"].get("cnn_module_kernel", 15)
    # squeezeformer blocks carry a conv-module cache like conformer ones
    is_conformer = "conformer" in c["encoder"] or c["encoder"] == "squeezeformer"
    dk = enc // heads
    chunk = 16
    sub = model.encoder.embed.subsampling_rate
    right = model.encoder.embed.right_context
    frames = (chunk - 1) * sub + right + 1
    cache_t = chunk  # one previous chunk of attention cache

    vs = c["output_dim"]
    cnn_shape = [nblocks, 1, enc, cnn_k - 1] if is_conformer else [nblocks, 0, 0, 0]
    graphs = [
        Graph(
            "forward_encoder_chunk",
            Call(_u2_encoder_chunk, model),
            [
                Input("xs", [1, -1, feat], "float32", _floats(1, frames, feat)),
                Input("offset", [1], "int32", lambda rng: np.array([cache_t], np.int32)),
                Input(
                    "att_cache",
                    [nblocks, heads, -1, dk * 2],
                    "float32",
                    _floats(nblocks, heads, cache_t, dk * 2),
                ),
                Input(
                    "cnn_cache",
                    [nblocks, -1, enc, -1] if is_conformer else [-1, -1, -1, -1],
                    "float32",
                    _floats(*cnn_shape)
                    if is_conformer
                    else (lambda rng: np.zeros(cnn_shape, "float32")),
                ),
            ],
            ["encoder_out", "att_cache", "cnn_cache"],
            skip_prune=True,
            cases=_chunk_cases(
                frames,
                right + 1,
                feat,
                [nblocks, heads, 0, dk * 2],
                [nblocks, 1, enc, 0] if is_conformer else [0, 0, 0, 0],
            ),
        ),
        Graph(
            "ctc_activation",
            Call(_u2_ctc, model),
            [Input("xs", [1, -1, enc], "float32", _floats(1, chunk, enc))],
            ["log_probs"],
        ),
        Graph(
            "forward_attention_decoder",
            Call(_u2_att_decoder, model),
            [
                Input(
                    "hyps",
                    [-1, -1],
                    "int64",
                    lambda rng: np.concatenate(
                        [
                            np.full((3, 1), vs - 1, np.int64),
                            rng.integers(1, vs - 1, size=(3, 5), dtype=np.int64),
                        ],
                        axis=1,
                    ),
                ),
                Input("hyps_lens", [-1], "int64", lambda rng: np.array([6, 6, 6], np.int64)),
                Input("encoder_out", [1, -1, enc], "float32", _floats(1, chunk, enc)),
            ],
            ["decoder_out"],
        ),
    ]
    meta = _asr_meta(
        c,
        ctx,
        {
            "encoder": c["encoder"],
            "subsampling_rate": sub,
            "right_context": right,
            "sos_eos": vs - 1,
        },
    )
    return Built(model, graphs, meta)


@register(
    "u2_st",
    "st",
    "U2-ST (speech translation)",
    detect=_is_u2_st,
    decode=lambda exp, feats: _text_result(exp, u2_st_translate(exp, feats)),
    notes="graphs: forward_encoder_chunk (encoder.forward_chunk with caches) and "
    "forward_st_decoder (log-probabilities of target hypotheses)",
)
def _u2_st(cfg, ctx):
    from paddlespeech.s2t.models.u2_st import U2STModel

    for key in ("encoder", "decoder", "model_conf"):
        _need(cfg, key, "U2-ST")
    c = dict(cfg)
    c["input_dim"] = c.get("feat_dim") or c.get("input_dim") or 80
    c["output_dim"] = _vocab_size(ctx) if ctx.vocab else c.get("output_dim") or 100
    with tempfile.TemporaryDirectory() as td:
        c["cmvn_file"] = _model_cmvn_file(c, ctx, td)
        model = U2STModel.from_config(_yacs(c))
    enc = c["encoder_conf"]["output_size"]
    heads = c["encoder_conf"]["attention_heads"]
    nblocks = c["encoder_conf"]["num_blocks"]
    feat = c["input_dim"]
    dk = enc // heads
    chunk = 16
    sub = model.encoder.embed.subsampling_rate
    right = model.encoder.embed.right_context
    frames = (chunk - 1) * sub + right + 1
    vs = c["output_dim"]

    graphs = [
        Graph(
            "forward_encoder_chunk",
            Call(_st_encoder_chunk, model),
            [
                Input("xs", [1, -1, feat], "float32", _floats(1, frames, feat)),
                Input("offset", [1], "int32", lambda rng: np.array([chunk], np.int32)),
                Input(
                    "att_cache",
                    [nblocks, heads, -1, dk * 2],
                    "float32",
                    _floats(nblocks, heads, chunk, dk * 2),
                ),
            ],
            ["encoder_out", "att_cache"],
            skip_prune=True,
            cases=_chunk_cases(frames, right + 1, feat, [nblocks, heads, 0, dk * 2]),
        ),
        Graph(
            "forward_st_decoder",
            Call(_st_decoder, model),
            [
                Input(
                    "hyps",
                    [-1, -1],
                    "int64",
                    lambda rng: np.concatenate(
                        [
                            np.full((2, 1), vs - 1, np.int64),
                            rng.integers(1, vs - 1, size=(2, 4), dtype=np.int64),
                        ],
                        axis=1,
                    ),
                ),
                Input("hyps_lens", [-1], "int64", lambda rng: np.array([5, 5], np.int64)),
                Input("encoder_out", [1, -1, enc], "float32", _floats(1, chunk, enc)),
            ],
            ["log_probs"],
        ),
    ]
    meta = _asr_meta(
        c,
        ctx,
        {
            "encoder": c["encoder"],
            "subsampling_rate": sub,
            "right_context": right,
            "sos_eos": vs - 1,
            # the recipe's decode settings when its config carries them (else ST_DECODE)
            "decode": {k: v for k, v in (c.get("decode") or {}).items() if k in ST_DECODE},
        },
    )
    return Built(model, graphs, meta)


def u2_encode(exp, feats: np.ndarray, *, chunk_size=16, on_chunk=None) -> np.ndarray:
    """(1, T, feat) -> encoder output (1, T', D): U2Model._forward_encoder with
    simulate_streaming (all left chunks kept in the attention cache). ``on_chunk(y, frames)``
    gets each chunk's encoder output and the number of input frames consumed so far."""
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
        cnn = (
            np.zeros((cnn_shape[0], 1, cnn_shape[2], 0), "float32")
            if cnn_shape[2] != -1
            else np.zeros((0, 0, 0, 0), "float32")
        )
    n = feats.shape[1]
    if n < context:
        raise ExportError(f"input too short: {n} frames, the encoder needs >= {context}")
    outs, offset = [], 0
    for cur in range(0, n - context + 1, stride):
        chunk = np.ascontiguousarray(feats[:, cur : min(cur + window, n)], dtype="float32")
        feeds = [chunk, np.array([offset], np.int32), att] + ([cnn] if has_cnn else [])
        res = exp.run(*feeds, graph="forward_encoder_chunk")
        y, att = res[0], res[1]
        if has_cnn:
            cnn = res[2]
        outs.append(y)
        offset += y.shape[1]
        if on_chunk is not None:
            on_chunk(y, min(cur + window, n))
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


def u2_decode(
    exp,
    feats: np.ndarray,
    *,
    beam=10,
    chunk_size=16,
    ctc_weight=0.5,
    mode="attention_rescoring",
    on_partial=None,
) -> list[int]:
    """Token ids of the best hypothesis: CTC prefix beam search over ``ctc_activation``,
    then (attention_rescoring) ``forward_attention_decoder`` scores + ctc_weight * CTC
    score, as U2Model.attention_rescoring.

    Streaming: ``on_partial(ids, frames)`` is called after each encoder chunk with the CTC
    greedy hypothesis of the audio so far (what a streaming recogniser shows while the user
    speaks); the final result is the same as without it."""
    blank = int(exp.meta.get("blank_id", 0))
    partial_lp = []

    def chunk_done(y, frames):
        partial_lp.append(exp.run(y, graph="ctc_activation")[0][0])
        best = np.concatenate(partial_lp).argmax(-1)
        ids = [int(t) for i, t in enumerate(best) if t != blank and (i == 0 or t != best[i - 1])]
        on_partial(ids, frames)

    enc = u2_encode(
        exp, feats, chunk_size=chunk_size, on_chunk=chunk_done if on_partial is not None else None
    )
    log_probs = exp.run(enc, graph="ctc_activation")[0][0]
    hyps = ctc_prefix_beam_search(log_probs, beam, int(exp.meta.get("blank_id", 0)))
    if mode == "ctc_prefix_beam_search":
        return list(hyps[0][0])
    sos = eos = int(exp.meta["sos_eos"])
    width = max(len(h) for h, _ in hyps) or 1
    pad = np.full((len(hyps), width + 1), eos, np.int64)
    pad[:, 0] = sos
    for i, (h, _) in enumerate(hyps):
        pad[i, 1 : 1 + len(h)] = h if h else [int(exp.meta.get("blank_id", 0))]
    lens = np.array([len(h) + 1 for h, _ in hyps], np.int64)
    dec = exp.run(pad, lens, enc, graph="forward_attention_decoder")[0]
    best, best_score = 0, -np.inf
    for i, (h, ctc_score) in enumerate(hyps):
        score = sum(float(dec[i, j, w]) for j, w in enumerate(h)) + float(dec[i, len(h), eos])
        score += ctc_score * ctc_weight
        if score > best_score:
            best, best_score = i, score
    return list(hyps[best][0])


# the decode settings of PaddleSpeech's ST recipe (ted_en_zh/st1/conf/tuning/decode.yaml)
ST_DECODE = {"beam_size": 10, "word_reward": 0.7, "maxlenratio": 0.3, "decoding_chunk_size": -1}


def u2_st_translate(
    exp,
    feats: np.ndarray,
    *,
    beam=None,
    word_reward=None,
    maxlenratio=None,
    max_len=None,
    chunk_size=None,
) -> list[int]:
    """Target token ids as ``U2STModel.translate`` computes them (its ``fullsentence``
    decoding): the encoder over the whole utterance (``decoding_chunk_size`` -1: one chunk
    with empty caches; a positive ``chunk_size`` streams in chunks), then its beam search over
    ``forward_st_decoder`` (the whole prefix is re-decoded each step: the exported decoder has
    no cache) with the word reward for ended hypotheses, ``maxlen = max(int(T' * maxlenratio),
    5)``, ``<eos>`` appended at ``maxlen``, stopping when no open hypothesis can beat the best
    ended one. Defaults: the export's recorded decode settings, else the recipe's
    (``ST_DECODE``). The returned ids leave out ``<eos>``."""
    conf = {**ST_DECODE, **(exp.meta.get("decode") or {})}
    beam = int(beam or conf["beam_size"])
    word_reward = float(conf["word_reward"] if word_reward is None else word_reward)
    maxlenratio = float(conf["maxlenratio"] if maxlenratio is None else maxlenratio)
    chunk_size = int(chunk_size or conf["decoding_chunk_size"])
    if chunk_size <= 0:  # the whole utterance in one chunk: full attention
        chunk_size = feats.shape[1] // max(1, int(exp.meta["subsampling_rate"])) + 1
    enc = u2_encode(exp, feats, chunk_size=chunk_size)
    sos = eos = int(exp.meta["sos_eos"])
    maxlen = int(max_len) if max_len else max(int(enc.shape[1] * maxlenratio), 5)
    hyps = [((sos,), 0.0)]
    ended, best_ended = [], -np.inf
    for i in range(1, maxlen + 1):
        ys = np.array([h[0] for h in hyps], np.int64)
        lens = np.full(len(hyps), i, np.int64)
        logp = exp.run(ys, lens, enc, graph="forward_st_decoder")[0][:, -1]
        kept = []
        for j, (yseq, score) in enumerate(hyps):
            top = np.argsort(-logp[j], kind="stable")[:beam]
            kept += [(yseq + (int(t),), score + float(logp[j, t])) for t in top]
            kept = sorted(kept, key=lambda h: -h[1])[:beam]
        if i == maxlen:
            kept = [(yseq + (eos,), score) for yseq, score in kept]
        remained = []
        for yseq, score in kept:
            if yseq[-1] == eos:
                score += (i - 1) * word_reward
                best_ended = max(best_ended, score)
                ended.append((yseq, score))
            elif score + maxlen * word_reward > best_ended:
                remained.append((yseq, score))
        if not remained:
            break
        hyps = remained
    best = max(ended, key=lambda h: h[1])[0]
    return [t for t in best[1:] if t != eos]
