"""Fault suite of ``x2paddle3``: damaged and lying files, wrong values, an existing output,
full and read-only disks (injected: the tests cannot mount), a killed run's leftovers, huge
claimed sizes, a failing source runtime. Each case asserts the exit code, the message (one
line naming the file and the problem, no traceback) and the state of the output location."""

from __future__ import annotations

import errno
import json
import os
import socket

import numpy as np
import onnx
import onnx_graphs
import pytest
import real_graphs

from x2paddle_compat.cli import main


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "good.onnx"
    onnx.save(real_graphs.conv_no_kernel_shape(), path)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else None


def convert_args(model, out, *more):
    return ["-f", "onnx", "-m", model, "-s", out, *more]


# ---------------------------------------------------------------- damaged / lying files

DAMAGED = {
    "empty": (b"", "is empty"),
    "garbage": (b"\x00\xffnot a model at all" * 10, "not a readable ONNX model"),
    "text": (b"ir_version: 8\nthis is text, not protobuf\n", "not a readable ONNX model"),
    "json": (b'{"graph": {"node": []}}', "not a readable ONNX model|empty graph"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGED))
def test_damaged_model(kind, tmp_path, capsys):
    content, message = DAMAGED[kind]
    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(content)
    code, _, err = run(capsys, *convert_args(path, tmp_path / "out", "--verify"))
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(path) in last
    assert any(m in err for m in message.split("|")), err
    assert listing(tmp_path) == [path.name]


def test_truncated_model(good, tmp_path, capsys):
    path = tmp_path / "cut.onnx"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    code, _, err = run(capsys, *convert_args(path, tmp_path / "out"))
    assert code == 2 and "cut.onnx" in err and "truncated or corrupt" in err
    assert listing(tmp_path) == ["cut.onnx"]


def test_missing_model(tmp_path, capsys):
    code, _, err = run(capsys, *convert_args(tmp_path / "nope.onnx", tmp_path / "out"))
    assert code == 2 and "nope.onnx: ONNX model does not exist" in err
    assert listing(tmp_path) == []


def test_model_is_a_folder(tmp_path, capsys):
    (tmp_path / "dir.onnx").mkdir()
    code, _, err = run(capsys, *convert_args(tmp_path / "dir.onnx", tmp_path / "out"))
    assert code == 2 and "not a regular file" in err
    assert listing(tmp_path) == ["dir.onnx"]


def test_unsupported_operators_all_listed(tmp_path, capsys):
    path = tmp_path / "u.onnx"
    onnx.save(onnx_graphs.unsupported_ops(), path)
    code, _, err = run(capsys, *convert_args(path, tmp_path / "out"))
    assert code == 2 and "Det, Hardmax" in err
    assert listing(tmp_path) == ["u.onnx"]


def test_huge_declared_input_not_allocated(tmp_path, capsys):
    from onnx import helper

    big = [100000, 100000, 100]
    model = real_graphs._model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [real_graphs._vi("x", big)],
        [real_graphs._vi("y", big)],
    )
    path = tmp_path / "huge.onnx"
    onnx.save(model, path)
    code, _, err = run(capsys, *convert_args(path, tmp_path / "out", "--verify"))
    assert code == 2 and "GiB" in err and "-isd" in err
    assert listing(tmp_path) == ["huge.onnx"]  # refused before converting


# ---------------------------------------------------------------- wrong values

BAD_SHAPES = {
    "unparsable": ("{'x': [1, 3", "not a dict"),
    "not a dict": ("[1, 3, 8, 8]", "not a dict"),
    "not integers": ("{'x': ['a', 3, 8, 8]}", "not a list of integers"),
    "unknown input": ("{'image': [1, 3, 8, 8]}", "not inputs of the model"),
    "code": ("__import__('os').system('true')", "not a dict"),
}


