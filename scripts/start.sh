#!/usr/bin/env bash
# Starts everything: services, schema, reference data, topics, the web app, every consumer, the
# outbox relay, and Celery worker and beat. Usage: scripts/start.sh [--cluster 3]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/procs.sh"

[[ -x "$PY" ]] || die "the virtualenv is missing: run scripts/setup.sh (or make demo) first"
"$ROOT/scripts/services.sh" start "$@"
# The cluster writes its bootstrap list; read it again.
[[ -f "$VAR_DIR/kafka/bootstrap" ]] && export KAFKA_BOOTSTRAP_SERVERS="$(cat "$VAR_DIR/kafka/bootstrap")"
replication=1
[[ "${1:-}" == --cluster ]] && replication=3

cd "$ROOT"
"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py ensure_topics --replication "$replication"
"$PY" manage.py load_reference_data
"$PY" manage.py load_collateral
"$PY" manage.py create_demo_users

for name in "${!PROC_CMD[@]}"; do
  # shellcheck disable=SC2086
  proc_start "$name" ${PROC_CMD[$name]}
done
for stage in "${STAGES[@]}"; do
  if stage_exists "$stage"; then proc_start "consume_$stage" "consume_$stage"; fi
done
if [[ -f "$ROOT/settlement/management/commands/run_custodian_simulator.py" ]]; then
  proc_start custodian_simulator run_custodian_simulator --seed "${DEMO_SEED:-42}"
fi
proc_start_raw celery_worker "$VENV/bin/celery" -A backoffice worker --concurrency 1 --loglevel INFO
proc_start_raw celery_beat "$VENV/bin/celery" -A backoffice beat --loglevel INFO --schedule "$VAR_DIR/celerybeat-schedule"

wait_for web 30 "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$WEB_PORT/healthz', timeout=2)" \
  || die "the web app did not answer on http://127.0.0.1:$WEB_PORT/healthz: see $LOG_DIR/web.log"
info "web UI: http://127.0.0.1:$WEB_PORT/  (logs in $LOG_DIR, pids in $RUN_DIR)"
