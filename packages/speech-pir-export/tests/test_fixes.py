"""Each fix: the root cause is present in this Paddle (the test fails if Paddle changes), and
the PaddleSpeech code path it breaks works with the fix."""

import numpy as np
import paddle
import pytest

import speech_pir_export  # noqa: F401  (installs the fixes)
from speech_pir_export import fixes


def test_every_fix_documents_its_root_cause():
    names = [f.name for f in fixes.REGISTRY]
    assert len(names) == len(set(names))
    for f in fixes.REGISTRY:
        assert len(f.root_cause) > 40 and len(f.remedy) > 20, f.name


def test_root_cause_keyword_only_conv_args():
    with pytest.raises(TypeError):
        paddle.nn.Conv2D(1, 2, 3, 1, 0, 1, 1, "zeros", None, None, "NCHW")


def test_align_layers_build():
    from paddlespeech.s2t.modules import align

    conv = align.Conv2D(1, 2, 3, 1, 0, 1, 1, "zeros", None, None, "NCHW")
    assert list(conv.weight.shape) == [2, 1, 3, 3]
    ln = align.LayerNorm(8, 1e-5)
    assert ln._epsilon == 1e-5
    x = paddle.randn([1, 4, 10])
    assert list(align.Conv1D(4, 6, 3, padding=1)(x).shape) == [1, 6, 10]


def test_root_cause_softmax_axis_and_fix():
    x = paddle.randn([2, 5])
    with pytest.raises(TypeError):
        paddle.softmax(x, axis=-1)
    from paddlespeech.s2t.modules import attention

    got = attention.paddle.softmax(x, axis=-1)
    np.testing.assert_allclose(got.numpy(), paddle.nn.functional.softmax(x, -1).numpy())
    assert attention.paddle.__class__.__name__ == "_PaddleWithLegacySoftmax"


def test_value_repeat_varargs_under_to_static():
    class Rep(paddle.nn.Layer):
        def forward(self, x):
            return x.repeat(3, 1, 1)

    x = paddle.randn([1, 4, 2])
    ref = Rep()(x).numpy()
    static = paddle.jit.to_static(
        Rep(), input_spec=[paddle.static.InputSpec([1, -1, 2])], full_graph=True
    )
    np.testing.assert_allclose(static(x).numpy(), ref)
    assert ref.shape == (3, 4, 2)


def test_ctc_softmax_keeps_no_state():
    from paddlespeech.s2t.modules.ctc import CTCDecoder

    ctc = CTCDecoder(odim=7, enc_n_units=4, blank_id=0, dropout_rate=0.0)
    probs = ctc.softmax(paddle.randn([1, 3, 4]))
    assert list(probs.shape) == [1, 3, 7]
    assert "probs" not in ctc._buffers and not hasattr(ctc, "probs")


def test_kws_model_tuple():
    from paddlespeech.kws.models.mdtc import MDTC, KWSModel

    model = KWSModel(MDTC(1, 2, 8, 8, 3, causal=True), 1)
    out = model(paddle.randn([1, 20, 8]))
    assert list(out.shape) == [1, 20, 1]


def test_no_runtime_pip_install(monkeypatch):
    calls = []
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    from paddlespeech.s2t.utils import dynamic_pip_install

    with pytest.warns(UserWarning, match="skipped PaddleSpeech's runtime"):
        assert dynamic_pip_install.install("paddlespeech_ctcdecoders") is None
    assert not calls


def test_relpos_extend_pe_in_static_mode():
    from paddlespeech.t2s.modules.transformer.embedding import RelPositionalEncoding

    class Enc(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.pos = RelPositionalEncoding(8, 0.0)

        def forward(self, x):
            return self.pos(x)[1]

    enc = Enc()
    enc.eval()
    static = paddle.jit.to_static(
        enc, input_spec=[paddle.static.InputSpec([1, -1, 8])], full_graph=True
    )
    x = paddle.randn([1, 6, 8])
    out = static(x)
    assert list(out.shape)[-1] == 8


def test_all_fixes_apply():
    rows = fixes.import_all_targets()
    by = {r["name"]: r for r in rows}
    for name in (
        "no-runtime-pip-install",
        "align-keyword-only-args",
        "softmax-axis",
        "attention-equal-rank-branches",
        "pir-value-repeat-varargs",
        "ctc-softmax-no-self-state",
        "relpos-extend-pe-static",
        "kws-model-tuple",
    ):
        assert by[name]["applied"], (name, by[name]["error"])


def test_no_log_files_in_working_directory(tmp_path):
    import subprocess
    import sys

    code = (
        "import speech_pir_export, paddlespeech.s2t.modules.ctc; "
        "from loguru import logger; print('ADD=' + type(logger.add).__name__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert not (tmp_path / "exp").exists()  # upstream writes exp/log/*.log here
    assert "ADD=method" in proc.stdout  # loguru's own add restored (a bound method)


def test_root_cause_masked_fill_under_to_static_and_fix():
    from paddlespeech.s2t import masked_fill as upstream
    from paddlespeech.s2t.modules import time_reduction

    def make(fn):
        def f(x, m):
            return fn(x, m.equal(0), 0.0)

        return f

    x = paddle.randn([1, 4, 6])
    m = paddle.to_tensor(np.array([[[1, 1, 1, 0, 0, 1]]], "int64"))
    spec = [
        paddle.static.InputSpec([1, 4, -1], "float32"),
        paddle.static.InputSpec([1, 1, -1], "int64"),
    ]
    with pytest.raises(TypeError):  # Value.__bool__ inside max() of broadcast_shape
        paddle.jit.to_static(make(upstream), input_spec=spec, full_graph=True)(x, m)
    fixed = make(time_reduction.masked_fill)
    np.testing.assert_array_equal(fixed(x, m).numpy(), make(upstream)(x, m).numpy())
    static = paddle.jit.to_static(fixed, input_spec=spec, full_graph=True)
    np.testing.assert_array_equal(static(x, m).numpy(), fixed(x, m).numpy())
