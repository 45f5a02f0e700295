import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import minitree  # noqa: E402


@pytest.fixture(scope="session")
def pristine_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("paddle") / "Paddle"
    minitree.build_tree(root, git=shutil.which("git") is not None)
    return root


@pytest.fixture()
def tree(pristine_tree, tmp_path):
    dst = tmp_path / "Paddle"
    shutil.copytree(pristine_tree, dst, symlinks=True)
    return dst
