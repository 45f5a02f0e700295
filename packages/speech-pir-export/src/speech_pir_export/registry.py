"""Export registry: how each PaddleSpeech model family is built from its example config,
which functions are exported, with which input specs, and with which sample inputs they
are verified.

One entry per model family. ``build(cfg, ctx)`` returns a :class:`Built`: the dygraph model
that owns the parameters (its ``state_dict`` is what checkpoints load into) and the graphs to
export (each a Layer whose ``forward`` is the exported function).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import paddle


class ConfigError(ValueError):
    """The config does not describe the requested model."""


@dataclass
class Input:
    name: str
    shape: list  # -1 = dynamic
    dtype: str
    sample: Callable[[np.random.Generator], np.ndarray] = field(repr=False)

    def spec(self):
        import paddle

        return paddle.static.InputSpec(shape=self.shape, dtype=self.dtype, name=self.name)

    def describe(self) -> dict:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype}


@dataclass
class Graph:
    name: str  # file prefix inside the export folder
    layer: object  # paddle.nn.Layer whose forward is exported
    inputs: list[Input]
    outputs: list[str]
    skip_prune: bool = False


@dataclass
class Built:
    model: object  # the Layer whose state_dict holds every parameter
    graphs: list[Graph]
    meta: dict = field(default_factory=dict)
    normalizer_keys: tuple = ()  # which stats the model needs ("mel",)


@dataclass
class Context:
    random_init: bool = True
    stats: dict | None = None  # {"mu": np.ndarray, "sigma": np.ndarray}
    vocab: list[str] | None = None
    tones: list[str] | None = None
    speakers: list[str] | None = None
    vocab_size: int = 120


@dataclass
class ModelSpec:
    name: str
    task: str  # tts-acoustic, tts-e2e, vocoder, asr, st, cls, vector, kws
    family: str
    build: Callable[[dict, Context], Built] = field(repr=False)
    checkpoint_key: str | None = None  # key of the .pdz dict that holds the params
    needs_stats: bool = False
    default_onednn: bool = False
    notes: str = ""
    detect: Callable[[dict], bool] = field(default=lambda cfg: False, repr=False)


MODELS: dict[str, ModelSpec] = {}


def register(name, task, family, *, checkpoint_key=None, needs_stats=False, notes="",
             detect=None):
    def deco(func):
        MODELS[name] = ModelSpec(name, task, family, func, checkpoint_key, needs_stats,
                                 notes=notes, detect=detect or (lambda cfg: False))
        return func

    return deco


def get(name: str) -> ModelSpec:
    if name not in MODELS:
        import difflib

        close = difflib.get_close_matches(name, MODELS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} Known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _need(cfg: dict, key: str, model: str):
    if key not in cfg or cfg[key] is None:
        raise ConfigError(f"config has no '{key}' section, so it does not describe a {model} "
                          f"model")
    return cfg[key]


def _ids(n: int, high: int, low: int = 1):
    return lambda rng: rng.integers(low, max(high, low + 1), size=(n,), dtype=np.int64)


def _floats(*shape):
    return lambda rng: rng.standard_normal(shape).astype("float32")


def _zscore(ctx: Context, dim: int):
    import paddle
    from paddlespeech.t2s.modules.normalizer import ZScore

    if ctx.stats is None:
        mu, sigma = np.zeros(dim, "float32"), np.ones(dim, "float32")
    else:
        mu, sigma = ctx.stats["mu"].astype("float32"), ctx.stats["sigma"].astype("float32")
        if mu.shape != (dim,):
            raise ConfigError(f"statistics have shape {mu.shape}, the model expects ({dim},)")
    return ZScore(paddle.to_tensor(mu), paddle.to_tensor(sigma))


def _build_model(cls, kwargs: dict, what: str):
    try:
        return cls(**kwargs)
    except (TypeError, AssertionError, ValueError) as exc:
        raise ConfigError(f"the config's parameters do not fit {what}: "
                          f"{type(exc).__name__} {exc}") from exc


def _remove_weight_norm(layer) -> int:
    """Fold weight_norm everywhere (root cause 5: stale `weight` baked into the export)."""
    import paddle

    removed = 0
    for sub in layer.sublayers(include_self=True):
        if hasattr(sub, "weight_g") and hasattr(sub, "weight_v"):
            try:
                paddle.nn.utils.remove_weight_norm(sub)
                removed += 1
            except (ValueError, AttributeError):
                pass
    return removed


def _tts_meta(cfg, ctx):
    return {"sample_rate": cfg.get("fs"), "n_mels": cfg.get("n_mels"), "hop_length":
            cfg.get("n_shift"), "vocab": ctx.vocab, "tones": ctx.tones,
            "speakers": ctx.speakers}


def _vocab_size(ctx: Context) -> int:
    return len(ctx.vocab) if ctx.vocab else ctx.vocab_size


# --------------------------------------------------------------------------------------------
# TTS acoustic models
# --------------------------------------------------------------------------------------------


def _is_fs2(cfg):
    m = cfg.get("model") or {}
    return "adim" in m and "duration_predictor_layers" in m and "pitch_predictor_layers" in m


@register("fastspeech2", "tts-acoustic", "FastSpeech2", checkpoint_key="main_params",
          needs_stats=True, detect=_is_fs2)
def _fastspeech2(cfg, ctx):
    import paddle
    from paddlespeech.t2s.models.fastspeech2 import FastSpeech2, FastSpeech2Inference

    mcfg = dict(_need(cfg, "model", "FastSpeech2"))
    odim = cfg.get("n_mels", 80)
    spk_num = len(ctx.speakers) if ctx.speakers else None
    if spk_num is None and mcfg.get("spk_embed_dim") is None and cfg.get("num_speakers"):
        spk_num = int(cfg["num_speakers"])
    model = _build_model(FastSpeech2, dict(idim=_vocab_size(ctx), odim=odim,
                                           spk_num=spk_num, **mcfg), "FastSpeech2")
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
        inference = _SpkEmbInference(inference)
        inputs.append(Input("spk_emb", [spk_dim], "float32", _unit(spk_dim)))
        meta["spk_embed_dim"] = spk_dim
    return Built(model, [Graph("model", inference, inputs, ["logmel"])], meta, ("mel",))


def _unit(dim):
    def sample(rng):
        v = rng.standard_normal(dim).astype("float32")
        return v / np.linalg.norm(v)

    return sample


class _SpkEmbInference(paddle.nn.Layer):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, text, spk_emb):
        return self.inner(text, spk_emb=spk_emb)


def _is_fs2_stream(cfg):
    m = cfg.get("model") or {}
    return _is_fs2(cfg) and m.get("decoder_type") == "cnndecoder"


@register("fastspeech2_streaming", "tts-acoustic", "FastSpeech2 (CNNDecoder)",
          checkpoint_key="main_params", needs_stats=True, detect=_is_fs2_stream,
          notes="three graphs: encoder (text -> hidden), decoder (hidden chunk -> mel), "
                "postnet (mel -> residual), as synthesize_streaming.py")
def _fastspeech2_streaming(cfg, ctx):
    import paddle
    from paddlespeech.t2s.models.fastspeech2 import FastSpeech2

    mcfg = dict(_need(cfg, "model", "FastSpeech2"))
    if mcfg.get("decoder_type") != "cnndecoder":
        raise ConfigError("fastspeech2_streaming needs `decoder_type: cnndecoder` in model")
    odim = cfg.get("n_mels", 80)
    model = _build_model(FastSpeech2, dict(idim=_vocab_size(ctx), odim=odim, **mcfg),
                         "FastSpeech2")
    if ctx.random_init:
        paddle.nn.initializer.Constant(1.5)(model.duration_predictor.linear.bias)
    adim = mcfg["adim"]

    class Encoder(paddle.nn.Layer):
        def __init__(self, fs2):
            super().__init__()
            self.fs2 = fs2

        def forward(self, text):
            return self.fs2.encoder_infer(text)

    class Decoder(paddle.nn.Layer):
        def __init__(self, fs2):
            super().__init__()
            self.fs2 = fs2

        def forward(self, hidden):
            # CNNDecoder projects to odim itself (FastSpeech2._forward skips feat_out for it)
            return self.fs2.decoder(hidden, None)

    class Postnet(paddle.nn.Layer):
        def __init__(self, fs2):
            super().__init__()
            self.fs2 = fs2

        def forward(self, mel_t):
            return self.fs2.postnet(mel_t)

    vs = _vocab_size(ctx)
    graphs = [
        Graph("encoder", Encoder(model), [Input("text", [-1], "int64", _ids(12, vs))],
              ["hidden"]),
        Graph("decoder", Decoder(model), [Input("hidden", [1, -1, adim], "float32",
                                                _floats(1, 20, adim))], ["normalized_mel"]),
        Graph("postnet", Postnet(model), [Input("mel_t", [1, odim, -1], "float32",
                                                _floats(1, odim, 20))], ["residual"]),
    ]
    return Built(model, graphs, _tts_meta(cfg, ctx), ("mel",))


def _is_speedy(cfg):
    m = cfg.get("model") or {}
    return "encoder_hidden_size" in m and "duration_predictor_hidden_size" in m


@register("speedyspeech", "tts-acoustic", "SpeedySpeech", checkpoint_key="main_params",
          needs_stats=True, detect=_is_speedy)
def _speedyspeech(cfg, ctx):
    import paddle
    from paddlespeech.t2s.models.speedyspeech import SpeedySpeech, SpeedySpeechInference

    mcfg = dict(_need(cfg, "model", "SpeedySpeech"))
    tone_size = len(ctx.tones) if ctx.tones else 6
    odim = cfg.get("n_mels", 80)
    model = _build_model(SpeedySpeech, dict(vocab_size=_vocab_size(ctx), tone_size=tone_size,
                                            **mcfg), "SpeedySpeech")
    if ctx.random_init:
        paddle.nn.initializer.Constant(1.5)(model.duration_predictor.linear.bias)
    inference = SpeedySpeechInference(_zscore(ctx, odim), model)
    vs = _vocab_size(ctx)
    inputs = [Input("phones", [-1], "int64", _ids(12, vs)),
              Input("tones", [-1], "int64", _ids(12, tone_size, 0))]
    return Built(model, [Graph("model", inference, inputs, ["logmel"])], _tts_meta(cfg, ctx),
                 ("mel",))


def _is_e2e(gen_type):
    def detect(cfg):
        return (cfg.get("model") or {}).get("generator_type") == gen_type

    return detect


class _VITSExport(paddle.nn.Layer):
    """VITSInference with the noise scales as inputs (0 makes the graph deterministic)."""

    def __init__(self, m):
        super().__init__()
        self.acoustic_model = m

    def forward(self, text, noise_scale, noise_scale_dur):
        out = self.acoustic_model.inference(text, noise_scale=noise_scale,
                                            noise_scale_dur=noise_scale_dur)
        return out["wav"]


class _VITSSpkEmbExport(_VITSExport):
    def forward(self, text, noise_scale, noise_scale_dur, spk_emb):
        out = self.acoustic_model.inference(text, spembs=spk_emb, noise_scale=noise_scale,
                                            noise_scale_dur=noise_scale_dur)
        return out["wav"]


@register("vits", "tts-e2e", "VITS", checkpoint_key="main_params", detect=_is_e2e("vits_generator"),
          notes="noise_scale and noise_scale_dur are inputs ([1] float32): verification runs "
                "at 0 (deterministic), inference at 0.667 / 0.8")
def _vits(cfg, ctx):
    from paddlespeech.t2s.models.vits import VITS

    mcfg = dict(_need(cfg, "model", "VITS"))
    if mcfg.get("generator_type") != "vits_generator":
        raise ConfigError("model.generator_type is not vits_generator")
    spk_num = len(ctx.speakers) if ctx.speakers else None
    if spk_num:
        mcfg["generator_params"] = dict(mcfg["generator_params"], spks=spk_num)
    model = _build_model(VITS, dict(idim=_vocab_size(ctx), odim=cfg["n_fft"] // 2 + 1, **mcfg),
                         "VITS")

    vs = _vocab_size(ctx)
    zero = lambda rng: np.zeros([1], "float32")  # noqa: E731
    inputs = [Input("text", [-1], "int64", _ids(10, vs)),
              Input("noise_scale", [1], "float32", zero),
              Input("noise_scale_dur", [1], "float32", zero)]
    meta = _tts_meta(cfg, ctx) | {"noise_defaults": [0.667, 0.8]}
    spk_dim = mcfg["generator_params"].get("spk_embed_dim")
    layer = _VITSExport(model)
    if spk_dim:  # aishell3/vits-vc: voice cloning from a speaker embedding
        layer = _VITSSpkEmbExport(model)
        inputs.append(Input("spk_emb", [spk_dim], "float32", _unit(spk_dim)))
        meta["spk_embed_dim"] = spk_dim
    return Built(model, [Graph("model", layer, inputs, ["wav"])], meta)


@register("jets", "tts-e2e", "JETS", checkpoint_key="main_params",
          detect=_is_e2e("jets_generator"))
def _jets(cfg, ctx):
    import paddle
    from paddlespeech.t2s.models.jets import JETS, JETSInference

    mcfg = dict(_need(cfg, "model", "JETS"))
    if mcfg.get("generator_type") != "jets_generator":
        raise ConfigError("model.generator_type is not jets_generator")
    model = _build_model(JETS, dict(idim=_vocab_size(ctx), odim=cfg["n_fft"] // 2 + 1, **mcfg),
                         "JETS")
    if ctx.random_init:
        # root cause 15: random durations explode (24 GB RSS); one constant duration instead
        lin = model.generator.duration_predictor.linear
        paddle.nn.initializer.Constant(0.0)(lin.weight)
        paddle.nn.initializer.Constant(1.5)(lin.bias)
    vs = _vocab_size(ctx)
    return Built(model, [Graph("model", JETSInference(model),
                               [Input("text", [-1], "int64", _ids(10, vs))], ["wav"])],
                 _tts_meta(cfg, ctx))


def _is_taco(cfg):
    m = cfg.get("model") or {}
    return "atype" in m and "embed_dim" in m and "dunits" in m


@register("tacotron2", "tts-acoustic", "Tacotron2", checkpoint_key="main_params",
          needs_stats=True, detect=_is_taco,
          notes="restructured for the predictor (Paddle 3.3.1 rejects upstream's while+if "
                "graph, speech.md root cause 13): graphs encoder, decoder_step and postnet; "
                "the autoregressive loop runs in Python (infer.tacotron2_generate); the "
                "prenet's always-on dropout masks are an input of decoder_step")
def _tacotron2(cfg, ctx):
    import paddle
    import paddle.nn.functional as F
    from paddlespeech.t2s.models.tacotron2 import Tacotron2

    mcfg = dict(_need(cfg, "model", "Tacotron2"))
    if mcfg.get("atype", "location") != "location":
        raise ConfigError("only atype: location is exported (the csmsc/ljspeech recipes)")
    odim = cfg.get("n_mels", 80)
    model = _build_model(Tacotron2, dict(idim=_vocab_size(ctx), odim=odim, **mcfg),
                         "Tacotron2")
    dec = model.dec
    n_layers = len(dec.lstm)
    units = dec.lstm[0].hidden_size
    eunits = mcfg.get("eunits", 512)
    prenet_layers = len(dec.prenet.prenet) if dec.prenet is not None else 0
    prenet_units = mcfg.get("prenet_units", 256)
    normalizer = _zscore(ctx, odim)

    class Encoder(paddle.nn.Layer):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, text):
            x = F.pad(text, [0, 1], "constant", self.m.eos)
            return self.m.enc.inference(x).unsqueeze(0)  # (1, T, eunits)

    class SpkEncoder(Encoder):
        """Voice cloning (aishell3/vc0): the speaker embedding joins the encoder output."""

        def forward(self, text, spk_emb):
            hs = super().forward(text)
            return self.m._integrate_with_spk_embed(hs, spk_emb.unsqueeze(0))

    class DecoderStep(paddle.nn.Layer):
        """One step of Decoder.inference, state passed in and out (no `self` state)."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, hs, att_prev, z, c, prev_out, prenet_masks):
            d = self.m.dec
            att = d.att
            t = paddle.shape(hs)[1]
            pre = att.mlp_enc(hs)
            att_conv = att.loc_conv(att_prev.reshape([1, 1, 1, t]))
            att_conv = att.mlp_att(att_conv.squeeze(2).transpose([0, 2, 1]))
            dec_z = att.mlp_dec(z[0]).reshape([1, 1, att.att_dim])
            e = att.gvec(paddle.tanh(att_conv + pre + dec_z)).squeeze(2)
            att_w = F.softmax(2.0 * e, axis=1)
            att_c = paddle.sum(hs * att_w.unsqueeze(-1), axis=1)
            x = prev_out
            if d.prenet is not None:
                for i in range(len(d.prenet.prenet)):
                    x = d.prenet.prenet[i](x) * prenet_masks[i]
            xs = paddle.concat([att_c, x], axis=1)
            zs, cs = [], []
            _, (z0, c0) = d.lstm[0](xs, (z[0], c[0]))
            zs.append(z0)
            cs.append(c0)
            for i in range(1, len(d.lstm)):
                _, (zi, ci) = d.lstm[i](zs[-1], (z[i], c[i]))
                zs.append(zi)
                cs.append(ci)
            zcs = paddle.concat([zs[-1], att_c], axis=1) if d.use_concate else zs[-1]
            out = d.feat_out(zcs).reshape([1, d.odim, -1])
            prob = F.sigmoid(d.prob_out(zcs))[0]
            return out, prob, att_w, paddle.stack(zs), paddle.stack(cs)

    class Postnet(paddle.nn.Layer):
        def __init__(self, m, norm):
            super().__init__()
            self.m = m
            self.normalizer = norm

        def forward(self, outs):  # (1, odim, L) -> logmel (L, odim)
            if self.m.dec.postnet is not None:
                outs = outs + self.m.dec.postnet(outs)
            return self.normalizer.inverse(outs.transpose([0, 2, 1]).squeeze(0))

    vs = _vocab_size(ctx)
    t_enc = 9

    def masks(rng):
        keep = rng.random((max(prenet_layers, 1), 1, prenet_units)) >= 0.5
        return (keep * 2.0).astype("float32")

    spk_dim = model.spk_embed_dim
    enc_graph = Graph("encoder", Encoder(model), [Input("text", [-1], "int64", _ids(8, vs))],
                      ["hs"])
    hs_dim = eunits
    if spk_dim:
        enc_graph = Graph("encoder", SpkEncoder(model), [
            Input("text", [-1], "int64", _ids(8, vs)),
            Input("spk_emb", [spk_dim], "float32", _unit(spk_dim))], ["hs"])
        hs_dim = eunits + spk_dim if model.spk_embed_integration_type == "concat" else eunits
    graphs = [
        enc_graph,
        Graph("decoder_step", DecoderStep(model), [
            Input("hs", [1, -1, hs_dim], "float32", _floats(1, t_enc, hs_dim)),
            Input("att_prev", [1, -1], "float32",
                  lambda rng: np.full((1, t_enc), 1.0 / t_enc, "float32")),
            Input("z", [n_layers, 1, units], "float32", _floats(n_layers, 1, units)),
            Input("c", [n_layers, 1, units], "float32", _floats(n_layers, 1, units)),
            Input("prev_out", [1, odim], "float32", _floats(1, odim)),
            Input("prenet_masks", [max(prenet_layers, 1), 1, prenet_units], "float32", masks)],
            ["out", "prob", "att_w", "z", "c"]),
        Graph("postnet", Postnet(model, normalizer),
              [Input("outs", [1, odim, -1], "float32", _floats(1, odim, 15))], ["logmel"]),
    ]
    meta = _tts_meta(cfg, ctx) | {"decoder": {
        "layers": n_layers, "units": units, "odim": odim, "prenet_layers": prenet_layers,
        "prenet_units": prenet_units, "prenet_dropout": 0.5,
        "reduction_factor": mcfg.get("reduction_factor", 1),
        "cumulate_att_w": mcfg.get("cumulate_att_w", True),
        "output_activation": mcfg.get("output_activation")}}
    if spk_dim:
        meta["spk_embed_dim"] = spk_dim
    return Built(model, graphs, meta, ("mel",))


