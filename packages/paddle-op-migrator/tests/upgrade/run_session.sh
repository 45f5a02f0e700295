#!/usr/bin/env bash
# Session test-paddle-op-migrator-upgrade (run by nox inside the Paddle 3.3.1 session venv):
#  1. a Paddle 2.6.2 venv (made once, then reused: $PADDLE262_VENV, default .nox/ of the repo),
#  2. old inference models written and run by Paddle 2.6.2 (make_old_models.py),
#  3. pytest with Paddle 3.3.1: upgrade every model and compare with the 2.6.2 outputs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pkg="$(cd "$here/../.." && pwd)"
repo="$(cd "$pkg/../.." && pwd)"
venv="${PADDLE262_VENV:-$repo/.nox/paddle-op-migrator-paddle262}"
marker="$venv/.made-by-paddle-op-migrator"
if ! "$venv/bin/python" -c "import paddle, sys; sys.exit(paddle.__version__ != '2.6.2')" 2>/dev/null; then
  if [ -e "$venv" ] && [ ! -e "$marker" ]; then
    echo "error: $venv exists and was not made by this session; set PADDLE262_VENV to another folder" >&2
    exit 2
  fi
  rm -rf "$venv"
  python -m venv "$venv"
  touch "$marker"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "paddlepaddle==2.6.2" "numpy<2"
fi
models="$pkg/build/upgrade-old-models"
rm -rf "$models"
OMP_NUM_THREADS=1 "$venv/bin/python" "$here/make_old_models.py" "$models" \
  "$pkg/src/paddle_op_migrator/data/task1.txt" "$pkg/src/paddle_op_migrator/data/task2.txt"
PADDLE_OP_MIGRATOR_OLD_MODELS="$models" OMP_NUM_THREADS=1 python -m pytest "$here" -ra "$@"
