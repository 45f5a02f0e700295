"""Fault suite: damaged, lying or hostile inputs and failing disks, through the command line.

Every case asserts the exit code (2 = bad input, one line ``error: <file>: <problem>`` on
stderr, no traceback), the message, and the state of the output location afterwards
(absent, or the user's previous content untouched; no temporaries left behind).
Full and read-only disks are injected (``ENOSPC`` / ``EROFS`` from the write calls): the
tests run as root in containers where mounting a small tmpfs is not possible.
"""

from __future__ import annotations

import errno
import json
import os
import shutil

import numpy as np
import pytest
import soundfile
from conftest import ensure_export

from speech_pir_export import configs
from speech_pir_export.cli import main


@pytest.fixture(scope="module")
def exports(export_root):
    for name in ("fastspeech2", "hifigan", "deepspeech2"):
        ensure_export(export_root, name)
    return export_root


def run(capsys, *argv):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *needles):
    assert code == 2, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: "), err
    for needle in needles:
        assert needle in line, (needle, line)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def export_args(tmp_path, *extra, model="hifigan", config=None):
    return [
        "export",
        model,
        "--config",
        config or configs.path(model),
        "--out",
        tmp_path / "out",
        "--skip-onednn",
        *extra,
    ]


def wav_file(path, seconds=1.0, sr=16000):
    rng = np.random.default_rng(0)
    soundfile.write(
        path, (rng.standard_normal(int(sr * seconds)) * 0.1).astype("float32"), sr, subtype="PCM_16"
    )
    return path


# --- damaged or wrong input files (export) ---------------------------------------------------


def test_config_missing(tmp_path, capsys):
    code, _, err = run(capsys, *export_args(tmp_path, config=tmp_path / "nope.yaml"))
    assert_user_error(code, err, "nope.yaml", "config file not found")
    assert not (tmp_path / "out").exists()


def test_config_not_utf8(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"fs: 24000\nname: \xff\xfe\xfa\n")
    code, _, err = run(capsys, *export_args(tmp_path, config=cfg))
    assert_user_error(code, err, "c.yaml", "not UTF-8")
    assert not (tmp_path / "out").exists()


