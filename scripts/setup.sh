#!/usr/bin/env bash
# Create .venv and install the project with its test extras.
# Without a GPU we install the CPU build of torch first (torch==2.13.0 is a local wheel on our
# build machines); with one, pip resolves the CUDA build from the range in pyproject.toml.
# Override with TORCH_SPEC, e.g. TORCH_SPEC="torch==2.8.0".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_SPEC:-}" ]; then
    pip install -q "$TORCH_SPEC"
  elif ! command -v nvidia-smi >/dev/null 2>&1; then
    pip install -q "torch==2.13.0"
  fi
fi
pip install -q -e ".[test]"
