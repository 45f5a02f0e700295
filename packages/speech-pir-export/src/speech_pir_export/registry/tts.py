"""TTS acoustic and end-to-end models: FastSpeech2 (+ its streaming CNNDecoder graphs),
SpeedySpeech, VITS, JETS. (Tacotron2 and DiffSinger, restructured around a Python loop, have
their own modules.)"""

from __future__ import annotations

import numpy as np
import paddle

from ..frontend import acoustic_feeds
from . import (
    Built,
    Call,
    ConfigError,
    Graph,
    Input,
    _build_model,
    _floats,
    _ids,
    _need,
    _tts_meta,
    _unit,
    _vocab_size,
    _zscore,
    register,
)


def generate_acoustic(exp, *, seed=0, **inputs) -> np.ndarray:
    """Phones (+ tones / speaker) -> log-mel (T, n_mels): one call of the ``model`` graph."""
    return exp.run(*acoustic_feeds(exp, **inputs))[0]


def _is_fs2(cfg):
    m = cfg.get("model") or {}
    return "adim" in m and "duration_predictor_layers" in m and "pitch_predictor_layers" in m


@register(
    "fastspeech2",
    "tts-acoustic",
    "FastSpeech2",
    checkpoint_key="main_params",
    needs_stats=True,
    detect=_is_fs2,
    generate=generate_acoustic,
)
def _fastspeech2(cfg, ctx):
    from paddlespeech.t2s.models.fastspeech2 import FastSpeech2, FastSpeech2Inference

    mcfg = dict(_need(cfg, "model", "FastSpeech2"))
    odim = cfg.get("n_mels", 80)
    spk_num = len(ctx.speakers) if ctx.speakers else None
    if spk_num is None and mcfg.get("spk_embed_dim") is None and cfg.get("num_speakers"):
        spk_num = int(cfg["num_speakers"])
    model = _build_model(
        FastSpeech2, dict(idim=_vocab_size(ctx), odim=odim, spk_num=spk_num, **mcfg), "FastSpeech2"
    )
    if ctx.random_init:
        # root cause 15: random log-durations are ~0 -> zero frames; give every phone frames
        paddle.nn.initializer.Constant(1.5)(model.duration_predictor.linear.bias)
    inference = FastSpeech2Inference(_zscore(ctx, odim), model)
    vs = _vocab_size(ctx)
    inputs = [Input("text", [-1], "int64", _ids(12, vs))]
    meta = _tts_meta(cfg, ctx)
    spk_dim = mcfg.get("spk_embed_dim")
    if spk_num:
        inputs.append(Input("spk_id", [1], "int64", lambda rng: np.array([0], np.int64)))
    elif spk_dim:
        # voice cloning (aishell3/vc1, vc2): the speaker is a GE2E / ECAPA embedding input;
        # without it upstream silently drops the speaker conditioning
        inference = Call(_fs2_spk_emb, inner=inference)
        inputs.append(Input("spk_emb", [spk_dim], "float32", _unit(spk_dim)))
        meta["spk_embed_dim"] = spk_dim
    return Built(model, [Graph("model", inference, inputs, ["logmel"])], meta, ("mel",))


def _fs2_spk_emb(inference, text, spk_emb):
    return inference(text, spk_emb=spk_emb)


def _fs2s_encoder(fs2, text):
    return fs2.encoder_infer(text)


def _fs2s_decoder(fs2, hidden):
    # CNNDecoder projects to odim itself (FastSpeech2._forward skips feat_out for it)
    return fs2.decoder(hidden, None)


def _fs2s_postnet(fs2, mel_t):
    return fs2.postnet(mel_t)


def _is_fs2_stream(cfg):
    m = cfg.get("model") or {}
    return _is_fs2(cfg) and m.get("decoder_type") == "cnndecoder"