def _is_diffsinger(cfg):
    m = cfg.get("model") or {}
    return "fastspeech2_params" in m and "denoiser_params" in m and "diffusion_params" in m


@register("diffsinger", "svs-acoustic", "DiffSinger", checkpoint_key="main_params",
          needs_stats=True, detect=_is_diffsinger,
          notes="restructured: upstream's inference draws noise inside a 60-step DDPM loop. "
                "Graphs: fs2 (score -> FastSpeech2-MIDI mel, stretched to [-1, 1], and the "
                "conditioning) and denoiser (one DiffNet call: x_t, t, cond -> predicted "
                "noise); the shallow-diffusion loop (add_noise at step 59, DDPM updates, "
                "denormalisation) runs in Python over the scheduler's table "
                "(infer.diffsinger_generate). --stats is the speech_stretchs file "
                "(min, max) of the recipe")
def _diffsinger(cfg, ctx):
    import paddle
    from paddlespeech.t2s.models.diffsinger import DiffSinger

    mcfg = dict(_need(cfg, "model", "DiffSinger"))
    odim = cfg.get("n_mels", 80)
    if ctx.stats is None:  # random weights: identity stretch
        lo, hi = -np.ones(odim, "float32"), np.ones(odim, "float32")
    else:
        lo, hi = ctx.stats["mu"].astype("float32"), ctx.stats["sigma"].astype("float32")
        if lo.shape != (odim,):
            raise ConfigError(f"statistics have shape {lo.shape}, the model expects ({odim},)")
    model = _build_model(DiffSinger, dict(spec_min=paddle.to_tensor(lo),
                                          spec_max=paddle.to_tensor(hi), idim=_vocab_size(ctx),
                                          odim=odim, **mcfg), "DiffSinger")
    if ctx.random_init:
        paddle.nn.initializer.Constant(1.5)(model.fs2.duration_predictor.linear.bias)
    diff = model.diffusion

    class FS2(paddle.nn.Layer):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, text, note, note_dur, is_slur):
            mel, _, _, _ = self.m.fs2.inference(text, note, note_dur, is_slur)
            ref = self.m.diffusion.norm_spec(mel).unsqueeze(0).transpose([0, 2, 1])
            cond = self.m.fs2.encoder_infer(text, note, note_dur, is_slur)
            return ref, cond.transpose([0, 2, 1])

    class Denoiser(paddle.nn.Layer):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x, t, cond):
            return self.m.diffusion.denoiser(x, t, cond)

    vs = _vocab_size(ctx)
    n = 8
    adim = mcfg["fastspeech2_params"]["adim"]
    note_num = int(mcfg.get("note_num", 300))
    sched = diff.noise_scheduler
    graphs = [
        Graph("fs2", FS2(model), [
            Input("text", [-1], "int64", _ids(n, vs)),
            Input("note", [-1], "int64", _ids(n, note_num)),
            Input("note_dur", [-1], "float32", lambda rng: rng.uniform(0.05, 0.3, n)
                  .astype("float32")),
            Input("is_slur", [-1], "int64", _ids(n, 2, 0))], ["ref", "cond"]),
        Graph("denoiser", Denoiser(model), [
            Input("x", [1, odim, -1], "float32", _floats(1, odim, 20)),
            Input("t", [1], "int64", lambda rng: np.array([37], np.int64)),
            Input("cond", [1, adim, -1], "float32", _floats(1, adim, 20))], ["noise_pred"]),
    ]
    meta = _tts_meta(cfg, ctx) | {"diffusion": {
        "alphas_cumprod": [float(v) for v in np.asarray(sched.alphas_cumprod.numpy(),
                                                          "float64")],
        "num_train_timesteps": int(diff.num_train_timesteps), "num_inference_steps": 60,
        "clip_sample": bool(sched.config.clip_sample),
        "clip_sample_range": float(sched.config.clip_sample_range),
        "variance_type": sched.config.variance_type,
        "prediction_type": sched.config.prediction_type,
        "stretch": bool(diff.stretch), "spec_min": lo.tolist(), "spec_max": hi.tolist()}}
    return Built(model, graphs, meta, ("mel",))


