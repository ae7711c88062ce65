#!/usr/bin/env bash
# The demo that `make demo` runs inside the throwaway cluster (see cluster.sh).
set -euo pipefail

psql() { "$RETRAIN_PGBIN/psql" -X -v ON_ERROR_STOP=1 "$@"; }

echo "==> CREATE EXTENSION retrain"
psql -q -c "CREATE EXTENSION retrain"
echo "==> SELECT retrain.version()"
psql -c "SELECT retrain.version()"
