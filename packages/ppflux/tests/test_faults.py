"""Fault suite of the ``ppflux`` command line: damaged and lying files, wrong types, existing,
read-only and full outputs, interrupted and killed runs, huge claims.

Every case runs the real command (``ppflux.cli.main``, in-process, or a subprocess where a
process must die) and asserts the exit code, the message and the state of the output.
The checkpoints are written here with numpy in the original BFL single-file layout.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from ppflux.cli import main

HIDDEN, HEAD, IN, TXT, MLP = 32, 16, 64, 32, 128


def bfl_tensors(dtype=np.float32) -> dict[str, np.ndarray]:
    """A tiny, complete FLUX.1-dev checkpoint in the original layout (1 + 1 blocks)."""
    rng = np.random.default_rng(0)
    shapes = {
        "img_in": (HIDDEN, IN),
        "txt_in": (HIDDEN, TXT),
        "time_in.in_layer": (HIDDEN, 256),
        "time_in.out_layer": (HIDDEN, HIDDEN),
        "guidance_in.in_layer": (HIDDEN, 256),
        "guidance_in.out_layer": (HIDDEN, HIDDEN),
        "vector_in.in_layer": (HIDDEN, TXT),
        "vector_in.out_layer": (HIDDEN, HIDDEN),
        "final_layer.adaLN_modulation.1": (2 * HIDDEN, HIDDEN),
        "final_layer.linear": (IN, HIDDEN),
        "single_blocks.0.modulation.lin": (3 * HIDDEN, HIDDEN),
        "single_blocks.0.linear1": (3 * HIDDEN + MLP, HIDDEN),
        "single_blocks.0.linear2": (HIDDEN, HIDDEN + MLP),
    }
    d = "double_blocks.0"
    for side in ("img", "txt"):
        shapes[f"{d}.{side}_mod.lin"] = (6 * HIDDEN, HIDDEN)
        shapes[f"{d}.{side}_attn.qkv"] = (3 * HIDDEN, HIDDEN)
        shapes[f"{d}.{side}_attn.proj"] = (HIDDEN, HIDDEN)
        shapes[f"{d}.{side}_mlp.0"] = (MLP, HIDDEN)
        shapes[f"{d}.{side}_mlp.2"] = (HIDDEN, MLP)
    out = {}
    for name, shape in shapes.items():
        out[f"{name}.weight"] = rng.standard_normal(shape).astype(dtype)
        out[f"{name}.bias"] = rng.standard_normal(shape[0]).astype(dtype)
    for norm in (f"{d}.img_attn.norm", f"{d}.txt_attn.norm", "single_blocks.0.norm"):
        for part in ("query_norm", "key_norm"):
            out[f"{norm}.{part}.scale"] = np.ones(HEAD, dtype)
    return out


def write_raw(path: Path, header: dict, data: bytes) -> Path:
    """A safetensors file with exactly this header and data (for lying headers)."""
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)
    return path


@pytest.fixture
def ckpt(tmp_path) -> Path:
    path = tmp_path / "flux1-tiny.safetensors"
    save_file(bfl_tensors(), str(path))
    return path


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def assert_refused(code, err, *needles, output: Path | None = None):
    assert code == 2, err
    assert "Traceback" not in err, err
    # the error is one line (a progress bar drawn before it may end with a carriage return)
    last = err.rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert last.startswith("error: "), err
    for needle in needles:
        assert needle in err, err
    if output is not None:
        assert not output.exists(), f"{output} was written"
        assert leftovers(output.parent) == []


# ------------------------------------------------------------------ the output location
def test_converts_and_output_has_umask_permissions(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        code, err = run(capsys, "convert", ckpt, out, "--axes-dims-rope", 4, 6, 6)
    finally:
        os.umask(old)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["num_layers"] == 1 and config["guidance_embeds"] is True
    assert (out.stat().st_mode & 0o777) == 0o755
    assert ((out / "config.json").stat().st_mode & 0o777) == 0o644
    assert leftovers(tmp_path) == []


def test_existing_nonempty_output_is_refused_and_kept(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    code, err = run(capsys, "convert", ckpt, out, "--axes-dims-rope", 4, 6, 6)
    assert_refused(code, err, str(out), "not empty", "--overwrite")
    assert (out / "precious.txt").read_text() == "mine"
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_only_when_complete(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    code, err = run(capsys, "convert", ckpt, out, "--axes-dims-rope", 4, 6, 6, "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    assert leftovers(tmp_path) == []


def test_overwrite_keeps_old_output_when_the_new_one_fails(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    bad = tmp_path / "bad.safetensors"
    tensors = bfl_tensors()
    tensors["double_blocks.0.img_attn.qkv.weight"] = tensors["double_blocks.0.img_attn.qkv.weight"][
        :-1
    ]
    save_file(tensors, str(bad))
    code, err = run(capsys, "convert", bad, out, "--axes-dims-rope", 4, 6, 6, "--overwrite")
    assert_refused(code, err, "double_blocks.0.img_attn.qkv.weight", "rows")
    assert (out / "old.txt").read_text() == "old"
    assert leftovers(tmp_path) == []


def test_existing_empty_output_folder_is_used(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, err = run(capsys, "convert", ckpt, out, "--axes-dims-rope", 4, 6, 6)
    assert code == 0, err
    assert (out / "config.json").is_file()


def test_output_is_an_existing_file(ckpt, tmp_path, capsys):
    out = tmp_path / "out.bin"
    out.write_bytes(b"user data")
    for extra in ((), ("--overwrite",)):
        code, err = run(capsys, "convert", ckpt, out, *extra)
        assert_refused(code, err, str(out), "is not a folder")
        assert out.read_bytes() == b"user data"


def test_output_inside_a_file(ckpt, tmp_path, capsys):
    parent = tmp_path / "file"
    parent.write_text("x")
    code, err = run(capsys, "convert", ckpt, parent / "out")
    assert_refused(code, err, str(parent), "not a folder")
    assert parent.read_text() == "x"


def test_read_only_output_location(ckpt, tmp_path, capsys, monkeypatch):
    # root ignores permission bits, so the read-only file system is injected where the
    # output's temporary folder is created
    import ppflux._atomic as atomic

    def read_only(path, *a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(atomic.os, "mkdir", read_only)
    out = tmp_path / "out"
    code, err = run(capsys, "convert", ckpt, out, "--axes-dims-rope", 4, 6, 6)
    assert_refused(code, err, "read-only file system", str(tmp_path), output=out)


def test_full_disk_leaves_nothing(ckpt, tmp_path, capsys, monkeypatch):
    import builtins

    import ppflux.safetensors_io as sio

    real_open = builtins.open

    class FullDisk:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            self.written += len(memoryview(data).cast("B"))
            if self.written > 20_000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.handle.name)
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(
        sio, "open", lambda p, mode="r", *a, **k: FullDisk(real_open(p, mode)), raising=False
    )
    out = tmp_path / "out"
    code, err = run(capsys, "convert", ckpt, out, "--axes-dims-rope", 4, 6, 6)
    assert_refused(code, err, "no space left on device", output=out)


def test_ctrl_c_leaves_nothing(ckpt, tmp_path, capsys, monkeypatch):
    import ppflux.convert as conv

    def interrupted(path, specs, *a, **k):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(conv, "write_streaming", interrupted)
    out = tmp_path / "out"
    code, err = run(capsys, "convert", ckpt, out, "--axes-dims-rope", 4, 6, 6)
    assert code == 130 and "interrupted" in err
    assert not out.exists() and leftovers(tmp_path) == []


def test_killed_run_temporary_is_removed_by_the_next_run(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    script = (
        "import sys, time\n"
        "from ppflux._atomic import atomic_dir\n"
        "with atomic_dir(sys.argv[1]) as tmp:\n"
        "    (tmp / 'diffusion_pytorch_model.safetensors').write_bytes(b'x' * 4096)\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and len(leftovers(tmp_path)) == 1
    code, err = run(capsys, "convert", ckpt, out, "--axes-dims-rope", 4, 6, 6)
    assert code == 0, err
    assert "removed" in err and "interrupted run" in err
    assert leftovers(tmp_path) == [] and (out / "config.json").is_file()


# ------------------------------------------------------------------ the checkpoint
def test_missing_checkpoint(tmp_path, capsys):
    out = tmp_path / "out"
    code, err = run(capsys, "convert", tmp_path / "nope.safetensors", out)
    assert_refused(code, err, "nope.safetensors", "no such file", output=out)


def test_empty_checkpoint(tmp_path, capsys):
    src = tmp_path / "empty.safetensors"
    src.write_bytes(b"")
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, str(src), "not a safetensors file", output=out)


def test_truncated_checkpoint(ckpt, tmp_path, capsys):
    data = ckpt.read_bytes()
    src = tmp_path / "cut.safetensors"
    src.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, str(src), "truncated", output=out)


def test_header_length_beyond_the_file(tmp_path, capsys):
    src = tmp_path / "lying.safetensors"
    src.write_bytes(struct.pack("<Q", 10**9) + b"{}")
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, str(src), "header length", output=out)


@pytest.mark.parametrize(
    "header, needle",
    [
        (b"not json at all", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
    ],
)
def test_header_not_a_json_object(tmp_path, capsys, header, needle):
    src = tmp_path / "bad.safetensors"
    src.write_bytes(struct.pack("<Q", len(header)) + header)
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, str(src), needle, output=out)


def test_huge_claimed_tensor_is_refused_before_allocating(tmp_path, capsys):
    # 1e12 float32 elements (4 TB) claimed by a 64-byte file
    header = {
        "img_in.weight": {
            "dtype": "F32",
            "shape": [1_000_000, 1_000_000],
            "data_offsets": [0, 4 * 10**12],
        }
    }
    src = write_raw(tmp_path / "huge.safetensors", header, b"\0" * 64)
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, "img_in.weight", "data section", output=out)


def test_shape_and_offsets_disagree(tmp_path, capsys):
    header = {"img_in.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 32]}}
    src = write_raw(tmp_path / "lie.safetensors", header, b"\0" * 32)
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, "img_in.weight", "needs 64 bytes", output=out)


@pytest.mark.parametrize(
    "entry, needle",
    [
        ({"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}, "unsupported dtype"),
        ({"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 8]}, "non-negative integers"),
        ({"dtype": "F32", "shape": "2x2", "data_offsets": [0, 16]}, "non-negative integers"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}, "data_offsets"),
        ("F32", "not an object"),
    ],
)
def test_malformed_header_entries(tmp_path, capsys, entry, needle):
    src = write_raw(tmp_path / "bad.safetensors", {"img_in.weight": entry}, b"\0" * 16)
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, "img_in.weight", needle, output=out)


def test_overlapping_tensors(tmp_path, capsys):
    header = {
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
    }
    src = write_raw(tmp_path / "overlap.safetensors", header, b"\0" * 24)
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, "overlap", output=out)


def test_float_weight_stored_as_integer_is_refused(tmp_path, capsys):
    tensors = bfl_tensors()
    tensors["double_blocks.0.img_mlp.0.weight"] = tensors[
        "double_blocks.0.img_mlp.0.weight"
    ].astype(np.int32)
    src = tmp_path / "i32.safetensors"
    save_file(tensors, str(src))
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out, "--axes-dims-rope", 4, 6, 6)
    assert_refused(code, err, "double_blocks.0.img_mlp.0.weight", "I32", "float", output=out)


def test_not_a_flux_checkpoint(tmp_path, capsys):
    src = tmp_path / "other.safetensors"
    save_file({"encoder.conv.weight": np.zeros((3, 3), np.float32)}, str(src))
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, "not a FLUX checkpoint", output=out)


def test_diffusers_layout_single_file(tmp_path, capsys):
    src = tmp_path / "diffusers.safetensors"
    save_file({"transformer_blocks.0.attn.to_q.weight": np.zeros((4, 4), np.float32)}, str(src))
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, "already in the diffusers layout", output=out)


def test_missing_block_tensor(tmp_path, capsys):
    tensors = bfl_tensors()
    del tensors["single_blocks.0.linear2.weight"]
    src = tmp_path / "missing.safetensors"
    save_file(tensors, str(src))
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out, "--axes-dims-rope", 4, 6, 6)
    assert_refused(code, err, "single_blocks.0.linear2.weight", "missing", output=out)


def test_bad_axes_dims_rope(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = run(capsys, "convert", ckpt, out, "--axes-dims-rope", 4, 4, 4)
    assert_refused(code, err, "sum to the head dim 16", output=out)


def test_folder_without_config(tmp_path, capsys):
    src = tmp_path / "folder"
    src.mkdir()
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, "no config.json", output=out)


def test_non_utf8_and_wrong_type_config(tmp_path, capsys):
    src = tmp_path / "folder"
    src.mkdir()
    (src / "config.json").write_bytes(b"\xff\xfe{}")
    out = tmp_path / "out"
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, "config.json", output=out)
    (src / "config.json").write_text("[1, 2]")
    code, err = run(capsys, "convert", src, out)
    assert_refused(code, err, "config.json", "object", output=out)


# ------------------------------------------------------------------ other commands
def test_generate_refuses_existing_image_and_bad_suffix(tmp_path, capsys):
    image = tmp_path / "cat.png"
    image.write_bytes(b"my picture")
    code, err = run(capsys, "generate", "--model", tmp_path, "--prompt", "x", "-o", image)
    assert_refused(code, err, str(image), "exists", "--overwrite")
    assert image.read_bytes() == b"my picture"
    code, err = run(
        capsys, "generate", "--model", tmp_path, "--prompt", "x", "-o", tmp_path / "cat.xyz"
    )
    assert_refused(code, err, "unknown image suffix")
    code, err = run(
        capsys,
        "generate",
        "--model",
        tmp_path,
        "--prompt",
        "x",
        "--steps",
        "0",
        "-o",
        tmp_path / "new.png",
    )
    assert_refused(code, err, "--steps")


def test_make_tiny_refuses_nonempty_folder(tmp_path, capsys):
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "keep.txt").write_text("k")
    code, err = run(capsys, "make-tiny", out)
    assert_refused(code, err, "not empty")
    assert (out / "keep.txt").read_text() == "k"