# --------------------------------------------------------------------------------------------
# vocoders
# --------------------------------------------------------------------------------------------


def _voc_meta(cfg):
    return {"sample_rate": cfg.get("fs"), "n_mels": cfg.get("n_mels"),
            "hop_length": cfg.get("n_shift")}


def _gen_params(cfg, what):
    return dict(_need(cfg, "generator_params", what))


def _is_gen(*keys, absent=()):
    def detect(cfg):
        g = cfg.get("generator_params") or {}
        return all(k in g for k in keys) and not any(k in g for k in absent)

    return detect


def _simple_vocoder(gen_cls_path, inf_cls_path, what):
    def build(cfg, ctx):
        import importlib

        mod = importlib.import_module(gen_cls_path[0])
        gen = _build_model(getattr(mod, gen_cls_path[1]), _gen_params(cfg, what), what)
        inf_mod = importlib.import_module(inf_cls_path[0])
        n_mels = cfg.get("n_mels", 80)
        inference = getattr(inf_mod, inf_cls_path[1])(_zscore(ctx, n_mels), gen)
        meta = _voc_meta(cfg)
        return Built(gen, [Graph("model", inference,
                                 [Input("logmel", [-1, n_mels], "float32", _floats(24, n_mels))],
                                 ["wav"])], meta, ("mel",))

    return build


