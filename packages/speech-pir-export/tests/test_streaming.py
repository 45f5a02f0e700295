"""Streaming in infer: chunks in, partial results out, the same final result.

* FastSpeech2 with the CNN decoder (csmsc/tts3 cnndecoder recipe): the encoder once, the
  decoder + postnet graphs on blocks with the graphs' own context on each side; the
  concatenated chunks equal the whole utterance decoded at once (1e-4 relative).
* U2: a partial CTC hypothesis after every encoder chunk; the final ids are those of the
  non-streaming call, and the last partial is the greedy CTC of the whole utterance.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
from conftest import ensure_export

import speech_pir_export as spe
from speech_pir_export.cli import main
from speech_pir_export.infer import features, synthesize, u2_decode, u2_encode
from speech_pir_export.registry.tts import generate_streaming


@pytest.fixture(scope="module")
def exports(export_root):
    ensure_export(export_root, "fastspeech2_streaming")
    for name in ("hifigan", "u2"):
        ensure_export(export_root, name)
    return export_root


def test_fastspeech2_streaming_chunks_equal_the_whole(exports):
    exp = spe.ExportedModel(exports / "fastspeech2_streaming")
    assert exp.meta["streaming"]["context_frames"] > 0
    phones = "3 5 7 9 11 13 15 17 19 21"
    whole = generate_streaming(exp, phones=phones, block=10**6)  # one block: no streaming
    chunks = []
    streamed = generate_streaming(exp, phones=phones, block=4, on_chunk=chunks.append)
    assert len(chunks) >= 3 and whole.shape[0] > 8
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() <= 1e-4 * max(1.0, np.abs(whole).max())
    # the same model through infer's text-to-wave path
    wav, sr = synthesize(exports / "fastspeech2_streaming", exports / "hifigan", phones=phones)
    assert len(wav) == whole.shape[0] * 300 and np.isfinite(wav).all()


def test_u2_partial_results_then_the_same_final(exports, tmp_path, capfd):
    wav = np.random.default_rng(0).standard_normal(16000 * 2).astype("float32") * 0.1
    out = exports / "u2"
    exp = spe.ExportedModel(out)
    feats = features(exp.manifest, wav, 16000)
    partials = []
    streamed = u2_decode(exp, feats, beam=4, on_partial=lambda ids, f: partials.append((ids, f)))
    assert streamed == u2_decode(exp, feats, beam=4)
    assert len(partials) == 3  # one per chunk of 16 encoder frames (64 input frames)
    assert [f for _, f in partials] == sorted(f for _, f in partials)
    best = exp.run(u2_encode(exp, feats), graph="ctc_activation")[0][0].argmax(-1)
    greedy = [int(t) for i, t in enumerate(best) if t != 0 and (i == 0 or t != best[i - 1])]
    assert partials[-1][0] == greedy

    path = tmp_path / "a.wav"
    soundfile.write(path, wav, 16000, subtype="PCM_16")
    capfd.readouterr()
    assert main(["infer", str(out), "--wav", str(path), "--stream"]) == 0
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    *partial_lines, final = lines
    assert len(partial_lines) == 3 and all("partial" in p for p in partial_lines)
    assert "text" in final and isinstance(final["token_ids"], list)
