#!/usr/bin/env bash
# Set up (if needed) and run the demo: synthetic prostate phantoms, hybrid scheme, 2-fold
# cross-validation on the CPU (or the GPU when there is one). Extra arguments go to seg-train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
seg-train --config configs/demo.yaml --output "runs/demo-$(date +%Y%m%d-%H%M%S)" "$@"
