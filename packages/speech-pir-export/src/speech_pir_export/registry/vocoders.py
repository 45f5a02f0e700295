"""Vocoders: HiFiGAN, MB-MelGAN, Parallel WaveGAN and Style MelGAN (noise as an input), and
WaveRNN, restructured (``conditioner`` + one autoregressive ``step`` graph; the sample loop,
folding and cross-fade run in Python: :func:`wavernn_generate`)."""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F

from . import (
    Built,
    Call,
    ConfigError,
    Graph,
    Input,
    _build_model,
    _floats,
    _need,
    _zscore,
    register,
)


def vocode_mel(exp, mel: np.ndarray, *, seed=0) -> np.ndarray:
    """Log-mel (T, n_mels) -> wav (T * hop,): one call of the ``model`` graph."""
    return exp.run(mel.astype("float32"))[0].reshape(-1)


def vocode_noise(exp, mel: np.ndarray, *, seed=0) -> np.ndarray:
    """As vocode_mel, for the GAN vocoders whose noise is an input: standard normal noise of
    the length the export recorded (``meta.noise.shape``), drawn from ``seed``."""
    ch = exp.manifest["graphs"][0]["inputs"][1]["shape"][1]
    length = _noise_length(exp.meta["noise"]["shape"][2], mel.shape[0])
    noise = np.random.default_rng(seed).standard_normal((1, ch, length)).astype("float32")
    return exp.run(mel.astype("float32"), noise)[0].reshape(-1)


def _noise_length(expr: str, frames: int) -> int:
    """``frames*K`` or ``ceil(frames/K)`` (what the builders below record)."""
    expr = expr.replace(" ", "")
    if expr.startswith("frames*"):
        return frames * int(expr[len("frames*") :])
    if expr.startswith("ceil(frames/") and expr.endswith(")"):
        return math.ceil(frames / int(expr[len("ceil(frames/") : -1]))
    raise ValueError(f"unknown noise length {expr!r}")


def _pwgan_graph(normalizer, generator, logmel, noise):
    c = normalizer(logmel)
    c = paddle.transpose(c, [1, 0]).unsqueeze(0)
    c = F.pad(c, [generator.aux_context_window] * 2, mode="replicate", data_format="NCL")
    return generator(noise, c).squeeze(0).transpose([1, 0])


def _style_melgan_graph(normalizer, g, logmel, noise):
    c = normalizer(logmel).transpose([1, 0]).unsqueeze(0)
    c_len = paddle.shape(c)[2]
    x = g.noise_upsample(noise)
    total_length = c_len * g.upsample_factor
    c = F.pad(c, (0, paddle.shape(x)[2] - c_len), "replicate", data_format="NCL")
    for block in g.blocks:
        x, c = block(x, c)
    x = g.output_conv(x)[..., :total_length]
    return x.squeeze(0).transpose([1, 0])


def _wavernn_conditioner(normalizer, m, logmel):
    """(T, n_mels) -> (1, T*hop, n_mels), (1, T*hop, aux)"""
    pad = m.export_pad
    c = normalizer(logmel).transpose([1, 0]).unsqueeze(0)  # (1, C, T)
    c = F.pad(c, [pad, pad], mode="constant", value=0.0, data_format="NCL")
    return m.upsample(c)


def _wavernn_step(m, x, m_t, a_t, h1, h2, u):
    """The body of WaveRNN.generate's loop for a batch of folds, with the uniform draw of the
    categorical sampling as an input."""
    d = m.aux_dims
    x = paddle.concat([x, m_t, a_t[:, :d]], axis=1)
    x = m.I(x)
    h1, _ = m.rnn1[0].cell(x, h1)
    x = x + h1
    h2, _ = m.rnn2[0].cell(paddle.concat([x, a_t[:, d : 2 * d]], axis=1), h2)
    x = x + h2
    x = F.relu(m.fc1(paddle.concat([x, a_t[:, 2 * d : 3 * d]], axis=1)))
    x = F.relu(m.fc2(paddle.concat([x, a_t[:, 3 * d : 4 * d]], axis=1)))
    logits = m.fc3(x)
    cdf = paddle.cumsum(F.softmax(logits, axis=-1), axis=-1)
    idx = paddle.sum((cdf < u).astype("float32"), axis=-1, keepdim=True)
    idx = paddle.clip(idx, 0.0, float(m.n_classes - 1))
    sample = 2.0 * idx / (m.n_classes - 1.0) - 1.0
    return sample, h1, h2, logits


