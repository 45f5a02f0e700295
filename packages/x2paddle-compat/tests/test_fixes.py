"""Each registered fix: the conversion works with it, and fails (or is wrong) without it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx_graphs
import pytest
import torch_models
from harness import check_onnx, check_torch, export_onnx

import x2paddle_compat as xc
from x2paddle_compat import ConversionError, UnsupportedOpsError, without_fix

# every fix is named in this file by a test that removes it (checked below)
TESTED_FIXES = set()


def _tested(*ids):
    TESTED_FIXES.update(ids)
    return ids


def test_registry_metadata():
    for f in xc.FIXES.values():
        # a fix of a converter whose framework is not installed stays unapplied (TF here)
        assert f.applied or (f.unavailable and "tensorflow" in f.unavailable), f.id
        # R1-R21: root causes of the research note; N1..: found while building this package
        assert f.root_cause[0] in "RN" and int(f.root_cause[1:]) >= 1
        assert f.summary
    needed = {f"R{i}" for i in [2, 3, 4, 7, 9, 10, 15, 16, 17, 18, 19, 21]}
    assert needed <= {f.root_cause for f in xc.FIXES.values()}


def test_r1_undeclared_dependencies_declared():
    from importlib.metadata import requires

    reqs = " ".join(requires("x2paddle-compat"))
    for name in ("x2paddle==1.6.0", "six", "requests", "sympy"):
        assert name in reqs
    import x2paddle.convert  # noqa: F401  (imports six)
    import x2paddle.utils  # noqa: F401  (imports requests)


def test_r2_onnx_mapping():
    import onnx

    with without_fix(*_tested("onnx-mapping")):
        with pytest.raises(ModuleNotFoundError):
            import onnx.mapping  # noqa: F401
        with pytest.raises(AttributeError):
            _ = onnx.version.version  # what x2paddle's version check reads
    import onnx.mapping

    assert onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[1] == np.dtype("float32")
    assert onnx.version.version == onnx.__version__.split("+")[0]


def test_r3_caffe_pb2_original_fails_regenerated_works():
    _tested("caffe-pb2")
    code = "import x2paddle.decoder.caffe_pb2"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "Descriptors cannot be created directly" in proc.stderr
    from google.protobuf.internal import api_implementation
    from x2paddle.decoder import caffe_pb2

    assert api_implementation.Type() != "python"  # fast backend kept
    net = caffe_pb2.NetParameter(name="n")
    net.layer.add(name="c", type="Convolution").convolution_param.num_output = 3
    again = caffe_pb2.NetParameter.FromString(net.SerializeToString())
    assert again.layer[0].convolution_param.num_output == 3


def test_r10_export_error_is_raised_not_exit0(tmp_path):
    """X2Paddle's dygraph2static prints a ValueError and calls exit(0)."""
    from x2paddle.core.program import PaddleGraph

    code = tmp_path / "x2paddle_code.py"
    code.write_text(
        "import paddle\n\nclass Broken(paddle.nn.Layer):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "    def forward(self, x0):\n"
        "        raise ValueError('emitted code is broken')\n"
    )
    import paddle

    paddle.save({}, str(tmp_path / "model.pdparams"))
    graph = PaddleGraph(source_type="onnx")
    graph.set_name("Broken")
    graph.inputs = ["x0"]
    with without_fix(*_tested("export-exit0")):
        with pytest.raises(SystemExit) as info:
            graph.dygraph2static(str(tmp_path), [[1, 2]], ["float32"])
        assert info.value.code == 0  # the defect: success status
    with pytest.raises(ConversionError, match="emitted code is broken"):
        graph.dygraph2static(str(tmp_path), [[1, 2]], ["float32"])
    sys.modules.pop("x2paddle_code", None)


def test_unsupported_ops_listed_together(tmp_path):
    model = onnx_graphs.unsupported_ops()
    with without_fix(*_tested("unsupported-ops")):
        with pytest.raises(ConversionError, match="Model is not supported yet"):
            check_onnx(model, tmp_path, name="a")
    with pytest.raises(UnsupportedOpsError) as info:
        check_onnx(model, tmp_path, name="b")
    assert info.value.ops == ["Det", "Hardmax"]
    assert not list(tmp_path.glob("*_paddle")), "no half-written output folder"


