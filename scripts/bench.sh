#!/usr/bin/env bash
# make bench: start the services, push trades through every stage, measure, write docs/performance.md.
# Usage: scripts/bench.sh [--trades N]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$ROOT/scripts/services.sh" start
cd "$ROOT"
"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py load_reference_data >/dev/null
exec "$PY" manage.py bench "$@"
