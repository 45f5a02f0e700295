"""The fixes found on trained models (N9-N18), each shown necessary by removing it, and the
verification that real models need: realistic input shapes, integer ranges read from the
graph, a tolerance that follows the source runtime's own spread, crashes in child processes,
PyTorch models converted with dynamic axes and checked at two sequence lengths."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import real_graphs
from harness import ATOL, RTOL, check_onnx, check_torch

from x2paddle_compat import ConversionError, UnsupportedOpsError, without_fix

CASES = [
    # (graph, fix removed, what happens without it: an exception type and message, or
    # "wrong" for a conversion that runs and gives a different answer)
    ("paddle2onnx_names", "onnx-identifier-names", (ConversionError, "SyntaxError|invalid")),
    ("conv_no_kernel_shape", "onnx-conv-kernel-shape", (ConversionError, "")),
    ("flatten_two_unknown", "onnx-flatten-dynamic", "wrong"),
    ("constant_of_shape", "onnx-constant-of-shape", "wrong"),
    ("constant_of_runtime_shape", "onnx-constant-of-shape", "wrong"),
    ("reflect_pad_2d", "onnx-pad-low-rank", (ConversionError, "dimension|3, 4, 5")),
    ("slice_to_runtime_length", "onnx-slice-tensor-bounds", "wrong"),
    ("clip_to_infinity", "emit-non-finite-constants", (ConversionError, "double|str")),
    ("lstm_computed_states", "onnx-rnn-state-shape", (ConversionError, "dynamic shape|-1")),
    ("prelu_nhwc_slope", "onnx-prelu-broadcast-slope", (ConversionError, "PRelu|reshape")),
    ("prelu_nhwc_slope_symbolic", "onnx-prelu-broadcast-slope", (ConversionError, "reshape")),
    ("prelu_nchw_slope", "onnx-prelu-broadcast-slope", (ConversionError, "reshape")),
    ("prelu_computed_slope", "onnx-prelu-broadcast-slope", (ConversionError, "Reshape")),
]


@pytest.mark.parametrize("graph,fix_id,without", CASES, ids=[c[0] for c in CASES])
def test_real_model_fix(graph, fix_id, without, tmp_path):
    model = getattr(real_graphs, graph)()
    with without_fix(fix_id):
        if without == "wrong":  # converts, but a runtime fails or differs: never ok
            report = check_onnx(model, tmp_path, predictors=False, name="without")
            assert not report.ok, report.table()
        else:
            exc_type, match = without
            with pytest.raises(exc_type, match=match):
                check_onnx(model, tmp_path, predictors=False, name="without")
    report = check_onnx(model, tmp_path, predictors=False, name="with")
    assert report.ok, report.table()


@pytest.mark.parametrize(
    "slope_shape,run_shape", [([1, 1, 3], [2, 4, 5, 3]), ([1, 3, 1, 1], [2, 3, 4, 5])]
)
def test_prelu_slope_on_input_of_unknown_rank(slope_shape, run_shape, tmp_path):
    """A PRelu slope that broadcasts against a value of unknown rank: X2Paddle reshaped the
    slope to its first dimension (1); now relu(x) - slope * relu(-x), broadcast at run time."""
    from x2paddle_compat import convert_onnx, sources
    from x2paddle_compat.verify import verify

    path = tmp_path / "prelu.onnx"
    onnx.save(real_graphs.prelu_unknown_rank(slope_shape), path)
    with without_fix("onnx-prelu-broadcast-slope"):
        with pytest.raises(ConversionError, match="reshape"):
            convert_onnx(path, tmp_path / "without")
    out = convert_onnx(path, tmp_path / "with")
    x = np.random.default_rng(3).standard_normal((2, 60)).astype(np.float32)
    inputs = {"x": x, "shape": np.array(run_shape, np.int64)}
    refs = sources.run_onnx(path, inputs)
    assert (refs[0] < 0).any() and (refs[0] > 0).any()  # both sides of the PRelu exercised
    report = verify(out, inputs, refs, predictors=False)
    assert report.ok, report.table()


@pytest.mark.parametrize("graph", ["lstm_streaming", "gru_streaming"])
def test_rnn_streaming_states(graph, tmp_path):
    """Consumed Y_h / Y_c and a batch-1 initial state against an input whose batch the
    emitted program cannot see (the Silero VAD sequence model); checked at 6 steps."""
    from x2paddle_compat import convert_onnx, sources
    from x2paddle_compat.verify import verify

    path = tmp_path / "rnn.onnx"
    onnx.save(getattr(real_graphs, graph)(), path)
    inputs = sources.onnx_inputs(path, {"x": [6, 3]})
    refs = sources.run_onnx(path, inputs)
    with without_fix("onnx-lstm-states"):
        with pytest.raises(ConversionError):
            convert_onnx(path, tmp_path / "without")
    out = convert_onnx(path, tmp_path / "with")
    report = verify(out, inputs, refs, atol=ATOL, rtol=RTOL, predictors=False)
    assert report.ok, report.table()


def test_if_on_shape_converts_once_shapes_are_given(tmp_path):
    """An If on a shape test: unsupported while the shape is unknown; with -isd the shapes
    reach the static folding pass (onnx-input-shape-dict), which resolves the branch."""
    from x2paddle_compat import convert_onnx, sources
    from x2paddle_compat.verify import verify

    path = tmp_path / "if.onnx"
    onnx.save(real_graphs.if_on_shape(("n", 3, "t")), path)
    # (onnx-control-flow would select between the branches at run time: removed here)
    with without_fix("onnx-control-flow"), pytest.raises(UnsupportedOpsError, match="If"):
        convert_onnx(path, tmp_path / "dynamic")
    shapes = {"x": [2, 3, 5]}
    with without_fix("onnx-input-shape-dict"):
        with pytest.raises(ConversionError):
            convert_onnx(path, tmp_path / "without", input_shape_dict=shapes)
    out = convert_onnx(path, tmp_path / "with", input_shape_dict=shapes)
    inputs = sources.onnx_inputs(path, shapes)
    report = verify(out, inputs, sources.run_onnx(path, inputs), predictors=False)
    assert report.ok, report.table()


def test_if_on_a_frozen_input_value(tmp_path):
    """An If on an input's value (Silero VAD's sample rate): with the input frozen
    (input_values) the branch is known; onnx's reference evaluator resolves it."""
    from x2paddle_compat import convert_onnx, sources
    from x2paddle_compat.verify import verify

    path = tmp_path / "ifv.onnx"
    onnx.save(real_graphs.if_on_input_value(), path)
    with without_fix("onnx-if-known-condition", "onnx-control-flow"):
        with pytest.raises(UnsupportedOpsError, match="If"):
            convert_onnx(path, tmp_path / "without", input_values={"mode": 1})
    for mode in (1, 0):
        out = convert_onnx(path, tmp_path / f"mode{mode}", input_values={"mode": mode})
        x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
        refs = sources.run_onnx(path, {"x": x, "mode": np.array(mode, np.int64)})
        report = verify(out, {"x": x}, refs, predictors=False)
        assert report.ok, report.table()