ONNX_CASES = [
    # (graph, fix removed, what happens without it)
    ("maxpool_dilations", "maxpool-dilations", "dilations"),
    ("maxpool_dilations", "onnx-pass-hook", "dilations"),
    ("reduce_axes_input", "reduce-axes-input", "multi inputs"),
    ("layer_norm_opset17", "onnx-new-ops", "LayerNormalization"),
    ("empty_shape_constant", "onnx-empty-constant", "error"),
    ("resize_scales_only", "resize-scales-only", "wrong"),
    ("int_div", "onnx-int-div", "wrong"),
    ("reduce_runtime_axes", "reduce-runtime-axes", "error"),
    ("group_norm_opset18", "onnx-group-norm", "GroupNormalization"),
    ("group_norm_opset21", "onnx-group-norm", "error"),
]


@pytest.mark.parametrize("graph,fix_id,without", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_onnx_fix(graph, fix_id, without, tmp_path):
    _tested(fix_id)
    model = onnx_graphs.GRAPHS[graph]()
    with without_fix(fix_id):
        try:
            report = check_onnx(model, tmp_path, predictors=False, name="without")
        except ConversionError as exc:
            assert without != "wrong", exc
            if without != "error":
                assert without in str(exc)
        else:
            assert without == "wrong" and not report.ok, report.table()
    report = check_onnx(model, tmp_path, predictors=False, name="with")
    assert report.ok, report.table()


def _torch_case(family, fix_id, tmp_path, exc_type=ConversionError, match=None, onnx_opset=None):
    _tested(fix_id)
    module, inputs = torch_models.build(family)

    def run(name):
        if onnx_opset:
            path = export_onnx(module, inputs, tmp_path / f"{name}.onnx", onnx_opset)
            return check_onnx(path, tmp_path, predictors=False, name=name)
        return check_torch(module, inputs, tmp_path, predictors=False, name=name)

    with without_fix(fix_id):
        if exc_type is None:  # silently wrong without the fix
            report = run("without")
            assert not report.ok, report.table()
        else:
            with pytest.raises(exc_type, match=match):
                run("without")
    report = run("with")
    assert report.ok, report.table()


def test_r16_shared_initializers(tmp_path):
    """Default-initialised layers: the exporter stores identical weights once; with a
    dynamic batch nothing is folded before X2Paddle, whose Conv mapping pops them twice."""
    import torch

    _tested("shared-initializers")
    torch.manual_seed(0)
    module = torch_models.TinyResNet().eval()  # default init: BN 1/0, equal tensors
    inputs = [torch.randn(1, 3, 32, 32)]
    path = export_onnx(module, inputs, tmp_path / "m.onnx", 13, dynamic_batch=True)
    with without_fix("shared-initializers"):
        with pytest.raises(ConversionError, match="not a key"):
            check_onnx(path, tmp_path, predictors=False, name="without")
    report = check_onnx(path, tmp_path, predictors=False, name="with")
    assert report.ok, report.table()


def test_r19_new_aten_ops(tmp_path):
    _torch_case(
        "vit",
        "aten-new-ops",
        tmp_path,
        UnsupportedOpsError,
        "aten::fill_, aten::new_zeros, aten::unbind, aten::unflatten",
    )


def test_r21_sdpa_layout_gqa_scale(tmp_path):
    _torch_case("sdpa_gqa", "sdpa-layout-gqa", tmp_path, None)


def test_r19_trace_check(tmp_path):
    _torch_case(
        "transformer_encoder",
        "trace-check",
        tmp_path,
        ConversionError,
        "Graphs differed|TracingCheckError|trace",
    )


def test_r19_onnx_gru(tmp_path):
    _torch_case("gru", "onnx-gru", tmp_path, UnsupportedOpsError, "GRU", onnx_opset=13)


def test_r19_fold_static_shapes(tmp_path):
    _torch_case(
        "lstm",
        "onnx-fold-static-shapes",
        tmp_path,
        ConversionError,
        "batch size|PreState",
        onnx_opset=13,
    )


def test_r7_gather_int_promotion(tmp_path):
    _torch_case("gather_index", "gather-int-promotion", tmp_path, ConversionError)


def test_r4_int_of_one_element_tensor():
    """X2Paddle emits ``int(t)``; with numpy 2 Paddle's Tensor.__int__ fails for shape [1]."""
    import paddle
    from x2paddle.core.program import PaddleLayer
    from x2paddle.op_mapper.pytorch2paddle import prim2code

    def emitted(fn):
        lines = []
        fn(
            PaddleLayer(0, "prim.int", inputs={"input": "t"}, outputs=["n"]),
            indent=0,
            forward_func=lines,
        )
        return "".join(lines)

    t = paddle.to_tensor([6])
    with without_fix(*_tested("int-numpy2")):
        code = emitted(prim2code.prim_int)
        with pytest.raises(TypeError, match="0-dimensional|only"):
            exec(code, {"paddle": paddle, "t": t})
    scope = {"paddle": paddle, "t": t}
    exec(emitted(prim2code.prim_int), scope)
    assert scope["n"] == 6 and isinstance(scope["n"], int)


def test_r21_transformers5_masking(tmp_path):
    """BertModel (transformers 5, SDPA attention) with a padding attention_mask: the new
    masking utilities index with a list of tensors and combine masks with ``and``."""
    transformers = pytest.importorskip("transformers")
    import torch

    _tested("masking-ops")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    bert = transformers.BertModel(config).eval()

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, ids, mask):
            return self.bert(input_ids=ids, attention_mask=mask).last_hidden_state

    ids = torch.randint(0, 50, (1, 8))
    mask = torch.ones(1, 8, dtype=torch.int64)
    mask[0, 6:] = 0
    module = Wrapped().eval()
    with without_fix("masking-ops"):
        with pytest.raises(ConversionError):
            check_torch(module, [ids, mask], tmp_path, predictors=False, name="without")
    report = check_torch(module, [ids, mask], tmp_path, predictors=False, name="with")
    assert report.ok, report.table()


