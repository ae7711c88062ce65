#!/usr/bin/env bash
# The demo that `make demo` runs inside the throwaway cluster (see cluster.sh):
# test/demo.py tells the story, test/trainer.py trains the models.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
exec "$RETRAIN_PYTHON" -u demo.py
