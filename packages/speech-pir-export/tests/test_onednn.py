"""oneDNN kept on by deleting only the passes that break a graph.

Paddle 3.3.1's oneDNN predictor fails on U2's streaming encoder graph (``std::exception`` on
its zero-size caches). ``verify`` finds the passes to delete by bisection over the passes the
predictor reports applying, verifies the repaired configuration against dygraph, records it
per graph in export.json, and ``ExportedModel`` uses it. Tolerance as everywhere:
max|dygraph - predictor| <= 1e-4 * max(1, max|dygraph|).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ensure_export

import speech_pir_export as spe
from speech_pir_export import _predictor, exporter


def test_minimal_deletion_finds_exactly_the_culprits():
    passes = [f"pass_{i}" for i in range(23)]
    for culprits in ({"pass_7"}, {"pass_0", "pass_22"}, {"pass_3", "pass_4", "pass_19"}):
        calls = []

        def ok(deleted, culprits=culprits, calls=calls):
            calls.append(list(deleted))
            return culprits <= set(deleted)

        found, checks = _predictor.minimal_deletion(passes, ok)
        assert set(found) == culprits and checks == len(calls)
        if len(culprits) == 1:  # the usual case: far fewer checks than one per pass
            assert checks <= 2 * len(passes).bit_length()


@pytest.fixture(scope="module")
def u2(export_root):
    out = ensure_export(export_root, "u2")
    if not spe.read_manifest(out)["predictor"].get("onednn_checked"):
        spe.verify(out, onednn_check=True, progress=False)
    return out


def test_u2_encoder_runs_with_repaired_onednn(u2):
    manifest = spe.read_manifest(u2)
    graph = "forward_encoder_chunk"
    plain = manifest["verification"]["onednn_on"][graph]
    assert not plain["ok"]  # Paddle 3.3.1's oneDNN as it comes fails on this graph
    # the repaired oneDNN configuration (used or not: the speed choice decides)
    repaired = manifest["verification"]["speed"][graph]["onednn"]
    repair = manifest["verification"]["onednn_repair"][graph]
    assert repaired["onednn"] and repaired["deleted_passes"] == repair["deleted_passes"]
    assert 1 <= len(repaired["deleted_passes"]) <= 3
    passes = _predictor.applied_passes(u2 / graph)
    assert set(repaired["deleted_passes"]) <= set(passes) and len(passes) > 10

    # the repaired configuration, on inputs verification did not use, against dygraph
    exp, dyg = spe.ExportedModel(u2), spe.DygraphModel(u2)
    exp.settings[graph] = _predictor.Settings.from_dict(repaired)
    bg = next(g for g in dyg.built.graphs if g.name == graph)
    feeds = [inp.sample(np.random.default_rng(99)) for inp in bg.inputs]
    ref = exporter._dygraph_outputs(bg.layer, feeds)
    got = exp.run(*feeds, graph=graph)
    assert _predictor.compare(ref, got, 1e-4)["ok"]


def test_kernel_defects_stay_off_with_the_reason(export_root):
    out = ensure_export(export_root, "pwgan")
    manifest = spe.read_manifest(out)
    if not manifest["predictor"].get("onednn_checked"):
        manifest = spe.verify(out, onednn_check=True, progress=False)["manifest"]
    repair = manifest["verification"]["onednn_repair"]["model"]
    assert repair["ok"] is False and "every oneDNN pass deleted" in repair["reason"]
    assert manifest["predictor"]["graphs"]["model"]["onednn"] is False
    assert manifest["predictor"]["verified"]


def test_every_runtime_shape_is_verified_first_chunk_included(export_root):
    """The causal chunk conformer (aishell chunk_conformer's layout): Paddle 3.3.1's oneDNN
    predictor matches dygraph on a later chunk (filled caches) but raises on the first chunk
    (zero-size caches), even with every oneDNN pass deleted. Verification with one shape
    recorded oneDNN for it and ``infer`` then failed; verification on every shape class
    keeps oneDNN off for this graph, and streaming the encoder over real-length input works
    and matches dygraph."""
    out = ensure_export(export_root, "u2", "u2_chunk")
    manifest = spe.verify(out, onednn_check=True, progress=False)["manifest"]
    graph = "forward_encoder_chunk"
    on = manifest["verification"]["onednn_on"][graph]
    assert not on["ok"] and on["failed_case"] == 0 and len(on["cases"]) == 3
    assert on["cases"][1]["ok"] and on["cases"][2]["ok"]  # what a one-shape check saw
    repair = manifest["verification"]["onednn_repair"][graph]
    assert repair["ok"] is False and "every oneDNN pass deleted" in repair["reason"]
    assert manifest["predictor"]["graphs"][graph]["onednn"] is False

    # the first chunk's caches are what breaks oneDNN: the later case alone passes
    _, built = exporter.rebuild(out)
    cases = exporter.verification_cases(next(g for g in built.graphs if g.name == graph))
    assert [c[0][2].shape[2] for c in cases] == [0, 16, 32]  # attention cache frames
    with _predictor.Worker(60) as worker:
        alone = worker.check_cases(out / graph, _predictor.Settings(True), [cases[1]])
        first = worker.check_cases(out / graph, _predictor.Settings(True), [cases[0]])
    assert alone["ok"] and not first["ok"]

    # the recorded configuration streams 100 frames of features like u2_encode does
    from speech_pir_export.registry.asr import u2_encode

    feats = np.random.default_rng(5).standard_normal((1, 100, 80)).astype("float32")
    got = u2_encode(spe.ExportedModel(out), feats)
    ref = u2_encode(spe.DygraphModel(out), feats)
    assert _predictor.compare([ref], [got], 1e-4)["ok"]
