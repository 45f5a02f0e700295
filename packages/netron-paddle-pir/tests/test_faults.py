"""Bad input, case by case: damaged, lying, foreign or huge files and bad command-line values.

Each reader case builds a damaged copy of a corpus model and asks the reader (``tests/js/
open.mjs``, the same code the viewer runs) what Netron would show: either the reader's error
dialog, with its message, or the graph, with how many nodes and why weight values are missing.
Each command-line case asserts the exit code, the one-line message and that no traceback is
printed. The launcher writes nothing, so there is no output location to check.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path

import pytest
from conftest import TESTS, node_binary

from netron_paddle_pir.server import Viewer

# ------------------------------------------------------------------------------ helpers


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tensor_bytes(dtype: int, dims: list[int], data: bytes, lod_level: int = 0) -> bytes:
    """One tensor of the .pdiparams stream (version, LoD, TensorDesc, raw data)."""
    packed = b"".join(varint(d & 0xFFFFFFFFFFFFFFFF) for d in dims)
    desc = b"\x08" + varint(dtype) + b"\x12" + varint(len(packed)) + packed
    return struct.pack("<IQ", 0, lod_level) + struct.pack("<Ii", 0, len(desc)) + desc + bytes(data)


def copy_model(corpus: Path, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(corpus / name, target)
    return target


def edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


def ops(doc):
    return doc["program"]["regions"][0]["blocks"][0]["ops"]


def first_matrix(doc):
    return next(op for op in ops(doc) if op["#"] == "p" and len(op["O"]["TT"]["D"][1]) == 2)


def viewer_shows(model: Path) -> dict:
    node = node_binary()
    if not node:
        pytest.skip("node is not installed")
    run = subprocess.run(
        [node, str(TESTS / "js" / "open.mjs"), str(model)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


# --------------------------------------------------------------- reader: the model file


def _truncate(folder):
    path = folder / "model.json"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _binary(folder):
    (folder / "model.json").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))


def _list(folder):
    (folder / "model.json").write_text("[1, 2, 3]")


def _magic(folder):
    edit_json(folder / "model.json", lambda d: d["base_code"].update(magic="onnx"))


def _version(folder):
    edit_json(folder / "model.json", lambda d: d["base_code"].update(version="four"))


def _ops_not_list(folder):
    edit_json(
        folder / "model.json", lambda d: d["program"]["regions"][0]["blocks"][0].update(ops={})
    )


def _undefined_operand(folder):
    def change(doc):
        op = next(o for o in ops(doc) if o.get("I"))
        op["I"][0]["%"] = 987654

    edit_json(folder / "model.json", change)


def _defined_twice(folder):
    def change(doc):
        results = [o for o in ops(doc) if isinstance(o.get("O"), list) and o["O"]]
        results[2]["O"][0]["%"] = results[1]["O"][0]["%"]

    edit_json(folder / "model.json", change)


def _param_name_number(folder):
    edit_json(folder / "model.json", lambda d: first_matrix(d)["A"].__setitem__(3, 17))


MODEL_CASES = {
    # name: (change, Netron's own readers get the file | reader error pattern)
    "model.json truncated": (_truncate, None),
    "model.json binary garbage": (_binary, None),
    "model.json a JSON list": (_list, None),
    "wrong magic": (_magic, r"Invalid PIR magic '\"onnx\"' \(expected \"pir\"\) in 'model\.json'"),
    "version not a number": (_version, r"Invalid PIR version '\"four\"' in 'model\.json'"),
    "ops not a list": (
        _ops_not_list,
        r"Expected a list at 'program\.regions\[0\]\.blocks\[0\]\.ops'",
    ),
    "operand of an undefined value": (
        _undefined_operand,
        r"undefined value %987654 in 'model\.json'",
    ),
    "value defined twice": (_defined_twice, r"Value id \d+ is defined twice at 'program\."),
    "parameter name not a string": (
        _param_name_number,
        r"Expected a string at 'program\..*\.A\[3\]'",
    ),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_damaged_model_file(corpus, tmp_path, case):
    import re

    change, pattern = MODEL_CASES[case]
    folder = copy_model(corpus, "mlp", tmp_path)
    change(folder)
    shown = viewer_shows(folder / "model.json")
    if pattern is None:
        # Not a PIR program any more: the reader declines and Netron's own readers decide.
        assert shown == {**shown, "matched": False, "error": None}
    else:
        assert shown["error"]["name"] == "Error loading Paddle PIR model."
        assert re.search(pattern, shown["error"]["message"]), shown["error"]["message"]


# ------------------------------------------------------------ reader: the weights file


def _params(folder, data: bytes):
    (folder / "model.pdiparams").write_bytes(data)


WEIGHT_CASES = {
    "truncated": (
        lambda f: _params(f, (f / "model.pdiparams").read_bytes()[:150]),
        r"^unavailable: Unexpected end of 'model\.pdiparams' at byte \d+",
    ),
    "extra bytes": (
        lambda f: _params(f, (f / "model.pdiparams").read_bytes() + b"\0" * 9),
        r"^unavailable: 'model\.pdiparams' holds more data than the 4 persistable parameters"
        r" of the program \(9 bytes left\)",
    ),
    "empty": (
        lambda f: _params(f, b""),
        r"^unavailable: 'model\.pdiparams' holds fewer tensors than the 4 persistable",
    ),
    "huge claimed size": (
        lambda f: _params(f, tensor_bytes(5, [1_000_000, 1_000_000], b"\0" * 64)),
        r"^unavailable: Unexpected end of 'model\.pdiparams' at byte \d+ \(needs 4000000000000 more\)",
    ),
    "negative description size": (
        lambda f: _params(f, struct.pack("<IQIi", 0, 0, 0, -5)),
        r"^unavailable: Invalid tensor description size in 'model\.pdiparams'",
    ),
    "huge LoD level": (
        lambda f: _params(f, struct.pack("<IQ", 0, 1 << 40)),
        r"^unavailable: Invalid LoD level \d+ in 'model\.pdiparams'",
    ),
    "unknown data type": (
        lambda f: _params(f, tensor_bytes(99, [2], b"\0" * 8)),
        r"^unavailable: Unsupported data type 99 in 'model\.pdiparams'",
    ),
    "foreign weights (another model's file)": (
        None,  # filled in by the test: cnn_bn's weights beside mlp's program
        r"^unavailable: 'model\.pdiparams' holds (more data|fewer tensors)",
    ),
    "not a tensor stream": (
        lambda f: _params(f, b"PK\x03\x04" + os.urandom(200)),
        r"^unavailable: Unsupported tensor version \d+ in 'model\.pdiparams' at byte 0",
    ),
}


@pytest.mark.parametrize("case", sorted(WEIGHT_CASES))
def test_damaged_weights_keep_the_graph(corpus, tmp_path, case):
    import re

    change, pattern = WEIGHT_CASES[case]
    folder = copy_model(corpus, "mlp", tmp_path)
    if change is None:
        shutil.copy(corpus / "cnn_bn" / "model.pdiparams", folder / "model.pdiparams")
    else:
        change(folder)
    healthy = viewer_shows(corpus / "mlp" / "model.json")
    shown = viewer_shows(folder / "model.json")
    assert shown["error"] is None, shown["error"]
    assert shown["nodes"] == healthy["nodes"] > 0, "the whole graph is still drawn"
    assert re.search(pattern, shown["weights"]), shown["weights"]
    reason = shown["weights"][len("unavailable: ") :]
    assert len(shown["unavailable"]) == 4, "every parameter says its values are unavailable"
    assert all(text == f"values unavailable: {reason}" for _, text in shown["unavailable"])


def test_lying_shape_in_the_program_names_the_weight(corpus, tmp_path):
    folder = copy_model(corpus, "mlp", tmp_path)
    name = {}

    def change(doc):
        param = first_matrix(doc)
        name["value"] = param["A"][3]
        rows, cols = param["O"]["TT"]["D"][1]
        param["O"]["TT"]["D"][1] = [rows + 1, cols]

    edit_json(folder / "model.json", change)
    shown = viewer_shows(folder / "model.json")
    assert shown["error"] is None
    assert [n for n, _ in shown["unavailable"]] == [name["value"]]
    (text,) = [t for _, t in shown["unavailable"]]
    assert text.startswith("values unavailable: shape [")
    assert "in the program" in text and "in 'model.pdiparams'" in text
    assert "1 of 4 tensors do not match the program" in shown["weights"]


def test_lying_dtype_in_the_program_names_the_weight(corpus, tmp_path):
    folder = copy_model(corpus, "mlp", tmp_path)
    edit_json(
        folder / "model.json",
        lambda d: first_matrix(d)["O"]["TT"]["D"].__setitem__(0, {"#": "0.t_f64"}),
    )
    shown = viewer_shows(folder / "model.json")
    assert shown["error"] is None
    (entry,) = shown["unavailable"]
    assert entry[1] == (
        "values unavailable: data type float64 in the program, float32 in 'model.pdiparams'"
    )


def test_separate_parameter_files_missing_or_garbage(corpus, tmp_path):
    folder = copy_model(corpus, "static_separate", tmp_path)
    files = sorted(p for p in folder.iterdir() if p.suffix not in (".json",))
    files[0].unlink()
    files[1].write_bytes(b"garbage")
    shown = viewer_shows(folder / "__model__.json")
    assert shown["error"] is None
    reasons = dict(shown["unavailable"])
    assert reasons[files[0].name] == (f"values unavailable: no parameter file '{files[0].name}'")
    # The bytes "garb" read as the little-endian uint32 version field.
    assert reasons[files[1].name] == (
        f"values unavailable: Unsupported tensor version 1651663207 in '{files[1].name}' at byte 0"
    )
    assert len(reasons) == 2, "the other parameter files still show their values"
    assert shown["weights"].startswith(f"{len(files) - 2} of {len(files)} parameter files read")


# ----------------------------------------------------------------------- command line


def _cli(*args, timeout=20):
    return subprocess.run(
        [sys.executable, "-m", "netron_paddle_pir", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "70000", "m.json"], "argument -p/--port: 70000 is not a port number (0-65535)"),
        (["-p", "-3", "m.json"], "argument -p/--port: -3 is not a port number (0-65535)"),
        (["-p", "eighty", "m.json"], "argument -p/--port: 'eighty' is not a port number (0-65535)"),
        ([], "the following arguments are required: MODEL"),
        (["-b", "--no-browser", "m.json"], "not allowed with argument -b/--browse"),
        (["--colour", "m.json"], "unrecognized arguments: --colour"),
    ],
)
def test_bad_command_line_values(args, message):
    run = _cli(*args)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


def test_bad_model_paths(corpus, tmp_path):
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    cases = [
        (tmp_path / "absent.json", "no such model file"),
        (tmp_path, "is a folder: give the model file in it (model.json)"),
        (fifo, "not a regular file (a FIFO or a device cannot be a model)"),
    ]
    for path, problem in cases:
        run = _cli(str(path), "--no-browser")
        assert run.returncode == 2
        assert run.stderr.strip() == f"error: {path}: {problem}"


def test_port_in_use_is_named(corpus):
    with _busy_port() as sock:
        port = sock.getsockname()[1]
        run = _cli("-p", str(port), str(corpus / "mlp" / "model.json"), "--no-browser")
    assert run.returncode == 2
    assert run.stderr.strip() == (
        f"error: 127.0.0.1:{port}: port {port} is already in use (choose another with "
        "-p/--port, or leave it out for a free port)"
    )


def test_ports_beyond_65535_and_a_bad_host(corpus):
    model = str(corpus / "mlp" / "model.json")
    run = _cli("-p", "65535", model, model, "--no-browser")
    assert run.returncode == 2
    assert "2 models from port 65535 would need ports above 65535" in run.stderr
    run = _cli("--host", "no-such-host.invalid", model, "--no-browser")
    assert run.returncode == 2
    assert run.stderr.startswith("error: no-such-host.invalid:0: cannot listen here: ")
    assert "Traceback" not in run.stderr


# ---------------------------------------------------------------------------- server


def test_fifo_beside_the_model_is_not_served(corpus, tmp_path):
    folder = copy_model(corpus, "mlp", tmp_path)
    os.mkfifo(folder / "model.pdiparams.fifo")
    with Viewer() as viewer:
        url = viewer.add(folder / "model.json")
        start = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(url + "data/model.pdiparams.fifo", timeout=10)
        assert error.value.code == 404
        error.value.close()
        assert time.monotonic() - start < 5


def test_weights_are_streamed_not_read_whole(corpus, tmp_path):
    folder = copy_model(corpus, "mlp", tmp_path)
    big = folder / "model.pdiparams"
    size = 256 << 20
    with big.open("r+b") as handle:
        handle.truncate(size)  # sparse: no disk space used
    with Viewer() as viewer:
        url = viewer.add(folder / "model.json")
        tracemalloc.start()
        received = 0
        with urllib.request.urlopen(url + "data/model.pdiparams", timeout=60) as response:
            assert int(response.headers["Content-Length"]) == size
            while chunk := response.read(1 << 20):
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert received == size
    # The server thread and this reader share the process: both stay at a few chunks.
    assert peak < 32 << 20, f"peak Python memory {peak >> 20} MiB while serving {size >> 20} MiB"
    assert threading.active_count() >= 1
