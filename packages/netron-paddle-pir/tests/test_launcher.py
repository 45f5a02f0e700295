"""The launcher: one process serving several models correctly, offline, no update block,
clean Ctrl-C, and no Paddle needed."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import TESTS

from netron_paddle_pir.bundle import bundle
from netron_paddle_pir.server import WEB_DIR as WEB
from netron_paddle_pir.server import Viewer, netron_dir


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers, response.read()


def test_two_models_in_one_process_are_served_each_on_its_own(corpus):
    first, second = corpus / "mlp" / "model.json", corpus / "cnn_bn" / "model.json"
    with Viewer() as viewer:
        url1, url2 = viewer.add(first), viewer.add(second)
        assert url1 != url2
        for url, path in ((url1, first), (url2, second)):
            _, _, body = get(url + "data/model.json")
            assert body == path.read_bytes()
            _, _, params = get(url + "data/model.pdiparams")
            assert params == (path.parent / "model.pdiparams").read_bytes()


def test_index_has_model_metas_fresh_date_and_consent_cookie(corpus):
    with Viewer() as viewer:
        url = viewer.add(corpus / "mlp" / "model.json")
        _, headers, body = get(url)
        text = body.decode()
        assert '<meta name="file" content="/data/model.json">' in text
        assert '<meta name="version" content="0.0.0">' in text  # telemetry off
        date = re.search(r'<meta name="date" content="([^"]+)">', text).group(1)
        served = datetime.datetime.strptime(date, "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=datetime.timezone.utc
        )
        age = datetime.datetime.now(datetime.timezone.utc) - served
        assert abs(age.total_seconds()) < 120  # far from netron's 180-day "Please update" block
        assert "consent=" in headers["Set-Cookie"]


def test_overlay_and_upstream_modules(corpus):
    netron = netron_dir()
    with Viewer() as viewer:
        url = viewer.add(corpus / "mlp" / "model.json")
        _, _, ours = get(url + "paddle.js")
        assert b"paddle-upstream.js" in ours and b"paddle-pir.js" in ours
        _, _, upstream = get(url + "paddle-upstream.js")
        assert upstream == (netron / "paddle.js").read_bytes()
        _, headers, _ = get(url + "view.js")
        assert headers["Content-Type"].startswith("text/javascript")
        _, _, table = get(url + "pir-signatures.json")
        assert b'"paddle_version"' in table
    with Viewer(upstream_only=True) as viewer:
        url = viewer.add(corpus / "mlp" / "model.json")
        _, _, plain = get(url + "paddle.js")
        assert plain == (netron / "paddle.js").read_bytes()


def test_paddle_js_is_the_reader_in_one_file(corpus, tmp_path):
    """The served paddle.js is the bundle of the reader's modules and signature table: no
    static import is left (one request), and it opens models as the modules do. The code that
    reads the weights file is not in it: the bundle imports it from the launcher when the
    weights are read (after the draw). The bundle's first line is V8's compile hint (compile
    all of it with the script); the weights-file module has none (compiled when it runs)."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    with Viewer() as viewer:
        url = viewer.add(corpus / "mlp" / "model.json")
        _, headers, body = get(url + "paddle.js")
        later = re.findall(r"import\('\./([^']+)'\)", body.decode())
        assert sorted(later) == ["paddle-pir-pdiparams.js", "paddle-upstream.js"]
        _, _, pdiparams = get(url + "paddle-pir-pdiparams.js")
    assert headers["Content-Type"].startswith("text/javascript")
    text = body.decode()
    assert not re.search(r"^\s*(import\s|export\s*\{|export\s+default)", text, re.M)
    assert re.findall(r"^export .*", text, re.M) == ["export const ModelFactory = class {"]
    assert b"const tensorDesc = " in pdiparams and "tensorDesc" not in text
    assert text.split("\n", 1)[0] == "//# allFunctionsCalledOnLoad"
    assert b"allFunctionsCalledOnLoad" not in pdiparams
    (tmp_path / "paddle.mjs").write_text(text, encoding="utf-8")
    (tmp_path / "paddle-pir-pdiparams.js").write_bytes(pdiparams)
    (tmp_path / "package.json").write_text('{"type": "module"}', encoding="utf-8")
    js = TESTS / "js"
    script = f"""
        import {{ Context, leaves }} from {json.dumps((js / "context.mjs").as_uri())};
        const bundled = await import({json.dumps((tmp_path / "paddle.mjs").as_uri())});
        const modules = await import({json.dumps((WEB / "paddle.js").as_uri())});
        const seen = [];
        for (const file of process.argv.slice(1)) {{
            const shown = [];
            for (const reader of [bundled, modules]) {{
                const context = new Context(file);
                const factory = new reader.ModelFactory();
                await factory.match(context);
                const model = await factory.open(context);
                await context.value.weights;
                const props = model.metadata.map((m) => `${{m.name}}=${{m.value}}`);
                shown.push(JSON.stringify([leaves(model.modules[0]).length, props]));
            }}
            seen.push([shown[0] === shown[1], shown[0]]);
        }}
        console.log(JSON.stringify(seen));
    """
    models = [corpus / name / "model.json" for name in ("cnn_bn", "control_flow", "bert_1_pre")]
    run = subprocess.run(
        [node, "--input-type=module", "-e", script, *map(str, models)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    assert len(seen) == 3
    for same, shown in seen:
        assert same, shown
        assert "signatures=from Paddle" in shown and "weights=model.pdiparams (" in shown


def test_bundled_table_is_parsed_entry_by_entry_and_equals_the_json(tmp_path):
    """A JSON table with a large object member is bundled as lines parsed on first lookup (the
    signature table's 1,161 ops are not all parsed when the reader loads), kept in buckets by
    the key's first characters; what the code sees is the same as the parsed JSON: values, key
    order (also when keys of one bucket are not adjacent), `in`, absent keys."""
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    table = {
        "version": "1",
        "small": {"a": [1, 2]},
        "ops": {f"op{i}_{'x' * (i % 3)}": {"inputs": [f"x{i}"], "n": i / 3} for i in range(100)},
        "list": ["p", "q"],
    }
    table["ops"]["nested"] = {"inner": {"deep": [None, True, "t\tab", "new\nline"]}}
    table["mixed"] = {f"{'ab'[i % 2]}{i}": i for i in range(70)}
    table["mixed"]["x"] = "short key"
    (tmp_path / "t.json").write_text(json.dumps(table), encoding="utf-8")
    (tmp_path / "paddle.js").write_text(
        "import t from './t.json' with { type: 'json' };\nexport const T = t;\n", encoding="utf-8"
    )
    text = bundle(tmp_path).decode()
    assert "\\nop1_x\\t{" in text  # lines of "<key>\t<value>", not one JSON text
    members = json.loads(text.split('__tables["t.json"] = __table(', 1)[1].split(");\n", 1)[0])
    buckets = {key: (lines, order) for key, _, lines, order in members if lines is not None}
    assert sorted(buckets) == ["mixed", "ops"]
    assert sorted(buckets["ops"][0]) == ["ne", "op"] and buckets["ops"][1] is None
    assert sorted(buckets["mixed"][0]) == sorted({key[:2] for key in table["mixed"]})
    assert buckets["mixed"][1] == "\n".join(table["mixed"])  # keys of a bucket not adjacent
    (tmp_path / "b.mjs").write_text(text, encoding="utf-8")
    script = f"""
        const {{ T }} = await import({json.dumps((tmp_path / "b.mjs").as_uri())});
        const before = Object.keys(T.ops).length;
        console.log(JSON.stringify({{
            all: JSON.parse(JSON.stringify(T)),
            keys: Object.keys(T.ops),
            mixedKeys: Object.keys(T.mixed),
            mixed: [T.mixed.b10, T.mixed.a68, T.mixed.x, T.mixed.c, 'b3' in T.mixed, 'a' in T.mixed],
            has: ['op7_x' in T.ops, 'nope' in T.ops, 'constructor' in T.ops],
            absent: [T.ops.nope === undefined, T.ops.constructor === undefined, T.ops['op1_x\\t'] === undefined],
            same: T.ops.op5_xx === T.ops.op5_xx,
            before
        }}));
    """
    run = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    assert seen["all"] == table
    assert seen["keys"] == list(table["ops"]) and seen["before"] == 101
    assert seen["mixedKeys"] == list(table["mixed"])
    assert seen["mixed"] == [None, 68, "short key", None, True, False]
    assert seen["has"] == [True, False, False]
    assert seen["absent"] == [True, True, True]
    assert seen["same"] is True


def test_bundle_refuses_forms_it_does_not_translate(tmp_path):
    for code, problem in (
        ("import x from './b.js';\n", "unsupported import 'x'"),
        ("export default 1;\n", "unsupported statement 'export default 1;'"),
        ("export * from './b.js';\n", "unsupported statement"),
    ):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        (folder / "paddle.js").write_text("import './a.js';\nexport const A = 1;\n")
        (folder / "a.js").write_text(code)
        (folder / "b.js").write_text("export const B = 2;\n")
        with pytest.raises(ValueError, match=re.escape(problem)) as raised:
            bundle(folder)
        assert str(raised.value).startswith("a.js:1: ")


@pytest.mark.parametrize(
    "path",
    [
        "data/../../../etc/passwd",
        "data/%2e%2e/%2e%2e/etc/passwd",
        "../server.py",
        "nope.js",
        "data/missing.bin",
    ],
)
def test_outside_paths_are_404(corpus, path):
    with Viewer() as viewer:
        url = viewer.add(corpus / "mlp" / "model.json")
        with pytest.raises(urllib.error.HTTPError) as error:
            get(url + path)
        assert error.value.code == 404
        error.value.close()


def test_missing_model_is_a_clear_error(tmp_path):
    with Viewer() as viewer, pytest.raises(FileNotFoundError, match="no such model file"):
        viewer.add(tmp_path / "absent.json")


def _start(args, env=None):
    proc = subprocess.Popen(
        [sys.executable, "-m", "netron_paddle_pir", *args, "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    urls = []
    deadline = time.time() + 30
    while time.time() < deadline and len(urls) < len(args):
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(r"at (http://\S+)", line)
        if match:
            urls.append(match.group(1))
    return proc, urls


def test_cli_serves_models_prints_urls_and_exits_on_ctrl_c(corpus):
    models = [str(corpus / "mlp" / "model.json"), str(corpus / "control_flow" / "model.json")]
    proc, urls = _start(models)
    try:
        assert len(urls) == 2, proc.stderr.read() if proc.poll() is not None else urls
        for url, model in zip(urls, models):
            _, _, body = get(url + "data/model.json")
            assert body == Path(model).read_bytes()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Stopped." in out
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_works_without_paddle(corpus, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "paddle.py").write_text("raise ImportError('paddle hidden for this test')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import importlib.util, sys
        try:
            import paddle
        except ImportError:
            print('hidden')
        """),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "hidden" in check.stdout
    proc, urls = _start([str(corpus / "mlp" / "model.json")], env=env)
    try:
        assert len(urls) == 1
        status, _, _ = get(urls[0] + "data/model.json")
        assert status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)


def test_cli_help_and_errors(tmp_path):
    help_text = subprocess.run(
        [sys.executable, "-m", "netron_paddle_pir", "--help"], capture_output=True, text=True
    ).stdout
    for option in ("--port", "--host", "--no-browser", "MODEL"):
        assert option in help_text
    run = subprocess.run(
        [sys.executable, "-m", "netron_paddle_pir", str(tmp_path / "x.json"), "--no-browser"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert "no such model file" in run.stderr


def test_paddle_parts_fail_with_a_clear_message(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "paddle.py").write_text("raise ImportError('no paddle here')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "netron_paddle_pir.signatures",
            "--output",
            str(tmp_path / "t.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "paddlepaddle" in run.stderr and "paddlepaddle-gpu" in run.stderr