@register(
    "fastspeech2_streaming",
    "tts-acoustic",
    "FastSpeech2 (CNNDecoder)",
    checkpoint_key="main_params",
    needs_stats=True,
    detect=_is_fs2_stream,
    generate=lambda exp, **kw: generate_streaming(exp, **kw),
    detect_priority=1,
    notes="three graphs: encoder (text -> hidden), decoder (hidden chunk -> mel), "
    "postnet (mel -> residual), as synthesize_streaming.py",
)
def _fastspeech2_streaming(cfg, ctx):
    from paddlespeech.t2s.models.fastspeech2 import FastSpeech2

    mcfg = dict(_need(cfg, "model", "FastSpeech2"))
    if mcfg.get("decoder_type") != "cnndecoder":
        raise ConfigError("fastspeech2_streaming needs `decoder_type: cnndecoder` in model")
    odim = cfg.get("n_mels", 80)
    model = _build_model(FastSpeech2, dict(idim=_vocab_size(ctx), odim=odim, **mcfg), "FastSpeech2")
    if ctx.random_init:
        paddle.nn.initializer.Constant(1.5)(model.duration_predictor.linear.bias)
    adim = mcfg["adim"]

    vs = _vocab_size(ctx)
    context = _conv_context(model.decoder) + _conv_context(model.postnet)
    block = 42  # synthesize_streaming.py's default block
    # the chunk lengths generate_streaming feeds: first (left edge), middle, a short last one
    lengths = (block + context, block + 2 * context, context + 1)
    graphs = [
        Graph(
            "encoder",
            Call(_fs2s_encoder, model),
            [Input("text", [-1], "int64", _ids(12, vs))],
            ["hidden"],
        ),
        Graph(
            "decoder",
            Call(_fs2s_decoder, model),
            [Input("hidden", [1, -1, adim], "float32", _floats(1, 20, adim))],
            ["normalized_mel"],
            cases=_length_cases(lambda rng, n: _floats(1, n, adim)(rng), lengths),
        ),
        Graph(
            "postnet",
            Call(_fs2s_postnet, model),
            [Input("mel_t", [1, odim, -1], "float32", _floats(1, odim, 20))],
            ["residual"],
            cases=_length_cases(lambda rng, n: _floats(1, odim, n)(rng), lengths),
        ),
    ]
    meta = _tts_meta(cfg, ctx)
    stats = ctx.stats or {}
    meta["streaming"] = {
        "context_frames": context,
        "block_frames": block,
        "mu": np.asarray(stats.get("mu", np.zeros(odim)), "float64").tolist(),
        "sigma": np.asarray(stats.get("sigma", np.ones(odim)), "float64").tolist(),
    }
    return Built(model, graphs, meta, ("mel",))


def _length_cases(make, lengths):
    """Cases of a one-input graph at each of ``lengths`` (``make(rng, n) -> array``)."""
    return lambda layer, rng: [[make(rng, n)] for n in lengths]


