"""Voice cloning (aishell3/vc0-vc2 recipes): GE2E speaker encoder -> speaker embedding ->
FastSpeech2 conditioned on it (``spk_emb`` input) -> vocoder, all on the predictor.
Tolerance 1e-4 relative against upstream dygraph on the same inputs."""

import numpy as np
import paddle
import pytest
from conftest import ensure_export

import speech_pir_export as spe
from speech_pir_export.infer import features, speaker_embedding, synthesize


@pytest.fixture(scope="module")
def exports(export_root):
    for name, cfg in (
        ("ge2e", "ge2e"),
        ("fastspeech2", "fastspeech2_vc"),
        ("mb_melgan", "mb_melgan"),
    ):
        ensure_export(export_root, name, cfg)
    return export_root


def test_ge2e_utterance_embedding_matches_upstream(exports):
    wav = np.random.default_rng(0).standard_normal(16000 * 2).astype("float32") * 0.1
    got = speaker_embedding(exports / "ge2e", wav, 16000)
    assert got.shape == (16,) and abs(np.linalg.norm(got) - 1) < 1e-5
    # upstream LSTMSpeakerEncoder.embed_utterance on the same partial utterances (the
    # export's front end is the recipe's preprocessor: it returns the partials)
    dyg = spe.DygraphModel(exports / "ge2e")
    parts = features(dyg.manifest, wav, 16000)
    assert parts.ndim == 3 and parts.shape[1:] == (160, 40)
    with paddle.no_grad():
        ref = dyg.built.model.embed_utterance(paddle.to_tensor(parts)).numpy()
    assert np.abs(got - ref).max() <= 1e-4
    with pytest.raises(spe.ExportError, match="silent"):
        speaker_embedding(exports / "ge2e", np.zeros(16000, "float32"), 16000)


def test_cloned_voice_through_predictors(exports):
    am = exports / "fastspeech2_vc"
    m = spe.read_manifest(am)
    assert [i["name"] for i in m["graphs"][0]["inputs"]] == ["text", "spk_emb"]
    # two spectrally different signals (GE2E's front end normalises the volume, so two draws
    # of the same white noise give nearly the same embedding): white and low-passed noise
    noise = np.random.default_rng(1).standard_normal(24000).astype("float32") * 0.1
    low = np.convolve(noise, np.ones(16, "float32") / 4, mode="same").astype("float32")
    e1, e2 = (speaker_embedding(exports / "ge2e", x, 16000) for x in (noise, low))
    ids = np.array([3, 5, 7, 9, 11], np.int64)
    mel1 = spe.ExportedModel(am).run(ids, e1)[0]
    mel2 = spe.ExportedModel(am).run(ids, e2)[0]
    # the speaker embedding conditions the output (durations too: lengths may differ)
    assert mel1.shape != mel2.shape or np.abs(mel1 - mel2).max() > 1e-3
    with paddle.no_grad():  # upstream FastSpeech2Inference(text, spk_emb=...)
        ref = (
            spe.DygraphModel(am)
            .built.graphs[0]
            .layer.inner(paddle.to_tensor(ids), spk_emb=paddle.to_tensor(e1))
            .numpy()
        )
    assert np.abs(mel1 - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())
    wav, sr = synthesize(am, exports / "mb_melgan", phones="3 5 7 9 11", spk_emb=e1)
    assert sr == 24000 and len(wav) == mel1.shape[0] * 300
    with pytest.raises(spe.ExportError, match="voice-cloning model"):
        synthesize(am, exports / "mb_melgan", phones="3 5 7")