def test_config_not_yaml(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: [unclosed\n  - {", encoding="utf-8")
    code, _, err = run(capsys, *export_args(tmp_path, config=cfg))
    assert_user_error(code, err, "c.yaml", "not valid YAML")


def test_config_wrong_type(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("- 1\n- 2\n", encoding="utf-8")
    code, _, err = run(capsys, *export_args(tmp_path, config=cfg))
    assert_user_error(code, err, "c.yaml", "mapping")


def test_config_of_another_model(tmp_path, capsys):
    code, _, err = run(capsys, *export_args(tmp_path, config=configs.path("deepspeech2")))
    assert_user_error(code, err, "does not describe a hifigan model")
    assert not (tmp_path / "out").exists()


def test_unknown_model(tmp_path, capsys):
    code, _, err = run(
        capsys, *export_args(tmp_path, model="hifigun", config=configs.path("hifigan"))
    )
    assert_user_error(code, err, "unknown model 'hifigun'", "Did you mean hifigan")


def test_empty_phones_dict(tmp_path, capsys):
    empty = tmp_path / "phone_id_map.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    code, _, err = run(capsys, *export_args(tmp_path, "--phones-dict", empty, model="fastspeech2"))
    assert_user_error(code, err, "phone_id_map.txt", "is empty")
    assert not (tmp_path / "out").exists()


def test_phones_dict_not_utf8(tmp_path, capsys):
    bad = tmp_path / "phone_id_map.txt"
    bad.write_bytes(b"a 0\n\xc3\x28 1\n")
    code, _, err = run(capsys, *export_args(tmp_path, "--phones-dict", bad, model="fastspeech2"))
    assert_user_error(code, err, "phone_id_map.txt", "not UTF-8")


def test_phones_dict_ids_out_of_order(tmp_path, capsys):
    bad = tmp_path / "phone_id_map.txt"
    bad.write_text("sil 0\na 2\nb 1\n", encoding="utf-8")
    code, _, err = run(capsys, *export_args(tmp_path, "--phones-dict", bad, model="fastspeech2"))
    assert_user_error(code, err, "line 2 gives id 2", "expected 1")


def test_stats_wrong_shape(tmp_path, capsys):
    stats = tmp_path / "stats.npy"
    np.save(stats, np.zeros((3, 80), "float32"))
    code, _, err = run(capsys, *export_args(tmp_path, "--stats", stats))
    assert_user_error(code, err, "stats.npy", "shape (2, dim)")


def test_stats_zero_std(tmp_path, capsys):
    stats = tmp_path / "stats.npy"
    np.save(stats, np.stack([np.zeros(80), np.zeros(80)]).astype("float32"))
    code, _, err = run(capsys, *export_args(tmp_path, "--stats", stats))
    assert_user_error(code, err, "stats.npy", "standard deviation")


def test_stats_not_npy(tmp_path, capsys):
    stats = tmp_path / "stats.npy"
    stats.write_bytes(b"\x93NUMPY garbage" * 3)
    code, _, err = run(capsys, *export_args(tmp_path, "--stats", stats))
    assert_user_error(code, err, "stats.npy", "not a .npy file")


def test_checkpoint_garbage(tmp_path, capsys):
    ckpt = tmp_path / "snapshot.pdz"
    ckpt.write_bytes(os.urandom(256))
    stats = tmp_path / "stats.npy"
    np.save(stats, np.stack([np.zeros(80), np.ones(80)]).astype("float32"))
    code, _, err = run(capsys, *export_args(tmp_path, "--checkpoint", ckpt, "--stats", stats))
    assert_user_error(code, err, "snapshot.pdz", "cannot be read as a Paddle checkpoint")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


# --- existing outputs are the user's ---------------------------------------------------------


def test_existing_output_folder_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me", encoding="utf-8")
    code, _, err = run(capsys, *export_args(tmp_path))
    assert_user_error(code, err, "out", "--overwrite")
    assert (out / "mine.txt").read_text(encoding="utf-8") == "keep me"


def test_output_is_a_file(tmp_path, capsys):
    (tmp_path / "out").write_text("a file", encoding="utf-8")
    code, _, err = run(capsys, *export_args(tmp_path, "--overwrite"))
    assert_user_error(code, err, "not a folder")
    assert (tmp_path / "out").read_text(encoding="utf-8") == "a file"


def test_infer_refuses_existing_wav_before_work(exports, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.wav"
    out.write_bytes(b"previous result")
    from speech_pir_export import infer

    monkeypatch.setattr(infer, "synthesize", lambda *a, **k: pytest.fail("ran before refusing"))
    code, _, err = run(
        capsys,
        "infer",
        exports / "fastspeech2",
        "--phones",
        "3 5 7",
        "--vocoder",
        exports / "hifigan",
        "--output",
        out,
    )
    assert_user_error(code, err, "o.wav", "--overwrite")
    assert out.read_bytes() == b"previous result"


def test_infer_refuses_the_default_out_wav_of_a_vocoder(exports, tmp_path, capsys, monkeypatch):
    """Without --output a vocoder writes ./out.wav: an existing one is refused too."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out.wav").write_bytes(b"previous result")
    mel = tmp_path / "mel.npy"
    np.save(mel, np.random.default_rng(0).standard_normal((12, 80)).astype("float32"))
    code, _, err = run(capsys, "infer", exports / "hifigan", "--wav", mel)
    assert_user_error(code, err, "out.wav", "--overwrite")
    assert (tmp_path / "out.wav").read_bytes() == b"previous result"
    code, _, err = run(capsys, "infer", exports / "hifigan", "--wav", mel, "--overwrite")
    assert code == 0, err
    assert soundfile.read(tmp_path / "out.wav")[0].size > 0


def test_infer_overwrite_replaces_only_when_complete(exports, tmp_path, capsys):
    out = tmp_path / "o.wav"
    out.write_bytes(b"previous result")
    code, stdout, err = run(
        capsys,
        "infer",
        exports / "fastspeech2",
        "--phones",
        "3 5 7",
        "--vocoder",
        exports / "hifigan",
        "--output",
        out,
        "--overwrite",
    )
    assert code == 0, err
    wav, sr = soundfile.read(out)
    assert sr == 24000 and len(wav) > 0 and leftovers(tmp_path) == []


# --- full and read-only disks (injected) ---------------------------------------------------


def _fail_writes(monkeypatch, errno_code):
    """Make every write of the output fail as a full (ENOSPC) or read-only (EROFS) disk."""
    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()
            return False

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno_code, os.strerror(errno_code))

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Failing(real_fdopen(fd, *a, **k)))


def test_infer_full_disk_leaves_no_short_wav(exports, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.wav"
    _fail_writes(monkeypatch, errno.ENOSPC)
    code, _, err = run(
        capsys,
        "infer",
        exports / "fastspeech2",
        "--phones",
        "3 5 7",
        "--vocoder",
        exports / "hifigan",
        "--output",
        out,
    )
    assert_user_error(code, err, "no space left on device")
    assert not out.exists() and leftovers(tmp_path) == []


def test_infer_full_disk_keeps_previous_wav(exports, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.wav"
    out.write_bytes(b"previous result")
    _fail_writes(monkeypatch, errno.ENOSPC)
    code, _, err = run(
        capsys,
        "infer",
        exports / "fastspeech2",
        "--phones",
        "3 5 7",
        "--vocoder",
        exports / "hifigan",
        "--output",
        out,
        "--overwrite",
    )
    assert_user_error(code, err, "no space left on device")
    assert out.read_bytes() == b"previous result" and leftovers(tmp_path) == []


def test_infer_read_only_output(exports, tmp_path, capsys, monkeypatch):
    wav = wav_file(tmp_path / "in.wav")
    real_open = os.open

    def read_only(path, flags, *a, **k):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    code, _, err = run(
        capsys, "infer", exports / "deepspeech2", "--wav", wav, "--output", tmp_path / "r.json"
    )
    assert_user_error(code, err, "read-only file system")
    assert not (tmp_path / "r.json").exists() and leftovers(tmp_path) == []


def test_export_full_disk_leaves_nothing(tmp_path, capsys, monkeypatch):
    import paddle

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x.pdiparams"))

    monkeypatch.setattr(paddle.jit, "save", full)
    code, _, err = run(capsys, *export_args(tmp_path))
    assert code == 2 and "no space left on device" in err, err
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == []


# --- damaged export folders and inference inputs -------------------------------------------


def test_infer_missing_export_folder(tmp_path, capsys):
    code, _, err = run(capsys, "infer", tmp_path / "none", "--wav", tmp_path / "x.wav")
    assert_user_error(code, err, "none", "export folder not found")


def test_manifest_damaged(exports, tmp_path, capsys):
    bad = tmp_path / "ds2"
    shutil.copytree(exports / "deepspeech2", bad)
    (bad / "export.json").write_text('{"model": "deepspeech2", "task": ', encoding="utf-8")
    code, _, err = run(capsys, "infer", bad, "--wav", wav_file(tmp_path / "a.wav"))
    assert_user_error(code, err, "export.json", "not valid JSON")


def test_manifest_wrong_type(exports, tmp_path, capsys):
    bad = tmp_path / "ds2"
    shutil.copytree(exports / "deepspeech2", bad)
    (bad / "export.json").write_text("[1, 2]", encoding="utf-8")
    code, _, err = run(capsys, "verify", bad, "--skip-onednn")
    assert_user_error(code, err, "export.json", "JSON object")


def test_graph_file_missing(exports, tmp_path, capsys):
    bad = tmp_path / "ds2"
    shutil.copytree(exports / "deepspeech2", bad)
    (bad / "model.pdiparams").unlink()
    code, _, err = run(capsys, "infer", bad, "--wav", wav_file(tmp_path / "a.wav"))
    assert_user_error(code, err, "'model'", "missing")


def test_wav_not_audio(exports, tmp_path, capsys):
    junk = tmp_path / "a.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(64))
    code, _, err = run(capsys, "infer", exports / "deepspeech2", "--wav", junk)
    assert_user_error(code, err, "a.wav", "not a readable audio file")


def test_wav_wrong_sample_rate(exports, tmp_path, capsys):
    wav = wav_file(tmp_path / "a.wav", sr=8000)
    code, _, err = run(capsys, "infer", exports / "deepspeech2", "--wav", wav)
    assert_user_error(code, err, "8000 Hz", "16000 Hz")


def test_wav_too_short(exports, tmp_path, capsys):
    wav = wav_file(tmp_path / "a.wav", seconds=0.01)
    code, _, err = run(capsys, "infer", exports / "deepspeech2", "--wav", wav)
    assert_user_error(code, err, "too short")


def test_unknown_phone(exports, tmp_path, capsys):
    code, _, err = run(
        capsys,
        "infer",
        exports / "fastspeech2",
        "--phones",
        "3 zz 7",
        "--vocoder",
        exports / "hifigan",
        "--output",
        tmp_path / "o.wav",
    )
    assert_user_error(code, err, "'zz'", "vocabulary")
    assert not (tmp_path / "o.wav").exists()


def test_vocoder_mel_wrong_rank(exports, tmp_path, capsys):
    mel = tmp_path / "mel.npy"
    np.save(mel, np.zeros((2, 3, 80), "float32"))
    code, _, err = run(
        capsys, "infer", exports / "hifigan", "--wav", mel, "--output", tmp_path / "o.wav"
    )
    assert_user_error(code, err, "mel.npy", "2-D")
    assert not (tmp_path / "o.wav").exists()


def test_spk_emb_garbage(exports, tmp_path, capsys):
    emb = tmp_path / "emb.npy"
    emb.write_bytes(b"not numpy at all")
    code, _, err = run(
        capsys,
        "infer",
        exports / "fastspeech2",
        "--phones",
        "3 5",
        "--vocoder",
        exports / "hifigan",
        "--spk-emb",
        emb,
        "--output",
        tmp_path / "o.wav",
    )
    assert_user_error(code, err, "emb.npy", "not a .npy file")


def test_wrong_task_for_wav(exports, tmp_path, capsys):
    code, _, err = run(
        capsys, "infer", exports / "fastspeech2", "--wav", wav_file(tmp_path / "a.wav")
    )
    assert_user_error(code, err, "does not support fastspeech2")


# --- a run killed mid-write ------------------------------------------------------------------


def test_temporaries_of_a_killed_run_are_removed(tmp_path, capsys):
    import subprocess
    import sys

    from speech_pir_export._atomic import _host

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.partial-{_host()}-{dead.pid}-abcd1234"
    stale.mkdir()
    (stale / "model.pdiparams").write_bytes(b"\0" * 1024)
    other = tmp_path / ".unrelated-hidden"
    other.mkdir()
    code, out, err = run(capsys, *export_args(tmp_path))
    assert code == 0, err
    assert not stale.exists() and other.exists()
    assert f"removed {stale}" in err
    manifest = json.loads((tmp_path / "out" / "export.json").read_text(encoding="utf-8"))
    assert manifest["predictor"]["verified"]