register("hifigan", "vocoder", "HiFiGAN", checkpoint_key="generator_params", needs_stats=True,
         detect=_is_gen("resblock_kernel_sizes", absent=("use_istft",)))(
    _simple_vocoder(("paddlespeech.t2s.models.hifigan", "HiFiGANGenerator"),
                    ("paddlespeech.t2s.models.hifigan", "HiFiGANInference"), "HiFiGAN"))
register("mb_melgan", "vocoder", "Multi-band MelGAN", checkpoint_key="generator_params",
         needs_stats=True, detect=_is_gen("upsample_scales", "stack_kernel_size"))(
    _simple_vocoder(("paddlespeech.t2s.models.melgan", "MelGANGenerator"),
                    ("paddlespeech.t2s.models.melgan", "MelGANInference"), "MelGAN"))


@register("pwgan", "vocoder", "Parallel WaveGAN", checkpoint_key="generator_params",
          needs_stats=True, detect=_is_gen("aux_context_window"),
          notes="noise is an input (`noise`, [1, 1, T*hop] standard normal) instead of "
                "paddle.randn inside the graph, so exports are verifiable")
def _pwgan(cfg, ctx):
    import paddle
    from paddlespeech.t2s.models.parallel_wavegan import PWGGenerator

    gen = _build_model(PWGGenerator, _gen_params(cfg, "PWGGenerator"), "PWGGenerator")
    n_mels = cfg.get("n_mels", 80)
    up = int(np.prod(gen.upsample_factor)) if not isinstance(gen.upsample_factor, int) \
        else gen.upsample_factor
    in_ch = gen.in_channels

    class PWGNoiseInference(paddle.nn.Layer):
        def __init__(self, normalizer, generator):
            super().__init__()
            self.normalizer = normalizer
            self.pwg_generator = generator

        def forward(self, logmel, noise):
            c = self.normalizer(logmel)
            c = paddle.transpose(c, [1, 0]).unsqueeze(0)
            c = paddle.nn.functional.pad(
                c, [self.pwg_generator.aux_context_window] * 2, mode="replicate",
                data_format="NCL")
            return self.pwg_generator(noise, c).squeeze(0).transpose([1, 0])

    frames = 24
    inputs = [Input("logmel", [-1, n_mels], "float32", _floats(frames, n_mels)),
              Input("noise", [1, in_ch, -1], "float32", _floats(1, in_ch, frames * up))]
    meta = _voc_meta(cfg) | {"noise": {"shape": [1, in_ch, f"frames*{up}"]}}
    return Built(gen, [Graph("model", PWGNoiseInference(_zscore(ctx, n_mels), gen), inputs,
                             ["wav"])], meta, ("mel",))


