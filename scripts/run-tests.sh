#!/usr/bin/env bash
# Runs the whole suite against the services scripts/services.sh started, then the service-free
# and database tests again with the clock moved (a year ahead; a Saturday that is a market
# holiday), so no test passes only on the day it was written (docs/time.md).
# Arguments go to the first run only: scripts/run-tests.sh tests/trades -k calendar
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
"$PY" manage.py check --fail-level ERROR >/dev/null
"$PY" -m pytest -q "$@"
if (( $# )); then exit 0; fi
for moved in "+365d" "2027-12-25T15:00:00Z"; do
  info "the service-free and database tests again, clock moved: TEST_CLOCK=$moved"
  TEST_CLOCK="$moved" "$PY" -m pytest -q -m "not integration"
done
