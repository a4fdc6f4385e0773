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
# A bench puts a whole day's volume through 24 accounts with no custodian settling anything, so
# counterparty exposure only grows: after ~10,000 trades CREDIT_LIMIT, and after ~50,000 the
# account-day notional limit, would send most trades to the exception queue and the stages after
# compliance would idle. Raise both 1,000x in this database: every rule still runs on every trade,
# the flow just stays representative (see docs/performance.md).
"$PY" - <<'PY'
import os
import psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    conn.execute("UPDATE trades_counterparty SET credit_limit = credit_limit * 1000")
    conn.execute(
        "UPDATE compliance_compliancerule SET threshold = threshold * 1000"
        " WHERE code = 'MAX_NOTIONAL_ACCOUNT_DAY'"
    )
PY
exec "$PY" manage.py bench "$@"
