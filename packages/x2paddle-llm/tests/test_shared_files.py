"""The canonical shared files (_errors, _atomic, _paddle) that other packages copy."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from x2paddle_llm import _atomic, _errors, _paddle


def _mask():
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_run_cli_maps_user_errors_os_errors_and_interrupts(capsys):
    def bad(argv):
        raise _errors.UserError("is not a model", "x/config.json")

    assert _errors.run_cli(bad) == 2
    assert capsys.readouterr().err.strip() == "error: x/config.json: is not a model"

    def full(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "out/model.bin")

    assert _errors.run_cli(full) == 2
    assert capsys.readouterr().err.strip() == "error: out/model.bin: no space left on device"

    def ctrl_c(argv):
        raise KeyboardInterrupt

    assert _errors.run_cli(ctrl_c) == 130
    assert _errors.run_cli(lambda argv: 3) == 3
    assert _errors.run_cli(lambda argv: None) == 0

    def bug(argv):
        raise ValueError("a bug")

    with pytest.raises(ValueError):  # bugs keep their traceback
        _errors.run_cli(bug)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must hold a JSON object, found list"),
    ],
)
def test_read_json_object_rejects_bad_content(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(_errors.UserError, match=message) as info:
        _errors.read_json_object(path, "config.json")
    assert info.value.path == str(path)


def test_read_json_object_missing_and_folder(tmp_path):
    with pytest.raises(_errors.UserError, match="does not exist"):
        _errors.read_json_object(tmp_path / "nope.json")
    with pytest.raises(_errors.UserError, match="is a folder"):
        _errors.read_json_object(tmp_path)
    (tmp_path / "ok.json").write_text('{"a": 1}')
    assert _errors.read_json_object(tmp_path / "ok.json") == {"a": 1}


def test_atomic_dir_refuses_non_empty_and_keeps_user_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    with pytest.raises(_atomic.OutputExistsError, match="--overwrite"):
        with _atomic.atomic_dir(out) as tmp:
            (tmp / "a").write_text("new")
    assert (out / "precious.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with _atomic.atomic_dir(out, overwrite=True) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("failed half-way")
    assert (out / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with _atomic.atomic_dir(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_file_in_the_way_and_umask_permissions(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(_errors.UserError, match="not a folder"):
        with _atomic.atomic_dir(tmp_path / "file", overwrite=True):
            pass
    with _atomic.atomic_dir(tmp_path / "out") as tmp:
        fd = os.open(tmp / "secret", os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    mask = _mask()
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / "out" / "secret").stat().st_mode) == 0o666 & ~mask


def test_atomic_file_refuses_existing_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "o.wav"
    _atomic.write_bytes(target, b"first")
    with pytest.raises(_atomic.OutputExistsError):
        _atomic.write_bytes(target, b"second")
    with pytest.raises(OSError):
        with _atomic.atomic_file(target, overwrite=True) as handle:
            handle.write(b"part")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["o.wav"]
    _atomic.write_text(target, "third", overwrite=True)
    assert target.read_text() == "third"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_mask()


def test_killed_run_leftovers_are_removed_or_restored(tmp_path):
    out = tmp_path / "out"
    script = textwrap.dedent(
        f"""
        import os, sys
        from x2paddle_llm import _atomic
        with _atomic.atomic_dir({str(out)!r}) as tmp:
            (tmp / "big").write_bytes(b"x" * 1000)
            os.kill(os.getpid(), 9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".out.partial-")
    removed = _atomic.remove_stale_temporaries(out)
    assert [p.name for p in removed] == leftovers
    assert list(tmp_path.iterdir()) == []

    # A run killed between moving the old output aside and renaming the new one in.
    dead = f".out.old-{_atomic._host()}-999999999-abcd"
    (tmp_path / dead).mkdir()
    (tmp_path / dead / "old.txt").write_text("old")
    assert _atomic.remove_stale_temporaries(out) == []  # restored, not removed
    assert (out / "old.txt").read_text() == "old"
    with pytest.raises(_atomic.OutputExistsError):  # the restored output is the user's again
        _atomic.prepare_output(out)
    # Another host's temporaries and unrelated hidden files are never touched.
    (tmp_path / ".out.partial-otherhost-1-abcd").mkdir()
    (tmp_path / ".out.notes").write_text("mine")
    assert _atomic.remove_stale_temporaries(out) == []
    assert (tmp_path / ".out.partial-otherhost-1-abcd").exists()


