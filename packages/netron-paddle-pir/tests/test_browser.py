"""End-to-end in headless Chromium (Debian chromium + playwright-core from npm) through the
launcher: models open without error, node counts match the Python expectations, a convolution
shows named inputs and weight values, an if-region opens as a subgraph. The same run also opens a
trainable=False model with upstream netron's reader, to record the defect we fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TESTS, ci_models, node_binary

from netron_paddle_pir.server import Viewer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser


def _ready():
    if not node_binary():
        return "node is not installed"
    if not os.path.exists(CHROMIUM):
        return "chromium is not installed (tests/setup_browser.sh installs it as root)"
    if not (TESTS / "browser" / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (run tests/setup_browser.sh)"
    return None


def run_cases(cases, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"chromium": CHROMIUM, "cases": cases}))
    run = subprocess.run(
        [node_binary(), str(TESTS / "browser" / "e2e.mjs"), str(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=TESTS / "browser",
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return {item["name"]: item for item in json.loads(run.stdout)}


@pytest.fixture(scope="module")
def expected(corpus):
    return json.loads((corpus / "expectations.json").read_text())


def test_models_in_chromium(corpus, expected, tmp_path):
    reason = _ready()
    if reason:
        pytest.skip(reason)
    # The corpus file marks the models every browser run opens ("browser": BERT-style masked
    # encoders, ResNet50, a 4,000-op jit.save model); these four check particular views.
    names = ["cnn_bn", "control_flow", "static_untrainable", "multi_io"]
    names += [m["target"].split("/")[0] for m in ci_models() if "browser" in m["tags"]]
    # A damaged weights file: the graph must still open (values marked unavailable).
    damaged = tmp_path / "mlp_damaged"
    shutil.copytree(corpus / "mlp", damaged)
    params = damaged / "model.pdiparams"
    params.write_bytes(params.read_bytes()[:100])
    # A legacy (pre-PIR) program: the reader passes it on to Netron's own paddle.js.
    legacy = tmp_path / "legacy"
    code = (
        "import paddle, sys; m = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.ReLU());"
        "spec = [paddle.static.InputSpec([None, 4], 'float32', 'x')];"
        "paddle.jit.save(paddle.jit.to_static(m, input_spec=spec), sys.argv[1])"
    )
    env = dict(os.environ, FLAGS_enable_pir_api="0")
    subprocess.run([sys.executable, "-c", code, str(legacy / "model")], env=env, check=True)
    with Viewer() as viewer:
        cases = [
            {"name": "mlp_damaged", "url": viewer.add(damaged / "model.json")},
            {"name": "legacy", "url": viewer.add(legacy / "model.pdmodel")},
        ]
        for name in names:
            url = viewer.add(corpus / name / "model.json")
            case = {"name": name, "url": url}
            if name == "cnn_bn":
                case["conv"] = True
                case["screenshot"] = str(tmp_path / "cnn_bn.png")
            if name == "control_flow":
                case["region"] = {"node": "if", "screenshot": str(tmp_path / "then.png")}
            if expected[f"{name}/model.json"]["top_modules"]:
                case["module"] = {}
            cases.append(case)
        results = run_cases(cases, tmp_path)
    assert results["legacy"]["message"] == "" and results["legacy"]["errors"] == []
    assert results["legacy"]["nodes"] >= 2, "Netron's paddle.js drew the legacy program"
    for name in ["mlp_damaged", *names]:
        result = results[name]
        want = expected[f"{name.replace('_damaged', '')}/model.json"]
        assert result["message"] == "", f"{name}: Netron shows an error: {result['message']}"
        assert result["errors"] == [], f"{name}: page errors {result['errors']}"
        assert result["external"] == [], f"{name}: requests outside the local server"
        assert result["nodes"] == want["top_nodes"], f"{name}: node count on the page"
        assert [
            text.split("float")[0].split("int")[0].split("bool")[0] for text in result["inputs"]
        ] == want["inputs"]
        assert len(result["outputs"]) == len(want["outputs"])

    # Module nodes: entering one shows its nodes, with the values that cross its boundary as
    # the inputs and outputs of its graph; the back button returns to the main graph.
    entered = [name for name in names if "module" in results[name]]
    assert {"bert_1_pre", "bert_2_post", "resnet50", "encoder118"} <= set(entered)
    for name in entered:
        result, want = results[name], expected[f"{name}/model.json"]
        inside = result["module"]
        assert inside["message"] == "" and result["errors"] == [], f"{name}: {inside['message']}"
        title = inside["path"][-1].lstrip("\u2026")
        module = next(m for m in want["top_modules"] if m.endswith(title))
        assert inside["nodes"] == want["top_modules"][module], f"{name}: nodes inside {module}"
        assert len(inside["inputs"]) >= 1 and len(inside["outputs"]) >= 1, name
        assert result["back"]["nodes"] == want["top_nodes"], f"{name}: back to the main graph"

    conv = results["cnn_bn"]
    rows = dict(tuple(row) for row in conv["sidebar"])
    assert rows["input"] == "name: image"
    first_conv = next(n for n in want_nodes(expected, "cnn_bn") if n["type"] == "pd_op.conv2d")
    filter_name = first_conv["inputs"][1]["values"][0][1]
    assert rows["filter"] == f"name: {filter_name}"
    reference = next(
        w for w in expected["cnn_bn/model.json"]["weights"] if w["name"] == filter_name
    )
    assert f"tensor: float32[{','.join(map(str, reference['shape']))}]" in conv["filter"]
    # Netron prints the stored float32 values as JS numbers: the same shortest repr as Python's.
    for value in reference["first"][:3]:
        assert repr(value) in conv["filter"]

    region = results["control_flow"]["region"]
    assert region["message"] == ""
    then_ops = [op for op in first_region_ops(corpus / "control_flow" / "model.json")]
    assert sorted(region["types"]) == sorted(then_ops)


@pytest.mark.slow
def test_bench_models_in_chromium(tmp_path):
    """The corpus file's 'bench' models (a 10,032-op encoder, a 12-layer BERT-style encoder,
    DenseNet121, a 250-block MLP, ...) open without an error and a module node can be entered.
    Builds them first (minutes); PIR_CORPUS reuses a folder that holds them."""
    import expectations

    from netron_paddle_pir.corpus import build, load_spec

    reason = _ready()
    if reason:
        pytest.skip(reason)
    entries = [e for e in load_spec(TESTS / "models.json") if "bench" in e.get("tags", [])]
    folder = Path(os.environ.get("PIR_CORPUS") or tmp_path / "bench")
    missing = [e for e in entries if not (folder / e["target"]).exists()]
    if missing:
        build(folder, quiet=True, entries=missing)
    with Viewer() as viewer:
        cases = []
        wants = {}
        for entry in entries:
            name = entry["target"].split("/")[0]
            wants[name] = expectations.expect(folder / entry["target"])
            case = {"name": name, "url": viewer.add(folder / entry["target"])}
            if wants[name]["top_modules"]:
                case["module"] = {}
            cases.append(case)
        results = run_cases(cases, tmp_path)
    for name, want in wants.items():
        result = results[name]
        assert result["message"] == "" and result["errors"] == [], f"{name}: {result}"
        assert result["nodes"] == want["top_nodes"], name
        if want["top_modules"]:
            assert result["module"]["message"] == "", name
            title = result["module"]["path"][-1].lstrip("\u2026")
            module = next(m for m in want["top_modules"] if m.endswith(title))
            assert result["module"]["nodes"] == want["top_modules"][module], name


def test_upstream_reader_fails_on_trainable_false_in_the_same_browser(corpus, tmp_path):
    """Records the upstream defect the README compares against (netron 9.3.3 paddle.js)."""
    reason = _ready()
    if reason:
        pytest.skip(reason)
    with Viewer(upstream_only=True) as viewer:
        url = viewer.add(corpus / "static_untrainable" / "model.json")
        results = run_cases([{"name": "upstream", "url": url}], tmp_path)
    assert "not iterable" in results["upstream"]["message"]


def want_nodes(expected, name):
    return expected[f"{name}/model.json"]["nodes"]


def first_region_ops(path):
    """Types of the nodes the then-region of the first if should show (expectations' rules)."""
    from expectations import Walk

    doc = json.loads(path.read_text())
    walk = Walk(doc)
    for op in doc["program"]["regions"][0]["blocks"][0]["ops"]:
        if op["#"] == "1.if":
            block = op["regions"][0]["blocks"][0]
            return [inner["#"].split(".", 1)[1] for inner in walk.nodes(block)]
    raise AssertionError("no if op")