@register("style_melgan", "vocoder", "Style MelGAN", checkpoint_key="generator_params",
          needs_stats=True, detect=_is_gen("noise_upsample_scales"),
          notes="noise is an input (`noise`, [1, in_channels, ceil(T/noise_upsample)])")
def _style_melgan(cfg, ctx):
    import paddle
    import paddle.nn.functional as F
    from paddlespeech.t2s.models.melgan import StyleMelGANGenerator

    gen = _build_model(StyleMelGANGenerator, _gen_params(cfg, "StyleMelGANGenerator"),
                       "StyleMelGANGenerator")
    n_mels = cfg.get("n_mels", 80)
    nup = int(gen.noise_upsample_factor)

    class StyleNoiseInference(paddle.nn.Layer):
        def __init__(self, normalizer, generator):
            super().__init__()
            self.normalizer = normalizer
            self.style_melgan_generator = generator

        def forward(self, logmel, noise):
            g = self.style_melgan_generator
            c = self.normalizer(logmel).transpose([1, 0]).unsqueeze(0)
            c_len = paddle.shape(c)[2]
            x = g.noise_upsample(noise)
            total_length = c_len * g.upsample_factor
            c = F.pad(c, (0, paddle.shape(x)[2] - c_len), "replicate", data_format="NCL")
            for block in g.blocks:
                x, c = block(x, c)
            x = g.output_conv(x)[..., :total_length]
            return x.squeeze(0).transpose([1, 0])

    frames = 24
    inputs = [Input("logmel", [-1, n_mels], "float32", _floats(frames, n_mels)),
              Input("noise", [1, gen.in_channels, -1], "float32",
                    _floats(1, gen.in_channels, math.ceil(frames / nup)))]
    meta = _voc_meta(cfg) | {"noise": {"shape": [1, gen.in_channels, f"ceil(frames/{nup})"]}}
    return Built(gen, [Graph("model", StyleNoiseInference(_zscore(ctx, n_mels), gen), inputs,
                             ["wav"])], meta, ("mel",))


@register("wavernn", "vocoder", "WaveRNN", checkpoint_key="generator_params", needs_stats=True,
          detect=lambda cfg: {"rnn_dims", "fc_dims", "bits", "res_blocks"} <= set(
              cfg.get("model") or {}),
          notes="restructured: upstream's generate() is a sample-by-sample loop of "
                "T*hop GRU steps with sampling inside (not a graph the predictor can run "
                "efficiently, and random). Graphs: conditioner (log-mel -> upsampled "
                "features) and step (one autoregressive step for a batch of folds; the "
                "uniform draw u is an input, sampling is by inverse CDF of softmax(logits)); "
                "the loop, folding and cross-fade run in Python (infer.wavernn_generate). "
                "RAW mode only")
