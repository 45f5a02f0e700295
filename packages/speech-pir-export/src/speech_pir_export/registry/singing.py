"""Singing voice synthesis: DiffSinger, restructured (upstream draws its noise inside a
60-step DDPM loop): the graphs are the FastSpeech2-MIDI front (``fs2``) and one denoiser call;
the shallow-diffusion loop runs in Python (:func:`diffsinger_generate`)."""

from __future__ import annotations

import numpy as np
import paddle

from ..errors import ExportError
from ..frontend import numbers, phone_ids
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
    _vocab_size,
    register,
)


def _fs2(m, text, note, note_dur, is_slur):
    mel, _, _, _ = m.fs2.inference(text, note, note_dur, is_slur)
    ref = m.diffusion.norm_spec(mel).unsqueeze(0).transpose([0, 2, 1])
    cond = m.fs2.encoder_infer(text, note, note_dur, is_slur)
    return ref, cond.transpose([0, 2, 1])


def _denoiser(m, x, t, cond):
    return m.diffusion.denoiser(x, t, cond)


def _generate(exp, *, phones=None, notes=None, note_durs=None, slurs=None, seed=0, **_):
    if phones is None or notes is None or note_durs is None:
        raise ExportError("DiffSinger needs --phones, --notes and --note-durs")
    ids = phone_ids(exp.manifest, phones)
    n = len(ids)
    slur = np.zeros(n, np.int64) if slurs is None else numbers(slurs, n, np.int64, "--slurs")
    return diffsinger_generate(
        exp,
        ids,
        numbers(notes, n, np.int64, "--notes"),
        numbers(note_durs, n, np.float32, "--note-durs"),
        slur,
        seed=seed,
        progress=True,
    )


def _is_diffsinger(cfg):
    m = cfg.get("model") or {}
    return "fastspeech2_params" in m and "denoiser_params" in m and "diffusion_params" in m


@register(
    "diffsinger",
    "svs-acoustic",
    "DiffSinger",
    checkpoint_key="main_params",
    needs_stats=True,
    detect=_is_diffsinger,
    generate=lambda exp, **kw: _generate(exp, **kw),
    notes="restructured: upstream's inference draws noise inside a 60-step DDPM loop. "
    "Graphs: fs2 (score -> FastSpeech2-MIDI mel, stretched to [-1, 1], and the "
    "conditioning) and denoiser (one DiffNet call: x_t, t, cond -> predicted "
    "noise); the shallow-diffusion loop (add_noise at step 59, DDPM updates, "
    "denormalisation) runs in Python over the scheduler's table "
    "(infer.diffsinger_generate). --stats is the speech_stretchs file "
    "(min, max) of the recipe",
)
def _diffsinger(cfg, ctx):
    from paddlespeech.t2s.models.diffsinger import DiffSinger

    mcfg = dict(_need(cfg, "model", "DiffSinger"))
    odim = cfg.get("n_mels", 80)
    if ctx.stats is None:  # random weights: identity stretch
        lo, hi = -np.ones(odim, "float32"), np.ones(odim, "float32")
    else:
        lo, hi = ctx.stats["mu"].astype("float32"), ctx.stats["sigma"].astype("float32")
        if lo.shape != (odim,):
            raise ConfigError(f"statistics have shape {lo.shape}, the model expects ({odim},)")
    model = _build_model(
        DiffSinger,
        dict(
            spec_min=paddle.to_tensor(lo),
            spec_max=paddle.to_tensor(hi),
            idim=_vocab_size(ctx),
            odim=odim,
            **mcfg,
        ),
        "DiffSinger",
    )
    if ctx.random_init:
        paddle.nn.initializer.Constant(1.5)(model.fs2.duration_predictor.linear.bias)
    diff = model.diffusion

    vs = _vocab_size(ctx)
    n = 8
    adim = mcfg["fastspeech2_params"]["adim"]
    note_num = int(mcfg.get("note_num", 300))
    sched = diff.noise_scheduler
    graphs = [
        Graph(
            "fs2",
            Call(_fs2, model),
            [
                Input("text", [-1], "int64", _ids(n, vs)),
                Input("note", [-1], "int64", _ids(n, note_num)),
                Input(
                    "note_dur",
                    [-1],
                    "float32",
                    lambda rng: rng.uniform(0.05, 0.3, n).astype("float32"),
                ),
                Input("is_slur", [-1], "int64", _ids(n, 2, 0)),
            ],
            ["ref", "cond"],
        ),
        Graph(
            "denoiser",
            Call(_denoiser, model),
            [
                Input("x", [1, odim, -1], "float32", _floats(1, odim, 20)),
                Input("t", [1], "int64", lambda rng: np.array([37], np.int64)),
                Input("cond", [1, adim, -1], "float32", _floats(1, adim, 20)),
            ],
            ["noise_pred"],
        ),
    ]
    meta = _tts_meta(cfg, ctx) | {
        "diffusion": {
            "alphas_cumprod": [
                float(v) for v in np.asarray(sched.alphas_cumprod.numpy(), "float64")
            ],
            "num_train_timesteps": int(diff.num_train_timesteps),
            "num_inference_steps": 60,
            "clip_sample": bool(sched.config.clip_sample),
            "clip_sample_range": float(sched.config.clip_sample_range),
            "variance_type": sched.config.variance_type,
            "prediction_type": sched.config.prediction_type,
            "stretch": bool(diff.stretch),
            "spec_min": lo.tolist(),
            "spec_max": hi.tolist(),
        }
    }
    return Built(model, graphs, meta, ("mel",))


def diffsinger_generate(
    exp, text, note, note_dur, is_slur, *, seed=0, num_inference_steps=None, progress=False
) -> np.ndarray:
    """Score -> log-mel (T, n_mels). Noise draws (initial, then one per step t > 0) come
    from ``seed`` in upstream's order."""
    d = exp.meta["diffusion"]
    acp = np.asarray(d["alphas_cumprod"], "float32")
    steps = int(num_inference_steps or d["num_inference_steps"])
    ref, cond = exp.run(
        np.asarray(text, np.int64),
        np.asarray(note, np.int64),
        np.asarray(note_dur, np.float32),
        np.asarray(is_slur, np.int64),
        graph="fs2",
    )
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
        x0 = (x - beta_t**0.5 * eps) / a_t**0.5
        if d["clip_sample"]:
            x0 = np.clip(x0, -d["clip_sample_range"], d["clip_sample_range"])
        x = (a_prev**0.5 * cur_beta / beta_t) * x0 + (cur_alpha**0.5 * beta_prev / beta_t) * x
        if t > 0:
            var = max((1 - a_prev) / (1 - a_t) * cur_beta, 1e-20)
            if d["variance_type"] != "fixed_small":
                raise ExportError(f"DDPM variance_type {d['variance_type']!r} not supported")
            x = x + var**0.5 * rng.standard_normal(x.shape).astype("float32")
    if d["stretch"]:
        lo = np.asarray(d["spec_min"], "float32")[None, :, None]
        hi = np.asarray(d["spec_max"], "float32")[None, :, None]
        x = (x + 1) / 2 * (hi - lo) + lo
    return x[0].T.astype("float32")
