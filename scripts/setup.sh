#!/usr/bin/env bash
# Create .venv and install the project with its test extras (about a minute the first time).
#
# Which PyTorch build:
# - TORCH_SPEC set (e.g. TORCH_SPEC="torch==2.8.0"): exactly that, from the package index.
# - TORCH_INDEX_URL set: torch from that index, e.g. PyTorch's CPU-only wheel index (see the
#   install page of pytorch.org) for a small CPU build on any Linux machine.
# - otherwise, without nvidia-smi: torch==2.13.0, a CPU build on our build machines.
# - otherwise (a GPU): pip resolves torch from the range in pyproject.toml; on Linux the default
#   package index serves the build that bundles the CUDA libraries (several GB).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_SPEC:-}" ]; then
    echo "setup: installing $TORCH_SPEC"
    pip install -q "$TORCH_SPEC"
  elif [ -n "${TORCH_INDEX_URL:-}" ]; then
    echo "setup: installing torch from $TORCH_INDEX_URL"
    pip install -q torch --index-url "$TORCH_INDEX_URL"
  elif ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "setup: no GPU seen; installing torch==2.13.0 (set TORCH_SPEC or TORCH_INDEX_URL to choose another build)"
    pip install -q "torch==2.13.0"
  else
    echo "setup: GPU seen; pip resolves a CUDA build of torch from pyproject.toml's range (a large download)"
  fi
fi
echo "setup: installing adversarial_seg and its dependencies into .venv"
pip install -q -e ".[test]"
echo "setup: done; activate with '. .venv/bin/activate'"