def _conv_context(layer) -> int:
    """Frames each side that a stack of 1-D convolutions sees: the sum of
    dilation * (kernel - 1) / 2 over its Conv1D layers (an upper bound for a sequential
    stack; residual branches see no more)."""
    total = 0
    for sub in layer.sublayers(include_self=True):
        if isinstance(sub, paddle.nn.Conv1D):
            k = sub._kernel_size[0]
            d = sub._dilation[0]
            total += -(-d * (k - 1) // 2)  # ceil
    return total


def generate_streaming(exp, *, seed=0, block=None, on_chunk=None, **inputs) -> np.ndarray:
    """FastSpeech2 (CNNDecoder) chunk by chunk, as synthesize_streaming.py: the encoder once,
    then the decoder and postnet on blocks of ``block`` frames with the graphs' full context
    on each side (``meta.streaming.context_frames``), so the concatenated chunks equal the
    whole-utterance result. ``on_chunk(logmel_chunk)`` gets each chunk as it is ready."""
    st = exp.meta["streaming"]
    text = acoustic_feeds(exp, **inputs)[0]
    hs = exp.run(text, graph="encoder")[0]  # (1, T, adim)
    total = hs.shape[1]
    block = int(block or st["block_frames"]) if total else 0
    pad = int(st["context_frames"])
    mu = np.asarray(st["mu"], "float32")
    sigma = np.asarray(st["sigma"], "float32")
    chunks = []
    for start in range(0, total, max(block, 1)):
        lo, hi = max(0, start - pad), min(total, start + block + pad)
        norm = exp.run(np.ascontiguousarray(hs[:, lo:hi]), graph="decoder")[0]
        res = exp.run(np.ascontiguousarray(norm.transpose(0, 2, 1)), graph="postnet")[0]
        norm = norm + res.transpose(0, 2, 1)
        keep = norm[0, start - lo : start - lo + min(block, total - start)]
        logmel = (keep * sigma + mu).astype("float32")
        if on_chunk is not None:
            on_chunk(logmel)
        chunks.append(logmel)
    return np.concatenate(chunks) if chunks else np.zeros((0, len(mu)), "float32")


def _is_speedy(cfg):
    m = cfg.get("model") or {}
    return "encoder_hidden_size" in m and "duration_predictor_hidden_size" in m


@register(
    "speedyspeech",
    "tts-acoustic",
    "SpeedySpeech",
    checkpoint_key="main_params",
    needs_stats=True,
    detect=_is_speedy,
    generate=generate_acoustic,
)
def _speedyspeech(cfg, ctx):
    from paddlespeech.t2s.models.speedyspeech import SpeedySpeech, SpeedySpeechInference

    mcfg = dict(_need(cfg, "model", "SpeedySpeech"))
    tone_size = len(ctx.tones) if ctx.tones else 6
    odim = cfg.get("n_mels", 80)
    model = _build_model(
        SpeedySpeech, dict(vocab_size=_vocab_size(ctx), tone_size=tone_size, **mcfg), "SpeedySpeech"
    )
    if ctx.random_init:
        paddle.nn.initializer.Constant(1.5)(model.duration_predictor.linear.bias)
    inference = SpeedySpeechInference(_zscore(ctx, odim), model)
    vs = _vocab_size(ctx)
    inputs = [
        Input("phones", [-1], "int64", _ids(12, vs)),
        Input("tones", [-1], "int64", _ids(12, tone_size, 0)),
    ]
    return Built(
        model, [Graph("model", inference, inputs, ["logmel"])], _tts_meta(cfg, ctx), ("mel",)
    )


def _is_e2e(gen_type):
    def detect(cfg):
        return (cfg.get("model") or {}).get("generator_type") == gen_type

    return detect


def _vits(m, text, noise_scale, noise_scale_dur):
    """VITSInference with the noise scales as inputs (0 makes the graph deterministic)."""
    return m.inference(text, noise_scale=noise_scale, noise_scale_dur=noise_scale_dur)["wav"]


def _vits_spk_emb(m, text, noise_scale, noise_scale_dur, spk_emb):
    return m.inference(
        text, spembs=spk_emb, noise_scale=noise_scale, noise_scale_dur=noise_scale_dur
    )["wav"]


@register(
    "vits",
    "tts-e2e",
    "VITS",
    checkpoint_key="main_params",
    detect=_is_e2e("vits_generator"),
    notes="noise_scale and noise_scale_dur are inputs ([1] float32): verification runs "
    "at 0 (deterministic), inference at 0.667 / 0.8",
)
def _build_vits(cfg, ctx):
    from paddlespeech.t2s.models.vits import VITS

    mcfg = dict(_need(cfg, "model", "VITS"))
    if mcfg.get("generator_type") != "vits_generator":
        raise ConfigError("model.generator_type is not vits_generator")
    spk_num = len(ctx.speakers) if ctx.speakers else None
    if spk_num:
        mcfg["generator_params"] = dict(mcfg["generator_params"], spks=spk_num)
    model = _build_model(
        VITS, dict(idim=_vocab_size(ctx), odim=cfg["n_fft"] // 2 + 1, **mcfg), "VITS"
    )

    vs = _vocab_size(ctx)
    zero = lambda rng: np.zeros([1], "float32")  # noqa: E731
    inputs = [
        Input("text", [-1], "int64", _ids(10, vs)),
        Input("noise_scale", [1], "float32", zero),
        Input("noise_scale_dur", [1], "float32", zero),
    ]
    meta = _tts_meta(cfg, ctx) | {"noise_defaults": [0.667, 0.8]}
    spk_dim = mcfg["generator_params"].get("spk_embed_dim")
    layer = Call(_vits, model)
    if spk_dim:  # aishell3/vits-vc: voice cloning from a speaker embedding
        layer = Call(_vits_spk_emb, model)
        inputs.append(Input("spk_emb", [spk_dim], "float32", _unit(spk_dim)))
        meta["spk_embed_dim"] = spk_dim
    return Built(model, [Graph("model", layer, inputs, ["wav"])], meta)


@register("jets", "tts-e2e", "JETS", checkpoint_key="main_params", detect=_is_e2e("jets_generator"))
def _jets(cfg, ctx):
    from paddlespeech.t2s.models.jets import JETS, JETSInference

    mcfg = dict(_need(cfg, "model", "JETS"))
    if mcfg.get("generator_type") != "jets_generator":
        raise ConfigError("model.generator_type is not jets_generator")
    model = _build_model(
        JETS, dict(idim=_vocab_size(ctx), odim=cfg["n_fft"] // 2 + 1, **mcfg), "JETS"
    )
    if ctx.random_init:
        # root cause 15: random durations explode (24 GB RSS); one constant duration instead
        lin = model.generator.duration_predictor.linear
        paddle.nn.initializer.Constant(0.0)(lin.weight)
        paddle.nn.initializer.Constant(1.5)(lin.bias)
    vs = _vocab_size(ctx)
    return Built(
        model,
        [
            Graph(
                "model", JETSInference(model), [Input("text", [-1], "int64", _ids(10, vs))], ["wav"]
            )
        ],
        _tts_meta(cfg, ctx),
    )
