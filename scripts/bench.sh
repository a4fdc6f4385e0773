#!/usr/bin/env bash
# make bench: start the services, push trades through every stage, measure, write docs/performance.md.
# The run gets a database of its own, dropped and created afresh (backoffice_bench), so the figures
# never depend on what the demo or an earlier bench left behind: compliance's account-day and
# credit limits would otherwise see yesterday's bench volume. Usage: scripts/bench.sh [--trades N]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
"$ROOT/scripts/services.sh" start
cd "$ROOT"
base="${DATABASE_URL%/*}"
bench_db="${BENCH_DATABASE:-backoffice_bench}"
"$PY" - "$base/postgres" "$bench_db" <<'PY'
import sys
import psycopg
url, name = sys.argv[1], sys.argv[2]
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.execute(f'CREATE DATABASE "{name}"')
PY
export DATABASE_URL="$base/$bench_db"
info "bench database: $bench_db (fresh)"
"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py load_reference_data >/dev/null
# A whole day's volume and nothing settles: raise the limits that would otherwise hold most
# trades in the exception queue (every rule still runs; see docs/performance.md).
"$PY" manage.py raise_limits --factor 1000 --reason "make bench: own database"
exec "$PY" manage.py bench "$@"