def _voc_meta(cfg):
    return {
        "sample_rate": cfg.get("fs"),
        "n_mels": cfg.get("n_mels"),
        "hop_length": cfg.get("n_shift"),
    }


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
        return Built(
            gen,
            [
                Graph(
                    "model",
                    inference,
                    [Input("logmel", [-1, n_mels], "float32", _floats(24, n_mels))],
                    ["wav"],
                )
            ],
            meta,
            ("mel",),
        )

    return build


register(
    "hifigan",
    "vocoder",
    "HiFiGAN",
    checkpoint_key="generator_params",
    needs_stats=True,
    detect=_is_gen("resblock_kernel_sizes", absent=("use_istft",)),
    vocode=vocode_mel,
)(
    _simple_vocoder(
        ("paddlespeech.t2s.models.hifigan", "HiFiGANGenerator"),
        ("paddlespeech.t2s.models.hifigan", "HiFiGANInference"),
        "HiFiGAN",
    )
)
register(
    "mb_melgan",
    "vocoder",
    "Multi-band MelGAN",
    checkpoint_key="generator_params",
    needs_stats=True,
    detect=_is_gen("upsample_scales", "stack_kernel_size"),
    vocode=vocode_mel,
)(
    _simple_vocoder(
        ("paddlespeech.t2s.models.melgan", "MelGANGenerator"),
        ("paddlespeech.t2s.models.melgan", "MelGANInference"),
        "MelGAN",
    )
)


@register(
    "pwgan",
    "vocoder",
    "Parallel WaveGAN",
    checkpoint_key="generator_params",
    needs_stats=True,
    detect=_is_gen("aux_context_window"),
    vocode=vocode_noise,
    notes="noise is an input (`noise`, [1, 1, T*hop] standard normal) instead of "
    "paddle.randn inside the graph, so exports are verifiable",
)
def _pwgan(cfg, ctx):
    from paddlespeech.t2s.models.parallel_wavegan import PWGGenerator

    gen = _build_model(PWGGenerator, _gen_params(cfg, "PWGGenerator"), "PWGGenerator")
    n_mels = cfg.get("n_mels", 80)
    up = (
        int(np.prod(gen.upsample_factor))
        if not isinstance(gen.upsample_factor, int)
        else gen.upsample_factor
    )
    in_ch = gen.in_channels

    frames = 24
    inputs = [
        Input("logmel", [-1, n_mels], "float32", _floats(frames, n_mels)),
        Input("noise", [1, in_ch, -1], "float32", _floats(1, in_ch, frames * up)),
    ]
    meta = _voc_meta(cfg) | {"noise": {"shape": [1, in_ch, f"frames*{up}"]}}
    return Built(
        gen,
        [
            Graph(
                "model",
                Call(_pwgan_graph, normalizer=_zscore(ctx, n_mels), pwg_generator=gen),
                inputs,
                ["wav"],
            )
        ],
        meta,
        ("mel",),
    )


@register(
    "style_melgan",
    "vocoder",
    "Style MelGAN",
    checkpoint_key="generator_params",
    needs_stats=True,
    detect=_is_gen("noise_upsample_scales"),
    vocode=vocode_noise,
    notes="noise is an input (`noise`, [1, in_channels, ceil(T/noise_upsample)])",
)
def _style_melgan(cfg, ctx):
    from paddlespeech.t2s.models.melgan import StyleMelGANGenerator

    gen = _build_model(
        StyleMelGANGenerator, _gen_params(cfg, "StyleMelGANGenerator"), "StyleMelGANGenerator"
    )
    n_mels = cfg.get("n_mels", 80)
    nup = int(gen.noise_upsample_factor)

    frames = 24
    inputs = [
        Input("logmel", [-1, n_mels], "float32", _floats(frames, n_mels)),
        Input(
            "noise",
            [1, gen.in_channels, -1],
            "float32",
            _floats(1, gen.in_channels, math.ceil(frames / nup)),
        ),
    ]
    meta = _voc_meta(cfg) | {"noise": {"shape": [1, gen.in_channels, f"ceil(frames/{nup})"]}}
    return Built(
        gen,
        [
            Graph(
                "model",
                Call(
                    _style_melgan_graph, normalizer=_zscore(ctx, n_mels), style_melgan_generator=gen
                ),
                inputs,
                ["wav"],
            )
        ],
        meta,
        ("mel",),
    )


