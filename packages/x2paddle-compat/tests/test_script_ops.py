"""Scripted (torch.jit.script) modules: the TorchScript operators that tracing resolves away
(N21), each on a tiny module checked against torch, refused without the fix; and scripted
control flow (prim::If on data, prim::Loop) checked for both branch outcomes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from x2paddle_compat import UnsupportedOpsError, convert_torch, without_fix
from x2paddle_compat.verify import verify


class Conv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, padding=1, stride=2)

    def forward(self, x):
        return torch.relu(self.conv(x))


class Atan2(nn.Module):
    def forward(self, x, y):
        return torch.atan2(x, y)


class Cell(nn.Module):
    """nn.LSTMCell's scripted forward: aten::lstm_cell, prim::TupleIndex, aten::Bool."""

    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(4, 8)

    def forward(self, x, h, c):
        h2, c2 = self.cell(x, (h, c))
        return h2 + c2


class DeviceDtype(nn.Module):
    def forward(self, x):
        z = torch.ones(x.shape[0], 5, device=x.device, dtype=x.dtype)
        return x + z.to(x.device) * 2.0


class Branches(nn.Module):
    def forward(self, x):
        if bool(x.sum() > 0):
            y = x * 2.0
        else:
            y = x - 1.0
        for i in range(3):
            y = y * 0.5 + float(i)
        return y


CASES = {
    "conv1d": (Conv1d, [(1, 3, 16)], "aten::conv1d"),
    "atan2": (Atan2, [(2, 5), (2, 5)], "aten::atan2"),
    "lstm_cell": (Cell, [(2, 4), (2, 8), (2, 8)], "aten::lstm_cell"),
    "device_dtype": (DeviceDtype, [(2, 5)], "prim::device"),
}


def _check(module, scripted, inputs, out):
    with torch.no_grad():
        refs = [module(*inputs).numpy()]
    feed = {f"x{i}": t.numpy() for i, t in enumerate(inputs)}
    report = verify(out, feed, refs, atol=1e-5, rtol=1e-5, predictors=False)
    assert report.ok, report.table()


@pytest.mark.parametrize("case", list(CASES))
def test_scripted_op(case, tmp_path):
    torch.manual_seed(0)
    cls, shapes, op = CASES[case]
    module = cls().eval()
    scripted = torch.jit.script(module)
    inputs = [torch.randn(*s) for s in shapes]
    with without_fix("aten-script-ops"):
        with pytest.raises(UnsupportedOpsError, match=op):
            convert_torch(scripted, inputs, tmp_path / "without", jit_type="script")
    out = convert_torch(scripted, inputs, tmp_path / "with", jit_type="script")
    _check(module, scripted, inputs, out)


def test_scripted_control_flow_both_outcomes(tmp_path):
    module = Branches().eval()
    scripted = torch.jit.script(module)
    x = torch.rand(2, 3) + 0.1
    with without_fix("aten-script-ops"):  # aten::Bool refused; the loop was wrong (N21)
        with pytest.raises(UnsupportedOpsError, match="aten::Bool"):
            convert_torch(scripted, [x], tmp_path / "without", jit_type="script")
    out = convert_torch(scripted, [x], tmp_path / "out", jit_type="script")
    for sign in (1.0, -1.0):
        _check(module, scripted, [x * sign], out)
    assert not np.allclose(module(x).numpy(), -module(-x).numpy())  # two different branches


class RateBranch(nn.Module):
    """Silero VAD's signature: a tensor and a plain ``int`` sample rate it branches on."""

    def forward(self, x, sr: int):
        if sr != 16000:
            x = x * 0.5
        return torch.tanh(x * float(sr) / 16000.0)


@pytest.mark.parametrize("sr", [16000, 8000])
def test_scripted_int_argument_frozen(sr, tmp_path):
    """N26: an int forward argument is frozen to its example value (X2Paddle skipped
    non-tensor graph inputs and failed with KeyError on the first use)."""
    from x2paddle_compat import ConversionError, ConversionWarning

    module = RateBranch().eval()
    scripted = torch.jit.script(module)
    x = torch.randn(1, 12)
    with without_fix("script-scalar-inputs"):
        with pytest.raises(ConversionError, match="KeyError"):
            convert_torch(scripted, [x, sr], tmp_path / "without", jit_type="script")
    with pytest.warns(ConversionWarning, match=rf"frozen to their example values: sr={sr};"):
        out = convert_torch(scripted, [x, sr], tmp_path / "with", jit_type="script")
    with torch.no_grad():
        refs = [module(x, sr).numpy()]
    # the branch the value picks: x at 16 kHz, x / 4 at 8 kHz
    np.testing.assert_allclose(refs[0], np.tanh(x.numpy() * (1.0 if sr == 16000 else 0.25)), 1e-6)
    report = verify(out, {"x0": x.numpy()}, refs, atol=1e-5, rtol=1e-5, predictors=False)
    assert report.ok, report.table()


class Streaming(nn.Module):
    """State kept across calls in a module attribute (Silero VAD's ``self._state``)."""

    def __init__(self):
        super().__init__()
        self.state = torch.zeros(1, 4)

    def forward(self, x):
        self.state = self.state * 0.5 + x
        return self.state


def test_scripted_module_state_refused_by_name(tmp_path):
    """N26: prim::SetAttr on the module is named in UnsupportedOpsError (X2Paddle: KeyError)."""
    from x2paddle_compat import ConversionError

    scripted = torch.jit.script(Streaming().eval())
    x = torch.randn(1, 4)
    with without_fix("script-scalar-inputs"):
        with pytest.raises(ConversionError, match="KeyError"):
            convert_torch(scripted, [x], tmp_path / "without", jit_type="script")
    with pytest.raises(UnsupportedOpsError, match=r"prim::SetAttr .*self\.state"):
        convert_torch(scripted, [x], tmp_path / "with", jit_type="script")
    assert not (tmp_path / "with").exists()