@pytest.mark.parametrize("case", sorted(BAD_SHAPES))
def test_bad_input_shape_dict(case, good, tmp_path, capsys):
    value, message = BAD_SHAPES[case]
    code, _, err = run(capsys, *convert_args(good, tmp_path / "out", "-isd", value))
    assert code == 2 and message in err, err
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    "value,message",
    [("sr", "not NAME=VALUE"), ("sr=abc", "not NAME=VALUE"), ("rate=16000", "not inputs")],
)
def test_bad_input_value(value, message, good, tmp_path, capsys):
    code, _, err = run(capsys, *convert_args(good, tmp_path / "out", "--input-value", value))
    assert code == 2 and message in err, err
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    "argv,message",
    [
        (["-f", "onnx", "-m", "x.onnx"], "--framework and --save_dir are required"),
        (["-f", "keras", "-m", "x", "-s", "o"], "invalid choice"),
        (["-f", "onnx", "-m", "x", "-s", "o", "--atol", "tight"], "invalid float value"),
    ],
)
def test_bad_arguments(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert listing(tmp_path) == []


def test_verification_shape_the_model_rejects_is_exit_3(good, tmp_path, capsys):
    """-isd a shape onnxruntime cannot run: the source runtime's failure is exit 3, named as
    such, before anything is written."""
    code, _, err = run(
        capsys, *convert_args(good, tmp_path / "out", "--verify", "-isd", "{'x': [1, 5, 8, 8]}")
    )
    assert code == 3 and "onnxruntime failed on the verification inputs" in err
    assert listing(tmp_path) == []


# ---------------------------------------------------------------- the output location


def test_existing_output_kept_without_overwrite(good, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    code, _, err = run(capsys, *convert_args(good, out))
    assert code == 2 and "pass --overwrite" in err
    assert listing(out) == ["mine.txt"]


def test_output_is_a_file(good, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("a file")
    code, _, err = run(capsys, *convert_args(good, out, "--overwrite"))
    assert code == 2 and "not a folder" in err
    assert out.read_text() == "a file"


def test_overwrite_keeps_old_output_when_conversion_fails(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    path = tmp_path / "u.onnx"
    onnx.save(onnx_graphs.unsupported_ops(), path)
    code, _, _ = run(capsys, *convert_args(path, out, "--overwrite"))
    assert code == 2 and listing(out) == ["old.txt"]
    assert listing(tmp_path) == ["out", "u.onnx"]  # no temporary left


def test_overwrite_replaces_when_complete(good, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    code, stdout, _ = run(capsys, *convert_args(good, out, "--overwrite"))
    assert code == 0 and "converted into" in stdout
    assert "old.txt" not in listing(out) and (out / "inference_model" / "model.json").exists()


def test_read_only_disk(good, tmp_path, capsys, monkeypatch):
    from x2paddle_compat import _atomic

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(_atomic.os, "mkdir", read_only)
    code, _, err = run(capsys, *convert_args(good, tmp_path / "out"))
    assert code == 2 and "read-only file system" in err and "out" in err
    assert listing(tmp_path) == []


def test_full_disk_while_putting_output_in_place(good, tmp_path, capsys, monkeypatch):
    from x2paddle_compat import _atomic

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(_atomic.os, "replace", full)
    code, _, err = run(capsys, *convert_args(good, tmp_path / "out"))
    assert code == 2 and "no space left on device" in err
    assert listing(tmp_path) == []  # the temporary is gone too


def test_full_disk_while_writing_deploy_json(good, tmp_path, capsys, monkeypatch):
    """Verification's deploy.json on a full disk: no half-written JSON."""
    from x2paddle_compat import _atomic

    real = _atomic.os.replace

    def full_for_deploy(src, dst):
        if str(dst).endswith("deploy.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", full_for_deploy)
    out = tmp_path / "out"
    code, _, err = run(capsys, *convert_args(good, out, "--verify"))
    assert code == 2 and "no space left on device" in err
    assert not [p for p in out.iterdir() if "deploy" in p.name]


def test_killed_run_leftover_removed_and_said(good, tmp_path, capsys):
    dead = 2**22 + 12345  # beyond pid_max on this kind of machine: not a live process
    host = "".join(ch if ch.isalnum() else "_" for ch in socket.gethostname().split(".")[0])
    stale = tmp_path / f".out.partial-{host}-{dead}-abcd1234"
    stale.mkdir()
    (stale / "x2paddle_code.py").write_text("# half")
    other = tmp_path / ".not-ours"
    other.mkdir()
    code, _, err = run(capsys, *convert_args(good, tmp_path / "out"))
    assert code == 0 and "left by an interrupted run" in err
    assert listing(tmp_path) == [".not-ours", "out"]


# ---------------------------------------------------------------- machine-readable output


def test_deploy_json_is_strict_json_when_a_runtime_failed(good, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, *convert_args(good, out, "--verify", "--json"))
    assert code == 0
    report = json.loads(stdout)  # stdout is exactly one JSON object
    assert report["ok"] is True and report["source"] == "onnxruntime"

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    deploy = json.loads((out / "deploy.json").read_text(), parse_constant=refuse)
    assert deploy["verified"] is True
    for result in deploy["results"].values():  # a failed runtime has null, not Infinity
        assert result["max_abs"] is None or np.isfinite(result["max_abs"])


def test_create_predictor_with_damaged_deploy_json(good, tmp_path, capsys):
    from x2paddle_compat import VerificationError
    from x2paddle_compat.verify import create_predictor

    out = tmp_path / "out"
    assert run(capsys, *convert_args(good, out))[0] == 0
    (out / "deploy.json").write_text("{not json")
    with pytest.raises(VerificationError, match="deploy.json"):
        create_predictor(out)
