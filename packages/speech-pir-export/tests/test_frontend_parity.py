"""The front end travels with the model: ``infer --wav`` on an export gives the same token ids
as PaddleSpeech's own inference path, on real recorded speech.

Material: a sentence spoken by espeak-ng, resampled to 16 kHz 16-bit with sox (the test makes
it; it skips when the tools are missing). Models: random weights with non-trivial global CMVN
statistics, laid out as a PaddleSpeech recipe folder (``conf/<model>.yaml``,
``conf/preprocess.yaml`` with ``fbank_kaldi`` + ``cmvn_json`` + SpecAugment,
``data/mean_std.json``, ``data/lang_char/vocab.txt``, a ``.pdparams`` checkpoint). The export
reads the recipe's front end from there; the comparison runs the recipe's own pipeline:

* U2: the example's test script class ``paddlespeech.s2t.exps.u2.bin.test_wav.U2Infer``
  (Transformation of conf/preprocess.yaml, U2Model.decode with attention rescoring,
  simulated streaming in chunks of 16) -> transcript, which must equal ours exactly.
* DeepSpeech2: the example's ``DeepSpeech2Tester_hub`` front end (its Transformation) and
  upstream DeepSpeech2Model's CTC probabilities; upstream's greedy decoder is the swig
  ``paddlespeech_ctcdecoders`` (no wheel for this Python), so the greedy collapse of the
  argmax is done here: token ids must be identical.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from argparse import Namespace
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml

from speech_pir_export import configs
from speech_pir_export.cli import main

SENTENCE = "the quick brown fox jumps over the lazy dog"
VOCAB = ["<blank>", "<unk>", *"abcdefghijklmnopqrstuvwxyz'", "<space>", "<eos>"]


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("needs espeak-ng and sox (apt-get install espeak-ng sox)")
    folder = tmp_path_factory.mktemp("speech")
    raw, wav = folder / "raw.wav", folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(raw), SENTENCE], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-b", "16", "-c", "1", str(wav)], check=True)
    return wav


def make_recipe(root: Path, name: str, feat_dim: int, extra: dict) -> Path:
    """A recipe folder as PaddleSpeech's examples lay it out, with random CMVN statistics
    far from identity (mean ~ 8, std 1.5 - 4, as real log-mel fbank statistics)."""
    (root / "conf").mkdir(parents=True)
    (root / "data" / "lang_char").mkdir(parents=True)
    cfg = yaml.safe_load(configs.path(name).read_text(encoding="utf-8"))
    cfg.update(
        feat_dim=feat_dim,
        preprocess_config="conf/preprocess.yaml",
        vocab_filepath="data/lang_char/vocab.txt",
        unit_type="char",
        spm_model_prefix="",
        **extra,
    )
    (root / "conf" / f"{name}.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    process = [
        {
            "type": "fbank_kaldi",
            "fs": 16000,
            "n_mels": feat_dim,
            "n_shift": 160,
            "win_length": 400,
            "dither": 0.1,
        },
        {"type": "cmvn_json", "cmvn_path": "data/mean_std.json"},
        {"type": "time_warp", "max_time_warp": 5, "inplace": True, "mode": "PIL"},
        {"type": "freq_mask", "F": 30, "n_mask": 2, "inplace": True, "replace_with_zero": False},
        {"type": "time_mask", "T": 40, "n_mask": 2, "inplace": True, "replace_with_zero": False},
    ]
    (root / "conf" / "preprocess.yaml").write_text(
        yaml.safe_dump({"process": process}), encoding="utf-8"
    )
    rng = np.random.default_rng(7)
    n = 123456
    mean = rng.uniform(4.0, 12.0, feat_dim)
    std = rng.uniform(1.5, 4.0, feat_dim)
    stats = {
        "frame_num": n,
        "mean_stat": (mean * n).tolist(),
        "var_stat": ((std**2 + mean**2) * n).tolist(),
    }
    (root / "data" / "mean_std.json").write_text(json.dumps(stats), encoding="utf-8")
    (root / "data" / "lang_char" / "vocab.txt").write_text(
        "\n".join(VOCAB) + "\n", encoding="utf-8"
    )
    return root / "conf" / f"{name}.yaml"


def export_and_infer(capsys, config, ckpt, wav, out):
    vocab = config.parent.parent / "data" / "lang_char" / "vocab.txt"
    assert (
        main(
            [
                "export",
                config.stem if config.stem != "u2" else "u2",
                "--config",
                str(config),
                "--checkpoint",
                str(ckpt),
                "--phones-dict",
                str(vocab),
                "--out",
                str(out),
                "--skip-onednn",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["infer", str(out), "--wav", str(wav)]) == 0
    return json.loads(capsys.readouterr().out)


def test_u2_infer_equals_the_examples_test_script(speech, tmp_path, capsys, monkeypatch):
    from paddlespeech.s2t.exps.u2.bin import test_wav
    from paddlespeech.s2t.models.u2 import U2Model
    from yacs.config import CfgNode

    recipe = tmp_path / "recipe"
    config = make_recipe(recipe, "u2", 80, {})
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg["encoder_conf"]["use_dynamic_chunk"] = True  # a chunk (streaming) recipe
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    # random weights; the CTC blank is pushed down so that the transcript is not empty
    paddle.seed(3)
    model = U2Model.from_config(
        CfgNode(dict(cfg, input_dim=80, output_dim=len(VOCAB), cmvn_file=None))
    )
    bias = model.ctc.ctc_lo.bias
    bias.set_value((bias.numpy() - 4.0 * (np.arange(len(VOCAB)) == 0)).astype("float32"))
    ckpt = recipe / "exp" / "avg_1"
    ckpt.parent.mkdir()
    paddle.save(model.state_dict(), str(ckpt) + ".pdparams")

    ours = export_and_infer(capsys, config, str(ckpt) + ".pdparams", speech, tmp_path / "exp")
    manifest = json.loads((tmp_path / "exp" / "export.json").read_text(encoding="utf-8"))
    front = manifest["meta"]["frontend"]
    assert front["type"] == "fbank_kaldi" and front["cmvn"] and front["dither"] == 0.0

    # upstream: the example's own test script, run from the recipe folder as its
    # local/test_wav.sh does
    monkeypatch.chdir(recipe)
    up_cfg = CfgNode(cfg)
    up_cfg.decode = CfgNode(
        dict(
            decoding_method="attention_rescoring",
            beam_size=10,
            ctc_weight=0.5,
            decoding_chunk_size=16,
            num_decoding_left_chunks=-1,
            simulate_streaming=True,
            reverse_weight=0.0,
        )
    )
    args = Namespace(audio_file=str(speech), checkpoint_path=str(ckpt), ngpu=0, debug=False)
    monkeypatch.setattr(test_wav, "args", args, raising=False)  # run() reads a global `args`
    reference = test_wav.U2Infer(up_cfg, args).run()
    assert len(ours["token_ids"]) >= 3  # a real hypothesis, not an empty one
    assert ours["text"] == reference.replace(" ", "<space>")
    assert "".join(VOCAB[i] for i in ours["token_ids"]) == ours["text"]

    # control: the same export without its recorded CMVN transcribes something else, so the
    # equality above depends on the front end travelling with the model
    bare = tmp_path / "bare"
    shutil.copytree(tmp_path / "exp", bare)
    manifest["meta"]["frontend"].pop("cmvn")
    (bare / "export.json").write_text(json.dumps(manifest), encoding="utf-8")
    capsys.readouterr()
    assert main(["infer", str(bare), "--wav", str(speech)]) == 0
    assert json.loads(capsys.readouterr().out)["token_ids"] != ours["token_ids"]


def test_deepspeech2_infer_equals_the_examples_front_end(speech, tmp_path, capsys, monkeypatch):
    from paddlespeech.audio.transform.transformation import Transformation
    from paddlespeech.s2t.models.ds2 import DeepSpeech2Model
    from yacs.config import CfgNode

    recipe = tmp_path / "recipe"
    config = make_recipe(recipe, "deepspeech2", 161, {})
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    up = dict(cfg, input_dim=161, output_dim=len(VOCAB))
    up.setdefault("num_fc_layers", 0)
    up["fc_layers_size_list"] = []
    paddle.seed(5)
    model = DeepSpeech2Model.from_config(CfgNode(up))
    bias = model.decoder.ctc_lo.bias
    bias.set_value((bias.numpy() - 4.0 * (np.arange(len(VOCAB)) == 0)).astype("float32"))
    model.eval()
    ckpt = recipe / "exp" / "avg_1.pdparams"
    ckpt.parent.mkdir()
    paddle.save(model.state_dict(), str(ckpt))

    ours = export_and_infer(capsys, config, ckpt, speech, tmp_path / "exp")

    # upstream: DeepSpeech2Tester_hub.test's front end (int16 samples, Transformation of the
    # recipe's preprocess config with train=False), then the model's CTC probabilities
    import soundfile

    monkeypatch.chdir(recipe)
    audio, _ = soundfile.read(str(speech), dtype="int16", always_2d=True)
    feat = Transformation(cfg["preprocess_config"])(audio[:, 0], train=False)
    with paddle.no_grad():
        x = paddle.to_tensor(feat, dtype="float32").unsqueeze(0)
        eouts, eouts_len, *_ = model.encoder(x, paddle.to_tensor([feat.shape[0]]))
        probs = model.decoder.softmax(eouts).numpy()[0]
    best = probs.argmax(-1)
    ids = [int(t) for i, t in enumerate(best) if t != 0 and (i == 0 or t != best[i - 1])]
    assert len(ids) >= 3
    assert ours["token_ids"] == ids


def test_u2_st_infer_equals_the_models_own_translate(speech, tmp_path, capsys, monkeypatch):
    """U2-ST: the example has no test script and PaddleSpeech's STExecutor needs Kaldi
    binaries for its features, so the reference is the recipe's front end (Transformation of
    conf/preprocess.yaml, train=False) and the model's own decode path,
    ``U2STModel.translate`` with the recipe's decode settings (fullsentence: beam 10, word
    reward 0.7, maxlenratio 0.3, whole-utterance encoder): token ids must be identical."""
    from paddlespeech.audio.transform.transformation import Transformation
    from paddlespeech.s2t.models.u2_st import U2STModel
    from yacs.config import CfgNode

    from speech_pir_export.registry.asr import ST_DECODE

    recipe = tmp_path / "recipe"
    config = make_recipe(recipe, "u2_st", 80, {})
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    paddle.seed(11)
    model = U2STModel.from_config(
        CfgNode(dict(cfg, input_dim=80, output_dim=len(VOCAB), cmvn_file=None))
    )
    # random weights; <eos> pushed down a little so that hypotheses are not all empty
    bias = model.st_decoder.output_layer.bias
    eos = len(VOCAB) - 1
    bias.set_value((bias.numpy() - 2.0 * (np.arange(len(VOCAB)) == eos)).astype("float32"))
    model.eval()
    ckpt = recipe / "exp" / "avg_1.pdparams"
    ckpt.parent.mkdir()
    paddle.save(model.state_dict(), str(ckpt))

    ours = export_and_infer(capsys, config, ckpt, speech, tmp_path / "exp")

    import soundfile

    monkeypatch.chdir(recipe)
    audio, _ = soundfile.read(str(speech), dtype="int16", always_2d=True)
    feat = Transformation(cfg["preprocess_config"])(audio[:, 0], train=False)
    with paddle.no_grad():
        x = paddle.to_tensor(feat, dtype="float32").unsqueeze(0)
        hyp = model.translate(
            x,
            paddle.to_tensor([feat.shape[0]], dtype="int64"),
            beam_size=ST_DECODE["beam_size"],
            word_reward=ST_DECODE["word_reward"],
            maxlenratio=ST_DECODE["maxlenratio"],
            decoding_chunk_size=-1,
            num_decoding_left_chunks=-1,
            simulate_streaming=False,
        )
    ids = [int(t) for t in hyp.numpy()[0]]
    assert ids[-1] == eos  # translate returns the ended sequence, <eos> included
    assert len(ids) - 1 >= 3  # a real translation, not an empty one
    assert ours["token_ids"] == ids[:-1]
    assert ST_DECODE == {
        "beam_size": 10,
        "word_reward": 0.7,
        "maxlenratio": 0.3,
        "decoding_chunk_size": -1,
    }  # ted_en_zh/st1/conf/tuning/decode.yaml


def test_ge2e_infer_equals_the_recipes_preprocessor_and_embed_utterance(speech, tmp_path, capsys):
    """GE2E: PaddleSpeech's own path is ``SpeakerVerificationPreprocessor`` (volume
    normalisation, webrtcvad silence trimming, power mel, partial utterances) with the config's
    settings, then ``LSTMSpeakerEncoder.embed_utterance``. The WAV is the spoken sentence made
    quiet (about -45 dBFS, so the normalisation raises it) with 1.5 s of silence between two
    copies (so the VAD trims)."""
    import soundfile
    from paddlespeech.vector.exps.ge2e.audio_processor import SpeakerVerificationPreprocessor
    from paddlespeech.vector.exps.ge2e.config import get_cfg_defaults
    from paddlespeech.vector.models.lstm_speaker_encoder import LSTMSpeakerEncoder

    from speech_pir_export.exporter import ExportedModel
    from speech_pir_export.frontend import features
    from speech_pir_export.registry.audio import decode_ge2e

    voice, sr = soundfile.read(str(speech), dtype="float32")
    voice = voice / np.sqrt(np.mean(voice**2)) * 10 ** (-45 / 20)
    mixed = np.concatenate([voice, np.zeros(sr * 3 // 2, "float32"), voice])
    wav = tmp_path / "quiet_with_pause.wav"
    soundfile.write(str(wav), mixed, sr, subtype="PCM_16")

    config = configs.path("ge2e")
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    data = get_cfg_defaults().data
    data.merge_from_other_cfg(type(data)(cfg["data"]))
    m = cfg["model"]
    paddle.seed(11)
    model = LSTMSpeakerEncoder(data.n_mels, m["num_layers"], m["hidden_size"], m["embedding_size"])
    model.eval()
    ckpt = tmp_path / "ge2e.pdparams"
    paddle.save(model.state_dict(), str(ckpt))
    out = tmp_path / "exp"
    argv = ["export", "ge2e", "--config", str(config), "--checkpoint", str(ckpt)]
    assert main([*argv, "--out", str(out), "--skip-onednn"]) == 0
    capsys.readouterr()
    assert main(["infer", str(out), "--wav", str(wav)]) == 0
    ours = np.asarray(json.loads(capsys.readouterr().out)["embedding"], "float32")

    # upstream: the recipe's preprocessor on the file, then the dygraph embed_utterance
    proc = SpeakerVerificationPreprocessor(
        sampling_rate=data.sampling_rate,
        audio_norm_target_dBFS=data.audio_norm_target_dBFS,
        vad_window_length=data.vad_window_length,
        vad_moving_average_width=data.vad_moving_average_width,
        vad_max_silence_length=data.vad_max_silence_length,
        mel_window_length=data.mel_window_length,
        mel_window_step=data.mel_window_step,
        n_mels=data.n_mels,
        partial_n_frames=data.partial_n_frames,
        min_pad_coverage=data.min_pad_coverage,
        partial_overlap_ratio=data.partial_overlap_ratio,
    )
    trimmed = proc.preprocess_wav(wav)
    assert len(trimmed) < len(mixed) - sr // 2  # the VAD step removed the pause
    partials = proc.extract_mel_partials(trimmed)
    assert partials.shape[0] >= 2
    with paddle.no_grad():
        ref = model.embed_utterance(paddle.to_tensor(partials)).numpy()
    diff = float(np.abs(ours - ref).max())
    print(f"ge2e embedding max abs diff vs upstream: {diff:.2e}")
    assert ours.shape == ref.shape == (m["embedding_size"],)
    assert diff <= 1e-4

    # the front end before this release (paddle.audio log-mel of the raw file, windows cut in
    # decode) gives another embedding: this comparison tells the two apart
    exp = ExportedModel(out)
    exp.manifest["meta"].pop("frontend")
    old_wav, _ = soundfile.read(str(wav), dtype="float32")
    old = np.asarray(decode_ge2e(exp, features(exp.manifest, old_wav, sr))["embedding"])
    print(f"ge2e old front end max abs diff: {np.abs(old - ref).max():.2e}")
    assert np.abs(old - ref).max() > 1e-2