def test_r21_onnx_gather_nd_indices(tmp_path):
    """BertModel exported to ONNX: the transformers-5 mask gathers with 4-D indices."""
    pytest.importorskip("transformers")
    module, inputs = torch_models.build_transformer("bert", "eager")
    path = export_onnx(module, inputs, tmp_path / "bert.onnx", 17)
    with without_fix("onnx-gather-nd-indices"):
        with pytest.raises(ConversionError, match="0D or 1D"):
            check_onnx(path, tmp_path, predictors=False, name="without")
    report = check_onnx(path, tmp_path, predictors=False, name="with")
    assert report.ok, report.table()


def test_n2_bare_sequential(tmp_path):
    import torch

    module = torch_models.randomize(
        torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2)
        )
    )
    inputs = [torch.randn(1, 3, 8, 8)]
    with without_fix("digit-attr-names"):
        with pytest.raises(ConversionError, match="SyntaxError"):
            check_torch(module, inputs, tmp_path, predictors=False, name="without")
    report = check_torch(module, inputs, tmp_path, predictors=False, name="with")
    assert report.ok, report.table()


def test_every_fix_has_a_removal_test():
    """Static check (works with -k selections): every fix id is removed by a test here."""
    import re
    from pathlib import Path

    source = "".join(p.read_text() for p in Path(__file__).parent.rglob("test_*.py"))
    named = set(re.findall(r'"([a-z0-9]+(?:-[a-z0-9]+)+)"', source))
    untested = set(xc.FIXES) - named
    assert not untested, f"fixes without a test that removes them: {sorted(untested)}"


def test_n6_aten_pad_order(tmp_path):
    """F.pad(x, (2, 0, 1, 0)) padded H by 2 and W by 1 without the fix: wrong output shape."""
    _torch_case("constant_pad", "aten-pad-order", tmp_path, None)


def test_n7_cat_legacy_empty(tmp_path):
    """torch.cat skips (0,)-shaped tensors; paddle.concat rejects them without the fix."""
    _torch_case("legacy_empty_cat", "aten-cat-legacy-empty", tmp_path, ConversionError, "axis")
