"""Text in, waveform out: ``infer --text`` on a FastSpeech2 + HiFiGAN export pair against
PaddleSpeech's own path of ``synthesize_e2e.py`` (``syn_utils.get_frontend`` /
``run_frontend`` for the text, ``get_am_inference`` / ``get_voc_inference`` loading the same
``.pdz`` checkpoints and statistics files), waveform max abs difference <= 1e-4 relative.

Checkpoints: random weights saved as the recipes' ``snapshot_iter_*.pdz`` layouts
(``main_params``, ``generator_params``), with non-trivial feature statistics
(``feats_stats.npy``: mean -5..0, std 1..3 per bin) and a phone map of 120 symbols
(``phone_id_map.txt``) into which the Chinese front end maps its phones.
"""

from __future__ import annotations

import numpy as np
import paddle
import yaml

from speech_pir_export import configs
from speech_pir_export.cli import main

TEXT = "今天天气很好，我们去公园散步。"


def phone_map(path):
    """PaddleSpeech's phone_id_map.txt layout: the Chinese front end's phones (initials,
    finals with tones) and punctuation pauses; 120 symbols as the tiny config expects."""
    initials = "b p m f d t n l g k h j q x zh ch sh r z c s y w".split()
    finals = (
        "a o e i u v ai ei ao ou an en ang eng ong er ia ie iao iu ian in iang ing iong ua uo "
        "uai ui uan un uang ve van vn ii iii".split()
    )
    symbols = ["<pad>", "<unk>", "sp", "sil", *initials]
    for f in finals:
        symbols += [f"{f}{t}" for t in "12345"]
    symbols = symbols[:119] + ["<eos>"]
    path.write_text("\n".join(f"{s} {i}" for i, s in enumerate(symbols)) + "\n", encoding="utf-8")
    return path


def test_text_to_wave_equals_synthesize_e2e(tmp_path, capsys):
    from paddlespeech.t2s.exps.syn_utils import (
        get_am_inference,
        get_frontend,
        get_voc_inference,
        run_frontend,
    )
    from paddlespeech.t2s.models.fastspeech2 import FastSpeech2
    from paddlespeech.t2s.models.hifigan import HiFiGANGenerator
    from yacs.config import CfgNode

    phones = phone_map(tmp_path / "phone_id_map.txt")
    try:
        frontend = get_frontend(lang="zh", phones_dict=str(phones))
    except Exception:
        # upstream's default g2p (g2pW) is a model fetched from its CDN on first use; offline
        # both sides use PaddleSpeech's pypinyin g2p (infer says so on stderr)
        from paddlespeech.t2s.frontend.zh_frontend import Frontend

        frontend = Frontend(g2p_model="pypinyin", phone_vocab_path=str(phones))
    ids = run_frontend(frontend, TEXT, merge_sentences=True)["phone_ids"][0]
    assert len(ids) > 10

    am_cfg = yaml.safe_load(configs.path("fastspeech2").read_text(encoding="utf-8"))
    voc_cfg = yaml.safe_load(configs.path("hifigan").read_text(encoding="utf-8"))
    n_mels = am_cfg["n_mels"]
    paddle.seed(11)
    am = FastSpeech2(idim=120, odim=n_mels, **am_cfg["model"])
    paddle.nn.initializer.Constant(1.2)(am.duration_predictor.linear.bias)  # frames per phone
    paddle.save({"main_params": am.state_dict()}, str(tmp_path / "am.pdz"))
    voc = HiFiGANGenerator(**voc_cfg["generator_params"])
    paddle.save({"generator_params": voc.state_dict()}, str(tmp_path / "voc.pdz"))
    rng = np.random.default_rng(4)
    for name in ("am_stats.npy", "voc_stats.npy"):
        np.save(
            tmp_path / name,
            np.stack([rng.uniform(-5, 0, n_mels), rng.uniform(1, 3, n_mels)]).astype("float32"),
        )
    for name, model, ckpt, stats, extra in (
        ("fastspeech2", "fastspeech2", "am.pdz", "am_stats.npy", ["--phones-dict", phones]),
        ("hifigan", "hifigan", "voc.pdz", "voc_stats.npy", []),
    ):
        assert (
            main(
                [
                    "export",
                    model,
                    "--config",
                    str(configs.path(name)),
                    "--checkpoint",
                    str(tmp_path / ckpt),
                    "--stats",
                    str(tmp_path / stats),
                    "--out",
                    str(tmp_path / name),
                    "--skip-onednn",
                    *map(str, extra),
                ]
            )
            == 0
        )

    # ours: text -> the export's vocabulary -> predictor -> predictor
    from speech_pir_export.infer import synthesize

    wav, sr = synthesize(tmp_path / "fastspeech2", tmp_path / "hifigan", text=TEXT)

    # PaddleSpeech's synthesize_e2e path, same checkpoints and statistics
    am_inference = get_am_inference(
        am="fastspeech2_csmsc",
        am_config=CfgNode(am_cfg),
        am_ckpt=str(tmp_path / "am.pdz"),
        am_stat=str(tmp_path / "am_stats.npy"),
        phones_dict=str(phones),
    )
    voc_inference = get_voc_inference(
        voc="hifigan_csmsc",
        voc_config=CfgNode(voc_cfg),
        voc_ckpt=str(tmp_path / "voc.pdz"),
        voc_stat=str(tmp_path / "voc_stats.npy"),
    )
    with paddle.no_grad():
        ref = voc_inference(am_inference(ids)).numpy().reshape(-1)
    assert sr == am_cfg["fs"] and wav.shape == ref.shape and len(ref) > 1000
    diff = float(np.abs(wav - ref).max())
    print(f"waveform max abs diff {diff:.2e} (peak {np.abs(ref).max():.3f}, {len(ref)} samples)")
    assert diff <= 1e-4 * max(1.0, float(np.abs(ref).max())), diff