def test_input_shape_dict_as_dict(tmp_path):
    """-isd as --help shows it: X2Paddle called eval() on the dict and failed."""
    from x2paddle_compat import convert_onnx, sources
    from x2paddle_compat.verify import verify

    path = tmp_path / "dyn.onnx"
    onnx.save(real_graphs.dynamic_image(), path)
    shapes = {"x": [1, 3, 20, 12]}
    with without_fix("onnx-input-shape-dict"):
        with pytest.raises(ConversionError, match="eval|must be str"):
            convert_onnx(path, tmp_path / "without", input_shape_dict=shapes)
    out = convert_onnx(path, tmp_path / "with", input_shape_dict=shapes)
    inputs = sources.onnx_inputs(path, shapes)
    assert inputs["x"].shape == (1, 3, 20, 12)
    report = verify(out, inputs, sources.run_onnx(path, inputs), predictors=False)
    assert report.ok, report.table()


def test_embedding_padding_idx_keeps_trained_row(tmp_path):
    """torch returns the trained row of padding_idx; Paddle's padding_idx returns zeros."""
    import torch

    class Embed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4, padding_idx=0)
            with torch.no_grad():  # a trained model: the padding row is not zero
                self.emb.weight.copy_(
                    torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
                )

        def forward(self, ids):
            return self.emb(ids) * 2.0

    module = Embed().eval()
    ids = [torch.tensor([[3, 5, 0, 0]])]
    with without_fix("aten-embedding-padding-idx"):
        assert not check_torch(module, ids, tmp_path, predictors=False, name="without").ok
    report = check_torch(module, ids, tmp_path, predictors=False, name="with")
    assert report.ok, report.table()


