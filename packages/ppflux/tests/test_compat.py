"""The MKL dispatch switch for AMD CPUs: set only when asked for and not set already."""

from __future__ import annotations

import pytest

from ppflux import _compat


@pytest.mark.parametrize(
    "amd, env, expected",
    [
        (True, {}, "5"),
        (True, {"MKL_DEBUG_CPU_TYPE": "2"}, "2"),  # the user's own value wins
        (True, {"PPFLUX_MKL_AMD_FIX": "0"}, None),  # opt-out
        (False, {}, None),  # Intel / no AVX2: untouched
    ],
)
def test_mkl_switch(monkeypatch, amd, env, expected):
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE", raising=False)
    monkeypatch.delenv("PPFLUX_MKL_AMD_FIX", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(_compat, "_cpu_is_amd_with_avx2", lambda: amd)
    changed = _compat.use_fast_mkl_path_on_amd()
    assert changed == (expected == "5" and "MKL_DEBUG_CPU_TYPE" not in env)
    assert _compat.os.environ.get("MKL_DEBUG_CPU_TYPE") == expected
