#!/usr/bin/env bash
# Runs the whole suite against the services scripts/services.sh started.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
"$PY" manage.py check --fail-level ERROR >/dev/null
exec "$PY" -m pytest -q "$@"