@register(
    "wavernn",
    "vocoder",
    "WaveRNN",
    checkpoint_key="generator_params",
    needs_stats=True,
    vocode=lambda exp, mel, *, seed=0: wavernn_generate(exp, mel, seed=seed, progress=True),
    detect=lambda cfg: {"rnn_dims", "fc_dims", "bits", "res_blocks"} <= set(cfg.get("model") or {}),
    notes="restructured: upstream's generate() is a sample-by-sample loop of "
    "T*hop GRU steps with sampling inside (not a graph the predictor can run "
    "efficiently, and random). Graphs: conditioner (log-mel -> upsampled "
    "features) and step (one autoregressive step for a batch of folds; the "
    "uniform draw u is an input, sampling is by inverse CDF of softmax(logits)); "
    "the loop, folding and cross-fade run in Python (infer.wavernn_generate). "
    "RAW mode only",
)
def _wavernn(cfg, ctx):
    from paddlespeech.t2s.models.wavernn import WaveRNN

    mcfg = dict(_need(cfg, "model", "WaveRNN"))
    if str(mcfg.get("mode", "RAW")).upper() != "RAW":
        raise ConfigError("only WaveRNN mode RAW is exported (MOL sampling is not)")
    mcfg.setdefault("hop_length", cfg.get("n_shift", 300))
    mcfg.setdefault("sample_rate", cfg.get("fs", 24000))
    model = _build_model(WaveRNN, mcfg, "WaveRNN")
    n_mels = cfg.get("n_mels", 80)
    if int(mcfg.get("aux_channels", 80)) != n_mels:
        raise ConfigError(f"model.aux_channels ({mcfg.get('aux_channels')}) != n_mels ({n_mels})")
    pad = model.aux_context_window
    model.export_pad = pad  # read by _wavernn_conditioner
    hop = int(np.prod(mcfg.get("upsample_scales", [4, 5, 3, 5])))
    if hop != mcfg["hop_length"]:
        raise ConfigError(f"product of upsample_scales ({hop}) != n_shift ({mcfg['hop_length']})")

    res_out = model.aux_dims * 4
    r = model.rnn_dims
    b = 3
    graphs = [
        Graph(
            "conditioner",
            Call(_wavernn_conditioner, normalizer=_zscore(ctx, n_mels), m=model),
            [Input("logmel", [-1, n_mels], "float32", _floats(6, n_mels))],
            ["mels", "aux"],
        ),
        Graph(
            "step",
            Call(_wavernn_step, model),
            [
                Input(
                    "x",
                    [-1, 1],
                    "float32",
                    lambda rng: rng.uniform(-1, 1, (b, 1)).astype("float32"),
                ),
                Input("m_t", [-1, n_mels], "float32", _floats(b, n_mels)),
                Input("a_t", [-1, res_out], "float32", _floats(b, res_out)),
                Input("h1", [-1, r], "float32", _floats(b, r)),
                Input("h2", [-1, r], "float32", _floats(b, r)),
                Input(
                    "u", [-1, 1], "float32", lambda rng: rng.uniform(0, 1, (b, 1)).astype("float32")
                ),
            ],
            ["sample", "h1", "h2", "logits"],
        ),
    ]
    inf = cfg.get("inference") or {}
    meta = _voc_meta(cfg) | {
        "wavernn": {
            "rnn_dims": r,
            "aux_dims": model.aux_dims,
            "n_classes": model.n_classes,
            "mu_law": bool(cfg.get("mu_law", True)),
            "hop_length": hop,
            "gen_batched": bool(inf.get("gen_batched", True)),
            "target": int(inf.get("target", 12000)),
            "overlap": int(inf.get("overlap", 600)),
        }
    }
    return Built(model, graphs, meta, ("mel",))


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
    return np.stack(
        [
            x[0, i * (target + overlap) : i * (target + overlap) + target + 2 * overlap]
            for i in range(folds)
        ]
    )


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
        out[start : start + length] += y[i]
    return out


def wavernn_generate(
    exp, logmel: np.ndarray, *, seed=0, batched=None, target=None, overlap=None, progress=False
) -> np.ndarray:
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
        mels, aux = (
            _fold_with_overlap(mels, target, overlap),
            _fold_with_overlap(aux, target, overlap),
        )
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
        x, h1, h2, _ = exp.run(
            x,
            np.ascontiguousarray(mels[:, i]),
            np.ascontiguousarray(aux[:, i]),
            h1,
            h2,
            u,
            graph="step",
        )
        out[:, i] = x[:, 0]
    if w["mu_law"]:
        mu = w["n_classes"] - 1
        out = np.sign(out) / mu * ((1 + mu) ** np.abs(out) - 1)
    wav = _xfade_and_unfold(out, overlap) if batched else out[0]
    wav = wav[:wave_len].astype("float32")
    fade = min(10 * w["hop_length"], len(wav))  # upstream fails when wav < 10 hops
    wav[len(wav) - fade :] *= np.linspace(1, 0, 10 * w["hop_length"], dtype="float32")[
        10 * w["hop_length"] - fade :
    ]
    return wav
