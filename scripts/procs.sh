# The platform's own processes: one pid file and one log per process. Source it after lib.sh.
# shellcheck shell=bash

# name -> command (manage.py arguments). Consumers are named consume_<stage>; scale.sh runs
# consume_<stage>-2, -3 ... beside the first.
declare -A PROC_CMD=(
  [web]="runserver 127.0.0.1:$WEB_PORT --noreload"
  [relay_outbox]="relay_outbox"
)
# Stages in pipeline order; each has a manage.py consume_<stage> command once it exists.
STAGES=(capture compliance settlement reconciliation reporting)

proc_pid_file() { echo "$RUN_DIR/$1.pid"; }

proc_start() {  # name, manage.py args...
  local name="$1"; shift
  local pid_file; pid_file="$(proc_pid_file "$name")"
  if pid_alive "$pid_file"; then
    echo "$name already running (pid $(cat "$pid_file"))"
    return
  fi
  cd "$ROOT"
  setsid nohup "$PY" manage.py "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$pid_file"
  echo "started $name (pid $!)"
}

proc_start_raw() {  # name, command... (not manage.py)
  local name="$1"; shift
  local pid_file; pid_file="$(proc_pid_file "$name")"
  if pid_alive "$pid_file"; then
    echo "$name already running (pid $(cat "$pid_file"))"
    return
  fi
  cd "$ROOT"
  setsid nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$pid_file"
  echo "started $name (pid $!)"
}

# SIGTERM, wait (the loops finish their batch), report and kill what would not stop.
proc_stop() {
  local name="$1" pid_file pid
  pid_file="$(proc_pid_file "$name")"
  [[ -f "$pid_file" ]] || return 0
  pid="$(cat "$pid_file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for "$name" "${STOP_TIMEOUT:-30}" bash -c "! kill -0 $pid 2>/dev/null"; then
      echo "$name (pid $pid) would not stop within ${STOP_TIMEOUT:-30}s: killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stopped $name"
  fi
  rm -f "$pid_file"
}

known_procs() {  # every name with a pid file
  local f
  for f in "$RUN_DIR"/*.pid; do
    [[ -e "$f" ]] || continue
    f="$(basename "$f" .pid)"
    [[ "$f" == redis || "$f" == kafka-* ]] || echo "$f"
  done
}

stage_exists() { [[ -f "$ROOT/$(stage_app "$1")/management/commands/consume_$1.py" ]]; }
stage_app() {
  case "$1" in
    capture) echo trades ;;
    compliance) echo compliance ;;
    settlement|reconciliation) echo settlement ;;
    reporting) echo reporting ;;
    *) echo "unknown" ;;
  esac
}