def test_paddle_version_parsing():
    assert _paddle.paddle_version_tuple("3.3.1") == (3, 3, 1)
    assert _paddle.paddle_version_tuple("3.0.0rc1") == (3, 0, 0)
    assert _paddle.paddle_version_tuple("2.6.2") < _paddle.MIN_PADDLE
    assert _paddle.paddle_version_tuple("0.0.0") > (3, 0)  # develop build
    assert _paddle.paddle_version_tuple("3.1.0.post1") >= _paddle.MIN_PADDLE


def test_native_stdout_goes_to_stderr():
    script = textwrap.dedent(
        """
        import os
        from x2paddle_llm._paddle import native_stdout_to_stderr
        with native_stdout_to_stderr():
            os.write(1, b"native chatter\\n")
        print("result")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "result\n"
    assert "native chatter" in proc.stderr
    discarded = script.replace("native_stdout_to_stderr()", "native_stdout_to_stderr(discard=True)")
    proc = subprocess.run([sys.executable, "-c", discarded], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout, proc.stderr) == ("result\n", "")


# ------------------------------------------------------------------ _safetensors
def _raw_file(path, header: dict, data: bytes = b""):
    import json
    import struct

    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_safetensors_round_trip_matches_the_reference_library(tmp_path):
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from x2paddle_llm import _safetensors as st

    rng = np.random.default_rng(0)
    arrays = {
        "w": rng.standard_normal((3, 5)).astype(np.float32),
        "h": rng.standard_normal(4).astype(np.float16),
        "ids": np.arange(6, dtype=np.int64).reshape(2, 3),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 4), np.float32),
    }
    ours = tmp_path / "ours.safetensors"
    st.save_arrays(ours, arrays, {"format": "np"})
    for name, value in load_file(str(ours)).items():  # the reference reads what we wrote
        np.testing.assert_array_equal(value, arrays[name])
    ref = tmp_path / "ref.safetensors"
    save_file(arrays, str(ref))
    reader = st.SafetensorsReader(ref)  # we read what the reference wrote
    assert sorted(reader.keys()) == sorted(arrays)
    for name in arrays:
        np.testing.assert_array_equal(reader.read(name), arrays[name])
    bits = st.f32_to_bf16_bits(arrays["w"])
    np.testing.assert_allclose(st.bf16_bits_to_f32(bits), arrays["w"], rtol=2**-8)


@pytest.mark.parametrize(
    "header, data, message",
    [
        (
            {"x": {"dtype": "F32", "shape": [1_000_000, 1_000_000], "data_offsets": [0, 16]}},
            b"\0" * 16,
            "needs 4000000000000 bytes",
        ),
        (
            {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
            b"\0" * 8,
            "truncated file",
        ),
        (
            {"x": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "unsupported dtype",
        ),
        (
            {"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "non-negative integers",
        ),
        (
            {"x": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}},
            b"\0" * 8,
            "non-negative integers",
        ),
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "increasing"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            "overlap",
        ),
        ([1, 2], b"", "not a JSON object"),
        ({"x": [1]}, b"", "not an object"),
    ],
)
def test_safetensors_lying_headers_are_refused_before_allocating(tmp_path, header, data, message):
    from x2paddle_llm import _safetensors as st

    path = _raw_file(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(st.SafetensorsError, match=message) as info:
        st.SafetensorsReader(path)
    assert info.value.path == str(path)


def test_safetensors_not_a_file_at_all(tmp_path):
    from x2paddle_llm import _safetensors as st

    (tmp_path / "short").write_bytes(b"abc")
    (tmp_path / "huge_len").write_bytes((10**15).to_bytes(8, "little") + b"{}")
    for name, message in [("short", "not a safetensors file"), ("huge_len", "does not fit")]:
        with pytest.raises(st.SafetensorsError, match=message):
            st.SafetensorsReader(tmp_path / name)
    with pytest.raises(st.SafetensorsError, match="file not found"):
        st.SafetensorsReader(tmp_path / "missing")
