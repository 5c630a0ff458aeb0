#!/usr/bin/env bash
# `make test`: lint, then every tier. Starts the local stack for the integration tier and stops
# what it started afterwards, whatever the outcome; the clusters tier starts and stops clusters of
# its own (other ports, its own var dir). Exit non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
VENV=.venv/bin
started_stack=0
cleanup() { [ "$started_stack" = 1 ] && "$VENV/musicbox" down; }
trap cleanup EXIT

failed=()
run() { local name=$1; shift; echo "==> $name"; "$@" || failed+=("$name"); }

run lint make -s lint
run unit "$VENV/pytest" -m unit -q -p no:cacheprovider
run component "$VENV/pytest" -m component -q -p no:cacheprovider
if "$VENV/musicbox" status >/dev/null 2>&1; then
  echo "==> the local stack is already up: the integration tier uses it and leaves it running"
else
  started_stack=1
  run "stack up" "$VENV/musicbox" up
fi
run integration "$VENV/pytest" -m integration -q -p no:cacheprovider
if [ "$started_stack" = 1 ]; then  # free the cores and memory for the clusters
  "$VENV/musicbox" down && started_stack=0
fi
run clusters "$VENV/pytest" -m clusters -q -p no:cacheprovider

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED tiers: ${failed[*]}"
  exit 1
fi
echo "all tiers passed"
