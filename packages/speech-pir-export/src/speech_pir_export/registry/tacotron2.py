"""Tacotron2, restructured for the predictor: Paddle 3.3.1 rejects upstream's while+if graph
(``size 0 of regions must be equal to 2``), so the graphs are the encoder, one decoder step
and the postnet, and the autoregressive loop runs in Python (:func:`tacotron2_generate`)."""

from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from ..frontend import acoustic_feeds, need_spk_emb
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


def _encoder(m, text):
    x = F.pad(text, [0, 1], "constant", m.eos)
    return m.enc.inference(x).unsqueeze(0)  # (1, T, eunits)


def _spk_encoder(m, text, spk_emb):
    """Voice cloning (aishell3/vc0): the speaker embedding joins the encoder output."""
    return m._integrate_with_spk_embed(_encoder(m, text), spk_emb.unsqueeze(0))


def _decoder_step(m, hs, att_prev, z, c, prev_out, prenet_masks):
    """One step of Decoder.inference, state passed in and out (no `self` state)."""
    d = m.dec
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


def _postnet(m, normalizer, outs):  # (1, odim, L) -> logmel (L, odim)
    if m.dec.postnet is not None:
        outs = outs + m.dec.postnet(outs)
    return normalizer.inverse(outs.transpose([0, 2, 1]).squeeze(0))


def _is_taco(cfg):
    m = cfg.get("model") or {}
    return "atype" in m and "embed_dim" in m and "dunits" in m


@register(
    "tacotron2",
    "tts-acoustic",
    "Tacotron2",
    checkpoint_key="main_params",
    needs_stats=True,
    detect=_is_taco,
    generate=lambda exp, **kw: tacotron2_generate(
        exp, acoustic_feeds(exp, **kw)[0], seed=kw.get("seed", 0), spk_emb=kw.get("spk_emb")
    ),
    notes="restructured for the predictor (Paddle 3.3.1 rejects upstream's while+if "
    "graph: `size 0 of regions must be equal to 2`): graphs encoder, decoder_step and postnet; "
    "the autoregressive loop runs in Python (infer.tacotron2_generate); the "
    "prenet's always-on dropout masks are an input of decoder_step",
)
def _tacotron2(cfg, ctx):
    from paddlespeech.t2s.models.tacotron2 import Tacotron2

    mcfg = dict(_need(cfg, "model", "Tacotron2"))
    if mcfg.get("atype", "location") != "location":
        raise ConfigError("only atype: location is exported (the csmsc/ljspeech recipes)")
    odim = cfg.get("n_mels", 80)
    model = _build_model(Tacotron2, dict(idim=_vocab_size(ctx), odim=odim, **mcfg), "Tacotron2")
    dec = model.dec
    n_layers = len(dec.lstm)
    units = dec.lstm[0].hidden_size
    eunits = mcfg.get("eunits", 512)
    prenet_layers = len(dec.prenet.prenet) if dec.prenet is not None else 0
    prenet_units = mcfg.get("prenet_units", 256)
    normalizer = _zscore(ctx, odim)

    vs = _vocab_size(ctx)
    t_enc = 9

    def masks(rng):
        keep = rng.random((max(prenet_layers, 1), 1, prenet_units)) >= 0.5
        return (keep * 2.0).astype("float32")

    spk_dim = model.spk_embed_dim
    enc_graph = Graph(
        "encoder", Call(_encoder, model), [Input("text", [-1], "int64", _ids(8, vs))], ["hs"]
    )
    hs_dim = eunits
    if spk_dim:
        enc_graph = Graph(
            "encoder",
            Call(_spk_encoder, model),
            [
                Input("text", [-1], "int64", _ids(8, vs)),
                Input("spk_emb", [spk_dim], "float32", _unit(spk_dim)),
            ],
            ["hs"],
        )
        hs_dim = eunits + spk_dim if model.spk_embed_integration_type == "concat" else eunits
    graphs = [
        enc_graph,
        Graph(
            "decoder_step",
            Call(_decoder_step, model),
            [
                Input("hs", [1, -1, hs_dim], "float32", _floats(1, t_enc, hs_dim)),
                Input(
                    "att_prev",
                    [1, -1],
                    "float32",
                    lambda rng: np.full((1, t_enc), 1.0 / t_enc, "float32"),
                ),
                Input("z", [n_layers, 1, units], "float32", _floats(n_layers, 1, units)),
                Input("c", [n_layers, 1, units], "float32", _floats(n_layers, 1, units)),
                Input("prev_out", [1, odim], "float32", _floats(1, odim)),
                Input("prenet_masks", [max(prenet_layers, 1), 1, prenet_units], "float32", masks),
            ],
            ["out", "prob", "att_w", "z", "c"],
        ),
        Graph(
            "postnet",
            Call(_postnet, m=model, normalizer=normalizer),
            [Input("outs", [1, odim, -1], "float32", _floats(1, odim, 15))],
            ["logmel"],
        ),
    ]
    meta = _tts_meta(cfg, ctx) | {
        "decoder": {
            "layers": n_layers,
            "units": units,
            "odim": odim,
            "prenet_layers": prenet_layers,
            "prenet_units": prenet_units,
            "prenet_dropout": 0.5,
            "reduction_factor": mcfg.get("reduction_factor", 1),
            "cumulate_att_w": mcfg.get("cumulate_att_w", True),
            "output_activation": mcfg.get("output_activation"),
        }
    }
    if spk_dim:
        meta["spk_embed_dim"] = spk_dim
    return Built(model, graphs, meta, ("mel",))


def tacotron2_generate(
    exp, ids: np.ndarray, *, threshold=0.5, maxlenratio=10.0, minlenratio=0.0, seed=0, spk_emb=None
) -> np.ndarray:
    """Upstream Decoder.inference's loop, in Python over the exported step graph."""
    d = exp.meta["decoder"]
    rng = np.random.default_rng(seed)
    feeds = [ids] + ([need_spk_emb(exp, spk_emb)] if exp.meta.get("spk_embed_dim") else [])
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
        masks = (
            (rng.random((max(d["prenet_layers"], 1), 1, d["prenet_units"])) < p_keep) / p_keep
        ).astype("float32")
        out, prob, att_w, z, c = exp.run(hs, att_prev, z, c, prev_out, masks, graph="decoder_step")
        outs.append(out)
        prev_out = np.ascontiguousarray(out[:, :, -1])
        att_prev = (att_prev + att_w) if d["cumulate_att_w"] and idx > 1 else att_w
        att_prev = att_prev.astype("float32")
        if (float(prob.max()) >= threshold or idx >= maxlen) and idx >= minlen:
            break
    return exp.run(np.concatenate(outs, axis=2), graph="postnet")[0]