def _wavernn(cfg, ctx):
    import paddle
    import paddle.nn.functional as F
    from paddlespeech.t2s.models.wavernn import WaveRNN

    mcfg = dict(_need(cfg, "model", "WaveRNN"))
    if str(mcfg.get("mode", "RAW")).upper() != "RAW":
        raise ConfigError("only WaveRNN mode RAW is exported (MOL sampling is not)")
    mcfg.setdefault("hop_length", cfg.get("n_shift", 300))
    mcfg.setdefault("sample_rate", cfg.get("fs", 24000))
    model = _build_model(WaveRNN, mcfg, "WaveRNN")
    n_mels = cfg.get("n_mels", 80)
    if int(mcfg.get("aux_channels", 80)) != n_mels:
        raise ConfigError(f"model.aux_channels ({mcfg.get('aux_channels')}) != n_mels "
                          f"({n_mels})")
    pad = model.aux_context_window
    hop = int(np.prod(mcfg.get("upsample_scales", [4, 5, 3, 5])))
    if hop != mcfg["hop_length"]:
        raise ConfigError(f"product of upsample_scales ({hop}) != n_shift "
                          f"({mcfg['hop_length']})")

    class Conditioner(paddle.nn.Layer):
        def __init__(self, normalizer, m):
            super().__init__()
            self.normalizer = normalizer
            self.m = m

        def forward(self, logmel):  # (T, n_mels) -> (1, T*hop, n_mels), (1, T*hop, aux)
            c = self.normalizer(logmel).transpose([1, 0]).unsqueeze(0)  # (1, C, T)
            c = F.pad(c, [pad, pad], mode="constant", value=0.0, data_format="NCL")
            return self.m.upsample(c)

    class Step(paddle.nn.Layer):
        """The body of WaveRNN.generate's loop for a batch of folds, with the uniform draw
        of the categorical sampling as an input."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x, m_t, a_t, h1, h2, u):
            m = self.m
            d = m.aux_dims
            x = paddle.concat([x, m_t, a_t[:, :d]], axis=1)
            x = m.I(x)
            h1, _ = m.rnn1[0].cell(x, h1)
            x = x + h1
            h2, _ = m.rnn2[0].cell(paddle.concat([x, a_t[:, d:2 * d]], axis=1), h2)
            x = x + h2
            x = F.relu(m.fc1(paddle.concat([x, a_t[:, 2 * d:3 * d]], axis=1)))
            x = F.relu(m.fc2(paddle.concat([x, a_t[:, 3 * d:4 * d]], axis=1)))
            logits = m.fc3(x)
            cdf = paddle.cumsum(F.softmax(logits, axis=-1), axis=-1)
            idx = paddle.sum((cdf < u).astype("float32"), axis=-1, keepdim=True)
            idx = paddle.clip(idx, 0.0, float(m.n_classes - 1))
            sample = 2.0 * idx / (m.n_classes - 1.0) - 1.0
            return sample, h1, h2, logits

    res_out = model.aux_dims * 4
    r = model.rnn_dims
    b = 3
    graphs = [
        Graph("conditioner", Conditioner(_zscore(ctx, n_mels), model),
              [Input("logmel", [-1, n_mels], "float32", _floats(6, n_mels))],
              ["mels", "aux"]),
        Graph("step", Step(model), [
            Input("x", [-1, 1], "float32", lambda rng: rng.uniform(-1, 1, (b, 1))
                  .astype("float32")),
            Input("m_t", [-1, n_mels], "float32", _floats(b, n_mels)),
            Input("a_t", [-1, res_out], "float32", _floats(b, res_out)),
            Input("h1", [-1, r], "float32", _floats(b, r)),
            Input("h2", [-1, r], "float32", _floats(b, r)),
            Input("u", [-1, 1], "float32", lambda rng: rng.uniform(0, 1, (b, 1))
                  .astype("float32"))],
            ["sample", "h1", "h2", "logits"]),
    ]
    inf = cfg.get("inference") or {}
    meta = _voc_meta(cfg) | {"wavernn": {
        "rnn_dims": r, "aux_dims": model.aux_dims, "n_classes": model.n_classes,
        "mu_law": bool(cfg.get("mu_law", True)), "hop_length": hop,
        "gen_batched": bool(inf.get("gen_batched", True)),
        "target": int(inf.get("target", 12000)), "overlap": int(inf.get("overlap", 600))}}
    return Built(model, graphs, meta, ("mel",))


# --------------------------------------------------------------------------------------------
# ASR
# --------------------------------------------------------------------------------------------


def _yacs(cfg: dict):
    from yacs.config import CfgNode

    return CfgNode(cfg)


def _is_ds2(online: bool):
    def detect(cfg):
        return "num_rnn_layers" in cfg and "rnn_layer_size" in cfg and (
            ("rnn_direction" in cfg and (cfg["rnn_direction"] == "forward") == online)
            or ("rnn_direction" not in cfg and online is False))

    return detect


def _asr_meta(cfg, ctx, extra=None):
    sr = cfg.get("sample_rate") or 16000
    return {"sample_rate": sr, "feat_dim": cfg.get("feat_dim") or cfg.get("input_dim"),
            "vocab": ctx.vocab, "blank_id": cfg.get("blank_id", 0)} | (extra or {})


def _ds2(online):
    def build(cfg, ctx):
        import paddle
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
            c["fc_layers_size_list"] = [int(v) for v in c["fc_layers_size_list"].split(",")
                                        if v.strip()]
        c.setdefault("use_gru", False)
        model = DeepSpeech2InferModel.from_config(_yacs(c))
        feat = c["input_dim"]
        inputs = [Input("audio_chunk", [-1, -1, feat], "float32", _floats(1, 40, feat)),
                  Input("audio_chunk_lens", [-1], "int64",
                        lambda rng: np.array([40], np.int64))]
        outputs = ["probs", "probs_lens"]
        if online:
            n, h = c["num_rnn_layers"], c["rnn_layer_size"]
            inputs += [Input("chunk_state_h_box", [n, -1, h], "float32", _floats(n, 1, h)),
                       Input("chunk_state_c_box", [n, -1, h], "float32", _floats(n, 1, h))]
            outputs += ["state_h", "state_c"]

        class DS2(paddle.nn.Layer):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, audio_chunk, audio_chunk_lens):
                return self.m(audio_chunk, audio_chunk_lens)

        class DS2Online(DS2):
            def forward(self, audio_chunk, audio_chunk_lens, chunk_state_h_box,
                        chunk_state_c_box):
                probs, lens, h, c = self.m(audio_chunk, audio_chunk_lens,
                                           chunk_state_h_box, chunk_state_c_box)
                # with GRU the c state passes through unchanged: an output that *is* a feed
                # makes the predictor fail ("More than one shadow output named ..."), so copy
                return probs, lens, paddle.assign(h), paddle.assign(c)

        layer = DS2Online(model) if online else DS2(model)
        return Built(model, [Graph("model", layer, inputs, outputs)],
                     _asr_meta(c, ctx, {"rnn_direction": c["rnn_direction"]}))

    return build


register("deepspeech2", "asr", "DeepSpeech2 (offline)", detect=_is_ds2(False))(_ds2(False))
register("deepspeech2_online", "asr", "DeepSpeech2 (online)", detect=_is_ds2(True))(
    _ds2(True))


def _is_u2_st(cfg):
    return "encoder" in cfg and "asr_weight" in (cfg.get("model_conf") or {})


def _is_u2(cfg):
    return not _is_u2_st(cfg) and "encoder" in cfg and "decoder" in cfg and "ctc_weight" in (cfg.get("model_conf") or
                                                                      {}) and "cmvn_file" in cfg


@register("u2", "asr", "U2 / Conformer / Transformer", detect=_is_u2,
          notes="graphs: forward_encoder_chunk (streaming encoder with caches), "
                "ctc_activation (log-softmax over the vocabulary), "
                "forward_attention_decoder (attention rescoring of CTC hypotheses)")
def _u2(cfg, ctx):
    import paddle
    from paddlespeech.s2t.models.u2 import U2Model

    for key in ("encoder", "decoder", "model_conf"):
        _need(cfg, key, "U2")
    c = dict(cfg)
    c["cmvn_file"] = None
    c.setdefault("input_dim", 80)
    c["output_dim"] = _vocab_size(ctx) if ctx.vocab else c.get("output_dim") or 100
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

    class EncoderChunk(paddle.nn.Layer):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, xs, offset, att_cache, cnn_cache):
            return self.m.forward_encoder_chunk(xs, offset, -1, att_cache, cnn_cache)

    class CTCAct(paddle.nn.Layer):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, xs):
            return self.m.ctc_activation(xs)

    class AttDecoder(paddle.nn.Layer):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, hyps, hyps_lens, encoder_out):
            return self.m.forward_attention_decoder(hyps, hyps_lens, encoder_out, 0.0)

    vs = c["output_dim"]
    cnn_shape = [nblocks, 1, enc, cnn_k - 1] if is_conformer else [nblocks, 0, 0, 0]
    graphs = [
        Graph("forward_encoder_chunk", EncoderChunk(model), [
            Input("xs", [1, -1, feat], "float32", _floats(1, frames, feat)),
            Input("offset", [1], "int32", lambda rng: np.array([cache_t], np.int32)),
            Input("att_cache", [nblocks, heads, -1, dk * 2], "float32",
                  _floats(nblocks, heads, cache_t, dk * 2)),
            Input("cnn_cache", [nblocks, -1, enc, -1] if is_conformer else [-1, -1, -1, -1],
                  "float32", _floats(*cnn_shape) if is_conformer else
                  (lambda rng: np.zeros(cnn_shape, "float32")))],
            ["encoder_out", "att_cache", "cnn_cache"], skip_prune=True),
        Graph("ctc_activation", CTCAct(model),
              [Input("xs", [1, -1, enc], "float32", _floats(1, chunk, enc))], ["log_probs"]),
        Graph("forward_attention_decoder", AttDecoder(model), [
            Input("hyps", [-1, -1], "int64", lambda rng: np.concatenate(
                [np.full((3, 1), vs - 1, np.int64),
                 rng.integers(1, vs - 1, size=(3, 5), dtype=np.int64)], axis=1)),
            Input("hyps_lens", [-1], "int64", lambda rng: np.array([6, 6, 6], np.int64)),
            Input("encoder_out", [1, -1, enc], "float32", _floats(1, chunk, enc))],
            ["decoder_out"]),
    ]
    meta = _asr_meta(c, ctx, {"encoder": c["encoder"], "subsampling_rate": sub,
                              "right_context": right, "sos_eos": vs - 1})
    return Built(model, graphs, meta)


@register("u2_st", "st", "U2-ST (speech translation)", detect=_is_u2_st,
          notes="graphs: forward_encoder_chunk (encoder.forward_chunk with caches) and "
                "forward_st_decoder (log-probabilities of target hypotheses)")
def _u2_st(cfg, ctx):
    from paddlespeech.s2t.models.u2_st import U2STModel

    for key in ("encoder", "decoder", "model_conf"):
        _need(cfg, key, "U2-ST")
    c = dict(cfg)
    c["cmvn_file"] = None
    c.setdefault("input_dim", c.get("feat_dim") or 80)
    c["output_dim"] = _vocab_size(ctx) if ctx.vocab else c.get("output_dim") or 100
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

    class EncoderChunk(paddle.nn.Layer):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, xs, offset, att_cache):
            return self.m.encoder.forward_chunk(xs, offset, -1, att_cache,
                                                paddle.zeros([0, 0, 0, 0]))[:2]

    class STDecoder(paddle.nn.Layer):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, hyps, hyps_lens, encoder_out):
            n = paddle.shape(hyps)[0]
            memory = paddle.tile(encoder_out, [n, 1, 1])
            mask = paddle.ones([n, 1, paddle.shape(encoder_out)[1]], dtype="bool")
            out = self.m.st_decoder(memory, mask, hyps, hyps_lens)[0]
            return paddle.nn.functional.log_softmax(out, axis=-1)

    graphs = [
        Graph("forward_encoder_chunk", EncoderChunk(model), [
            Input("xs", [1, -1, feat], "float32", _floats(1, frames, feat)),
            Input("offset", [1], "int32", lambda rng: np.array([chunk], np.int32)),
            Input("att_cache", [nblocks, heads, -1, dk * 2], "float32",
                  _floats(nblocks, heads, chunk, dk * 2))],
            ["encoder_out", "att_cache"], skip_prune=True),
        Graph("forward_st_decoder", STDecoder(model), [
            Input("hyps", [-1, -1], "int64", lambda rng: np.concatenate(
                [np.full((2, 1), vs - 1, np.int64),
                 rng.integers(1, vs - 1, size=(2, 4), dtype=np.int64)], axis=1)),
            Input("hyps_lens", [-1], "int64", lambda rng: np.array([5, 5], np.int64)),
            Input("encoder_out", [1, -1, enc], "float32", _floats(1, chunk, enc))],
            ["log_probs"]),
    ]
    meta = _asr_meta(c, ctx, {"encoder": c["encoder"], "subsampling_rate": sub,
                              "right_context": right, "sos_eos": vs - 1})
    return Built(model, graphs, meta)


# --------------------------------------------------------------------------------------------
# classification, speaker vectors, keyword spotting
# --------------------------------------------------------------------------------------------


def _panns(backbone_name):
    def build(cfg, ctx):
        import importlib

        from paddlespeech.cls.models.panns import SoundClassifier

        data = cfg.get("data") or {}
        feature = cfg.get("feature") or {}
        num_classes = int(data.get("num_classes", 50))
        mod = importlib.import_module("paddlespeech.cls.models.panns.panns")
        backbone = getattr(mod, backbone_name.upper())(extract_embedding=True)
        model = SoundClassifier(backbone, num_classes)
        n_mels = int(feature.get("n_mels", 64))
        inputs = [Input("feats", [-1, -1, n_mels], "float32", _floats(1, 101, n_mels))]
        meta = {"sample_rate": feature.get("sr", 32000), "n_mels": n_mels,
                "num_classes": num_classes, "feature": feature}
        return Built(model, [Graph("model", model, inputs, ["logits"])], meta)

    return build


def _is_panns(name):
    def detect(cfg):
        b = str((cfg.get("model") or {}).get("backbone", ""))
        return b.lower().endswith(":" + name)

    return detect


for _n in ("cnn6", "cnn10", "cnn14"):
    register(f"panns_{_n}", "cls", f"PANNs {_n.upper()}", detect=_is_panns(_n))(_panns(_n))


def _is_ecapa(cfg):
    m = cfg.get("model") or {}
    return "attention_channels" in m and "lin_neurons" in m


@register("ecapa_tdnn", "vector", "ECAPA-TDNN", detect=_is_ecapa)
def _ecapa(cfg, ctx):
    from paddlespeech.vector.models.ecapa_tdnn import EcapaTdnn

    mcfg = dict(_need(cfg, "model", "ECAPA-TDNN"))
    model = _build_model(EcapaTdnn, mcfg, "EcapaTdnn")
    n_mels = mcfg.get("input_size", 80)
    inputs = [Input("feats", [-1, n_mels, -1], "float32", _floats(1, n_mels, 100))]
    meta = {"sample_rate": cfg.get("sr", 16000), "n_mels": n_mels,
            "embedding_dim": mcfg.get("lin_neurons")}
    return Built(model, [Graph("model", model, inputs, ["embedding"])], meta)


def _is_ge2e(cfg):
    m = cfg.get("model") or {}
    return {"num_layers", "hidden_size", "embedding_size"} <= set(m) and "n_mels" in (
        cfg.get("data") or {})


@register("ge2e", "vector", "GE2E LSTM speaker encoder", detect=_is_ge2e,
          notes="speaker encoder of the voice-cloning recipes (aishell3/vc0-vc2): "
                "[N, T, n_mels] partial utterances -> L2-normalised [N, embedding_size]; "
                "infer averages the partials and normalises (embed_utterance). Config: the "
                "layout of paddlespeech/vector/exps/ge2e/config.py as YAML")
def _ge2e(cfg, ctx):
    from paddlespeech.vector.models.lstm_speaker_encoder import LSTMSpeakerEncoder

    m, data = _need(cfg, "model", "GE2E"), _need(cfg, "data", "GE2E")
    n_mels = int(data["n_mels"])
    model = _build_model(LSTMSpeakerEncoder, dict(
        n_mels=n_mels, num_layers=int(m["num_layers"]), hidden_size=int(m["hidden_size"]),
        output_size=int(m["embedding_size"])), "LSTMSpeakerEncoder")

    class Embed(paddle.nn.Layer):
        def __init__(self, enc):
            super().__init__()
            self.enc = enc

        def forward(self, mels):
            return self.enc.embed_sequences(mels)

    inputs = [Input("mels", [-1, -1, n_mels], "float32", _floats(3, 40, n_mels))]
    meta = {"sample_rate": int(data.get("sampling_rate", 16000)), "n_mels": n_mels,
            "embedding_dim": int(m["embedding_size"]),
            "partial_n_frames": int(data.get("partial_n_frames", 160)),
            "feature": {"n_fft": int(data.get("sampling_rate", 16000)
                                     * data.get("mel_window_length", 25) / 1000),
                        "hop_length": int(data.get("sampling_rate", 16000)
                                          * data.get("mel_window_step", 10) / 1000),
                        "n_mels": n_mels}}
    return Built(model, [Graph("model", Embed(model), inputs, ["embeddings"])], meta)


def _is_mdtc(cfg):
    return str(cfg.get("backbone", "")).endswith(":MDTC")


@register("mdtc", "kws", "MDTC keyword spotting", detect=_is_mdtc)
def _mdtc(cfg, ctx):
    from paddlespeech.kws.models.mdtc import MDTC, KWSModel

    for key in ("stack_num", "stack_size", "in_channels", "res_channels", "kernel_size"):
        _need(cfg, key, "MDTC")
    backbone = MDTC(stack_num=cfg["stack_num"], stack_size=cfg["stack_size"],
                    in_channels=cfg["in_channels"], res_channels=cfg["res_channels"],
                    kernel_size=cfg["kernel_size"], causal=True)
    model = KWSModel(backbone, int(cfg.get("num_keywords", 1)))
    n = cfg["in_channels"]
    inputs = [Input("feats", [-1, -1, n], "float32", _floats(1, 60, n))]
    meta = {"sample_rate": cfg.get("sample_rate", 16000), "n_mels": n,
            "num_keywords": int(cfg.get("num_keywords", 1))}
    return Built(model, [Graph("model", model, inputs, ["keyword_probs"])], meta)


def _is_ernie_punc(cfg):
    m = cfg.get("model") or {}
    return cfg.get("model_type") in ("ErnieLinear", "ErnieCrf") or (
        "pretrained_token" in m and "num_classes" in m)


@register("ernie_punc", "punc", "ERNIE punctuation restoration (ErnieLinear)",
          checkpoint_key="main_params", detect=_is_ernie_punc,
          notes="iwslt2012/punc0 recipes. The ERNIE architecture comes from paddlenlp's "
                "built-in configuration of the config's pretrained_token (no download); "
                "weights are random unless a checkpoint is given. input_ids [B, L] -> "
                "per-token punctuation probabilities [B*L, num_classes]. Tokenisation is "
                "not included (paddlenlp's tokenizer needs its vocabulary files)")
def _ernie_punc(cfg, ctx):
    try:
        from paddlenlp.transformers import ErnieConfig, ErnieForTokenClassification
        from paddlenlp.transformers.ernie.configuration import (
            ERNIE_PRETRAINED_INIT_CONFIGURATION,
        )
        from paddlespeech.text.models.ernie_linear import ErnieLinear
    except ImportError as exc:  # paddlenlp is a dependency of paddlespeech 1.5.0
        raise ConfigError(f"ERNIE punctuation needs paddlenlp: {exc}") from exc
    if cfg.get("model_type", "ErnieLinear") != "ErnieLinear":
        raise ConfigError(f"model_type {cfg.get('model_type')!r}: only ErnieLinear is built")
    m = _need(cfg, "model", "ERNIE punctuation")
    token = m.get("pretrained_token", "ernie-1.0")
    if token not in ERNIE_PRETRAINED_INIT_CONFIGURATION:
        raise ConfigError(f"pretrained_token {token!r} is not one of paddlenlp's built-in "
                          f"ERNIE configurations")
    arch = dict(ERNIE_PRETRAINED_INIT_CONFIGURATION[token])
    num_classes = int(m["num_classes"])
    model = ErnieLinear.__new__(ErnieLinear)  # upstream __init__ downloads the weights
    paddle.nn.Layer.__init__(model)
    model.ernie = ErnieForTokenClassification(ErnieConfig(**arch, num_labels=num_classes))
    model.num_classes = num_classes
    model.softmax = paddle.nn.Softmax()

    class Punc(paddle.nn.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids):
            return self.inner(input_ids)[1]

    vocab = int(arch["vocab_size"])
    inputs = [Input("input_ids", [-1, -1], "int64",
                    lambda rng: rng.integers(1, vocab, size=(1, 24), dtype=np.int64))]
    meta = {"pretrained_token": token, "num_classes": num_classes, "vocab_size": vocab,
            "punc_path": (cfg.get("data_params") or {}).get("punc_path")}
    return Built(model, [Graph("model", Punc(model), inputs, ["probs"])], meta)


def detect(cfg: dict) -> str | None:
    """Best guess of the registry entry a config describes (most specific first)."""
    if not isinstance(cfg, dict):
        return None
    order = ["fastspeech2_streaming"] + [n for n in MODELS if n != "fastspeech2_streaming"]
    for name in order:
        try:
            if MODELS[name].detect(cfg):
                return name
        except (AttributeError, TypeError):  # a section of another shape: not this family
            continue
    return None
