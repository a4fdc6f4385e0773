#!/usr/bin/env bash
# make chaos: a seeded fault schedule while >= 100,000 trades flow, on a PostgreSQL cluster and a
# Kafka broker of its own (var/chaos, ports 55433 and 39092...) because it restarts both; then the
# same on a three-node cluster losing a broker. Prints a pass/fail table and the seed; results go
# to docs/reliability.md. Usage: scripts/chaos.sh [--single-only] [--trades N] [--seed S] [--rate R]
# (--single-only skips phase 2). CHAOS_VAR_DIR, CHAOS_PG_PORT and CHAOS_KAFKA_PORT move the run
# elsewhere, so a second run (scripts/chaos-mutants.sh) can go beside this one. Each phase gets a
# fresh database of its own (backoffice, then backoffice_cluster; both stay for a look afterwards).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VAR_DIR="${CHAOS_VAR_DIR:-$ROOT/var/chaos}" PG_PORT="${CHAOS_PG_PORT:-55433}"
export KAFKA_PORT_BASE="${CHAOS_KAFKA_PORT:-39092}" KAFKA_HEAP=512m
export DATABASE_URL="postgresql://backoffice:backoffice@127.0.0.1:$PG_PORT/backoffice"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT_BASE"
export OTEL_TRACES_EXPORTER=none
source "$ROOT/scripts/lib.sh"
cd "$ROOT"

phases=both args=()
for arg in "$@"; do
  if [[ "$arg" == --single-only ]]; then phases=single; else args+=("$arg"); fi
done

cleanup() { "$ROOT/scripts/kafka/kafka.sh" stop >/dev/null 2>&1 || true; "$ROOT/scripts/services.sh" postgres stop >/dev/null 2>&1 || true; }
trap cleanup EXIT

# A database per phase (fresh_database, scripts/lib.sh), because the checks compare whole days and
# a custodian day closes once: in a shared database an earlier phase's closed days would absorb a
# later phase's settle days (T+1 and T+2 markets make them meet on most weekdays), and the
# outcome would depend on the day the run starts (docs/reliability.md).

"$ROOT/scripts/services.sh" postgres start
fresh_database backoffice "make chaos: own database"
rm -rf "$VAR_DIR/kafka/single"
"$ROOT/scripts/kafka/kafka.sh" start

info "phase 1: single broker, every fault"
status=0
# Two consumers per stage: the zombie's partitions pass to the other one (a later --consumers wins).
TOPIC_PREFIX="chaos$(date +%s)." "$PY" manage.py chaos --consumers 2 ${args[@]+"${args[@]}"} || status=1
if [[ "$phases" == single ]]; then exit $status; fi

info "phase 2: three-node cluster, a broker lost mid-run (database backoffice_cluster)"
"$ROOT/scripts/kafka/kafka.sh" stop
fresh_database backoffice_cluster "make chaos: own database"
rm -rf "$VAR_DIR/kafka/cluster"
"$ROOT/scripts/kafka/kafka.sh" start --cluster 3
KAFKA_BOOTSTRAP_SERVERS="$(cat "$VAR_DIR/kafka/bootstrap")" TOPIC_PREFIX="chaos$(date +%s)c."
export KAFKA_BOOTSTRAP_SERVERS TOPIC_PREFIX
"$PY" manage.py ensure_topics --replication 3 >/dev/null
"$PY" manage.py chaos --trades 20000 --kills 5 --section cluster || status=1
exit $status
