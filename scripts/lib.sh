# Shared by every script: paths, defaults and one-line errors. Source it, don't run it.
# shellcheck shell=bash
set -euo pipefail

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
VAR_DIR="${VAR_DIR:-$ROOT/var}"
RUN_DIR="$VAR_DIR/run"
LOG_DIR="$VAR_DIR/log"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
mkdir -p "$RUN_DIR" "$LOG_DIR"

# Read .env (if any) so scripts and Django see the same configuration.
if [[ -f "$ROOT/.env" ]]; then
  set -a
  # shellcheck disable=SC1091
  source "$ROOT/.env"
  set +a
fi

PG_PORT="${PG_PORT:-55432}"
REDIS_PORT="${REDIS_PORT:-56379}"
WEB_PORT="${WEB_PORT:-8000}"
export DATABASE_URL="${DATABASE_URL:-postgresql://backoffice:backoffice@127.0.0.1:$PG_PORT/backoffice}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" && -f "$VAR_DIR/kafka/bootstrap" ]]; then
  KAFKA_BOOTSTRAP_SERVERS="$(cat "$VAR_DIR/kafka/bootstrap")"
fi
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
export DJANGO_SETTINGS_MODULE=backoffice.settings
export PYTHONUNBUFFERED=1

die() { echo "error: $*" >&2; exit 1; }
info() { echo "==> $*"; }

# The project's own PostgreSQL cluster is used unless DATABASE_URL points elsewhere.
own_postgres() { [[ "$DATABASE_URL" == *"127.0.0.1:$PG_PORT/"* ]]; }
own_redis() { [[ "$REDIS_URL" == "redis://127.0.0.1:$REDIS_PORT"* ]]; }

pg_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$dir" ]] || die "PostgreSQL server binaries are missing: run scripts/setup.sh (apt-get install postgresql)"
  echo "$dir"
}

# Run a command as the postgres system user when we are root (initdb refuses root).
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Wait for a condition command to succeed, with a deadline; never a bare sleep.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || return 1
    sleep 0.2
  done
}

# fresh_database NAME REASON: drop and create NAME on the server DATABASE_URL points at, point
# DATABASE_URL at it, migrate it, load the reference data and raise the limits (an audited change
# giving REASON), so a run's whole day flows to settlement and P&L instead of waiting in the
# exception queue. Bench and chaos each measure in databases of their own: nothing an earlier run
# or the demo left (a closed custodian day, a day's limit usage) can change their outcome.
fresh_database() {
  local name="$1" reason="$2"
  "$PY" - "${DATABASE_URL%/*}/postgres" "$name" <<'PY'
import sys
import psycopg
url, name = sys.argv[1], sys.argv[2]
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.execute(f'CREATE DATABASE "{name}"')
PY
  export DATABASE_URL="${DATABASE_URL%/*}/$name"
  "$PY" manage.py migrate --no-input -v 0
  "$PY" manage.py load_reference_data >/dev/null
  "$PY" manage.py raise_limits --factor 1000 --reason "$reason" >/dev/null
}
