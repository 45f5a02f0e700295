"""Runs the reader's Node tests (node:test) over the corpus: reader, fuzz and layout tests."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import TESTS, node_binary

from netron_paddle_pir.server import netron_dir


@pytest.mark.parametrize("script", ["reader.test.mjs", "fuzz.test.mjs", "layout.test.mjs"])
def test_node_suite(corpus, script):
    node = node_binary()
    if not node:
        pytest.skip("node is not installed (tests/setup_browser.sh installs nothing for it)")
    env = dict(os.environ, PIR_CORPUS=str(corpus), NETRON_DIR=str(netron_dir()))
    run = subprocess.run(
        [node, "--test", "--test-reporter=spec", str(TESTS / "js" / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(run.stdout[-6000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "fail 0" in run.stdout or "ℹ fail 0" in run.stdout
    assert "skipped 0" in run.stdout, "every corpus model must be present"