# ---------------------------------------------------------------- verification inputs


def test_default_shapes_and_shared_dim_names():
    from x2paddle_compat.sources import DEFAULT_IMAGE_SIDE, DEFAULT_TOKENS, default_shape

    named: dict = {}
    assert default_shape(["n", 3, "h", "w"], np.float32, named) == [
        1,
        3,
        DEFAULT_IMAGE_SIDE,
        DEFAULT_IMAGE_SIDE,
    ]
    assert default_shape(["batch", "seq"], np.int64, named) == [1, DEFAULT_TOKENS]
    # a name seen before keeps its size in every input (BERT's ids and mask)
    named["seq"] = 7
    assert default_shape(["batch", "seq"], np.int64, named) == [1, 7]
    assert default_shape([None, 48, None], np.float32, {}) == [1, 48, 16]


def test_integer_inputs_drawn_from_their_valid_range(tmp_path):
    """Token ids below the embedding size, token types below 2, a sample rate equal to the
    constant it is compared with, masks 0/1 (0-3 crashed the source runtime)."""
    from onnx import TensorProto, helper

    from x2paddle_compat import sources

    def vi(name, shape, t=TensorProto.INT64):
        return helper.make_tensor_value_info(name, t, shape)

    nodes = [
        helper.make_node("Gather", ["words", "ids"], ["e"]),
        helper.make_node("Cast", ["types"], ["t64"], to=TensorProto.INT64),
        helper.make_node("Gather", ["kinds", "t64"], ["k"]),
        helper.make_node("Add", ["e", "k"], ["y"]),
        helper.make_node("Equal", ["sr", "rate"], ["is16k"]),
    ]
    inits = [
        real_graphs._w("words", [30, 4]),
        real_graphs._w("kinds", [2, 4]),
        real_graphs._init("rate", np.array(16000, np.int64)),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            vi("ids", ["b", "s"]),
            vi("types", ["b", "s"], TensorProto.INT32),
            vi("sr", []),
            vi("attention_mask", ["b", "s"]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("is16k", TensorProto.BOOL, []),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "ints.onnx"
    onnx.save(model, path)
    inputs = sources.onnx_inputs(path, seed=5)
    assert inputs["ids"].shape == inputs["types"].shape == inputs["attention_mask"].shape
    assert inputs["ids"].max() < 30 and inputs["ids"].max() > 3
    assert set(np.unique(inputs["types"])) <= {0, 1}
    assert int(inputs["sr"]) == 16000
    assert set(np.unique(inputs["attention_mask"])) <= {0, 1}
    sources.run_onnx(path, inputs)  # the source runtime accepts them


def test_tolerance_follows_source_spread():
    from x2paddle_compat.verify import compare, spread

    ref = np.full((4,), 100.0)
    out = ref + 3e-3
    assert not compare([out], [ref], 1e-5, 1e-5).ok  # 3e-3 > 1e-5 + 1e-3
    same = spread([ref], [ref + 1e-3])
    assert same == pytest.approx([1e-3])
    assert compare([out], [ref], 1e-5, 1e-5, same).ok  # within 4x the runtime's own spread
    assert not compare([ref + 1.0], [ref], 1e-5, 1e-5, same).ok


def test_huge_declared_input_refused_before_allocation(tmp_path):
    from onnx import helper

    from x2paddle_compat import InvalidModelError, sources

    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    big = [100000, 100000, 100]
    model = real_graphs._model(nodes, [real_graphs._vi("x", big)], [real_graphs._vi("y", big)])
    path = tmp_path / "huge.onnx"
    onnx.save(model, path)
    with pytest.raises(InvalidModelError, match="GiB"):
        sources.onnx_inputs(path)


def test_shape_folding_crash_is_reported_and_conversion_goes_on(tmp_path, capsys):
    """onnxruntime's optimizer runs in a child process: its segfault is a ConversionWarning
    (the same kind every fix issues), shown by the CLI as one ``warning:`` line."""
    from x2paddle_compat import ConversionWarning, convert_onnx
    from x2paddle_compat.cli import main
    from x2paddle_compat.fixes import onnx_fixes

    crasher = tmp_path / "crash.py"
    crasher.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    path = tmp_path / "m.onnx"
    onnx.save(real_graphs.conv_no_kernel_shape(), path)
    onnx_fixes.FOLD_WORKER["path"] = str(crasher)
    try:
        with pytest.warns(
            ConversionWarning, match=r"onnxruntime crashed \(signal 11\) while folding"
        ):
            convert_onnx(path, tmp_path / "out")
        capsys.readouterr()
        code = main(["-f", "onnx", "-m", str(path), "-s", str(tmp_path / "out_cli")])
    finally:
        onnx_fixes.FOLD_WORKER["path"] = None
    assert (tmp_path / "out" / "inference_model" / "model.json").exists()
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning: onnxruntime crashed (signal 11) while folding shapes" in err


def test_source_runtime_failure_is_its_own_error(tmp_path):
    from x2paddle_compat import SourceRuntimeError, sources

    path = tmp_path / "m.onnx"
    onnx.save(real_graphs.conv_no_kernel_shape(), path)
    with pytest.raises(SourceRuntimeError, match="onnxruntime failed on the verification"):
        sources.run_onnx_isolated(path, {"x": np.zeros((1, 5, 8, 8), np.float32)})


def test_torch_dynamic_axes_two_sequence_lengths(tmp_path):
    """A BERT converted with dynamic axes runs at any sequence length: checked at 7 and 19
    against torch, padded positions included (they read the padding row)."""
    import torch
    from transformers import BertConfig, BertModel

    from x2paddle_compat import convert_torch
    from x2paddle_compat.verify import compare, run_predictor

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    bert = BertModel(config).eval()

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )[0]

    module = Wrap().eval()

    def batch(length):
        ids = torch.randint(1, 60, (2, length))
        mask = torch.ones(2, length, dtype=torch.int64)
        ids[1, length // 2 :] = 0
        mask[1, length // 2 :] = 0
        return ids, mask, torch.zeros_like(ids)

    names = ["input_ids", "attention_mask", "token_type_ids"]
    out = convert_torch(
        module,
        list(batch(7)),
        tmp_path / "bert",
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names},
        input_names=names,
    )
    for length in (7, 19):
        tensors = batch(length)
        with torch.no_grad():
            ref = module(*tensors).numpy()
        got = run_predictor(out, {n: t.numpy() for n, t in zip(names, tensors)}, use_onednn=False)
        diff = compare(got, [ref], ATOL, RTOL)
        assert diff.ok, (length, diff)


def test_warnings_before_a_failed_conversion_are_named_in_its_error():
    """What the fixes said (a skipped shape folding, say) is part of the error when X2Paddle
    then fails, and is not issued again as a separate warning."""
    import warnings

    from x2paddle_compat import ConversionError, ConversionWarning
    from x2paddle_compat.convert import _run

    def failing(disable_feedback):
        warnings.warn(
            ConversionWarning("onnxruntime failed (exit 1) while folding shapes"), stacklevel=2
        )
        raise AssertionError("rank of tensor 'x' unknown")

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ConversionError) as info:
            _run(failing, source="m.onnx")
    assert "AssertionError: rank of tensor 'x' unknown" in str(info.value)
    assert "(onnxruntime failed (exit 1) while folding shapes)" in str(info.value)
    assert not [w for w in seen if issubclass(w.category, ConversionWarning)]
