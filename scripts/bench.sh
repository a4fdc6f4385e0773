#!/usr/bin/env bash
# make bench: start the services, push trades through every stage, measure, write docs/performance.md.
# The run gets a database of its own, dropped and created afresh (backoffice_bench), so the figures
# never depend on what the demo or an earlier bench left behind: compliance's account-day and
# credit limits would otherwise see yesterday's bench volume. Usage: scripts/bench.sh [--trades N]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$ROOT/scripts/services.sh" start
cd "$ROOT"
bench_db="${BENCH_DATABASE:-backoffice_bench}"
# A whole day's volume and nothing settles: fresh_database raises the limits that would otherwise
# hold most trades in the exception queue (every rule still runs; see docs/performance.md).
fresh_database "$bench_db" "make bench: own database"
info "bench database: $bench_db (fresh)"
exec "$PY" manage.py bench "$@"
