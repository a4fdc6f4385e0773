#!/usr/bin/env bash
# The backing services: PostgreSQL (own cluster), Redis (own instance), Kafka (scripts/kafka).
# Usage: scripts/services.sh start|stop|status [--cluster 3]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PGDATA="${PGDATA:-$VAR_DIR/pgdata}"
# initdb runs as the postgres user (it refuses root): when that user cannot reach the checkout
# (a clone under /root, say), keep the cluster in a folder of its own, named after the checkout.
if [[ "$(id -u)" == 0 ]] && ! runuser -u postgres -- test -x "$VAR_DIR" 2>/dev/null; then
  PGDATA="/var/lib/postgresql/backoffice-$(echo "$ROOT" | sha256sum | cut -c1-12)"
fi
PG_LOG="$LOG_DIR/postgres.log"
REDIS_PID="$RUN_DIR/redis.pid"

pg_start() {
  if ! own_postgres; then
    info "PostgreSQL: using DATABASE_URL (external server), not starting one"
    return
  fi
  local bin; bin="$(pg_bindir)"
  if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    info "PostgreSQL: initialising a cluster in $PGDATA"
    mkdir -p "$PGDATA"
    if [[ "$(id -u)" == 0 ]]; then chown postgres:postgres "$PGDATA"; chmod 700 "$PGDATA"; fi
    as_pg "$bin/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 \
      || die "initdb failed: see $LOG_DIR/initdb.log"
    cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PGDATA'
max_connections = 200
shared_buffers = 1GB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 15min
work_mem = 16MB
maintenance_work_mem = 256MB
CONF
  fi
  if as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    info "PostgreSQL: already running on 127.0.0.1:$PG_PORT"
  else
    if [[ "$(id -u)" == 0 ]] && ! runuser -u postgres -- test -w "$LOG_DIR" 2>/dev/null; then
      PG_LOG="$PGDATA/postgres.log"
    fi
    touch "$PG_LOG" 2>/dev/null || true
    if [[ "$(id -u)" == 0 ]]; then chown postgres:postgres "$PG_LOG"; fi
    # Commit timestamps date each row's transaction (the bench's publish -> P&L committed
    # latency); pg_stat_statements counts statements (the bench's statements per trade).
    as_pg "$bin/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t 60 \
      -o "-c track_commit_timestamp=on -c shared_preload_libraries=pg_stat_statements" start >/dev/null \
      || die "PostgreSQL did not start: see $PG_LOG"
    info "PostgreSQL: up on 127.0.0.1:$PG_PORT"
  fi
  # The role and database the app uses; idempotent.
  as_pg "$bin/psql" -h "$PGDATA" -p "$PG_PORT" -U postgres -qtA -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null
SELECT 'CREATE ROLE backoffice LOGIN SUPERUSER PASSWORD ''backoffice'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'backoffice')\gexec
SELECT 'CREATE DATABASE backoffice OWNER backoffice'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'backoffice')\gexec
SQL
}

pg_stop() {
  own_postgres || return 0
  local bin; bin="$(pg_bindir)"
  if as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null && info "PostgreSQL: stopped" \
      || echo "PostgreSQL would not stop: see $PG_LOG" >&2
  fi
}

redis_start() {
  if ! own_redis; then
    info "Redis: using REDIS_URL (external server), not starting one"
    return
  fi
  command -v redis-server >/dev/null || die "redis-server is missing: run scripts/setup.sh (apt-get install redis-server)"
  if pid_alive "$REDIS_PID"; then
    info "Redis: already running on 127.0.0.1:$REDIS_PORT"
    return
  fi
  mkdir -p "$VAR_DIR/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR_DIR/redis" --daemonize yes \
    --pidfile "$REDIS_PID" --logfile "$LOG_DIR/redis.log" --save "" --appendonly no
  wait_for "redis" 20 redis-cli -p "$REDIS_PORT" ping || die "Redis did not start: see $LOG_DIR/redis.log"
  info "Redis: up on 127.0.0.1:$REDIS_PORT"
}

redis_stop() {
  pid_alive "$REDIS_PID" || return 0
  local pid; pid="$(cat "$REDIS_PID")"  # Redis removes its pid file as it shuts down
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$pid"
  wait_for "redis stop" 20 bash -c "! kill -0 $pid 2>/dev/null" && info "Redis: stopped" \
    || echo "Redis would not stop (pid $pid)" >&2
}

status_line() { printf '%-24s %-5s %s\n' "$1" "$2" "$3"; }

services_status() {
  local bin; bin="$(pg_bindir)"
  if own_postgres; then
    if as_pg "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
      status_line postgres up "pid $(head -1 "$PGDATA/postmaster.pid") 127.0.0.1:$PG_PORT"
    else status_line postgres down "127.0.0.1:$PG_PORT"; fi
  else
    status_line postgres external "$DATABASE_URL"
  fi
  if own_redis; then
    if pid_alive "$REDIS_PID"; then status_line redis up "pid $(cat "$REDIS_PID") 127.0.0.1:$REDIS_PORT"
    else status_line redis down "127.0.0.1:$REDIS_PORT"; fi
  else
    status_line redis external "$REDIS_URL"
  fi
  "$ROOT/scripts/kafka/kafka.sh" status || true
}

cmd="${1:-}"; shift || true
case "$cmd" in
  start) pg_start; redis_start; "$ROOT/scripts/kafka/kafka.sh" start "$@" ;;
  stop) "$ROOT/scripts/kafka/kafka.sh" stop || true; redis_stop; pg_stop ;;
  status) services_status ;;
  postgres)  # postgres start|stop|restart: only the database (fault tests restart it)
    case "${1:-}" in
      start) pg_start ;;
      stop) pg_stop ;;
      restart) pg_stop; pg_start ;;
      *) die "usage: scripts/services.sh postgres start|stop|restart" ;;
    esac ;;
  *) die "usage: scripts/services.sh start|stop|status [--cluster 3] | postgres start|stop|restart" ;;
esac
