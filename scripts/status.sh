#!/usr/bin/env bash
# One line per service and per platform process (up/down, pid), then consumer lag.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/procs.sh"

"$ROOT/scripts/services.sh" status
for name in $(known_procs); do
  pid_file="$(proc_pid_file "$name")"
  if pid_alive "$pid_file"; then printf '%-24s %-5s pid %s\n' "$name" up "$(cat "$pid_file")"
  else printf '%-24s %-5s (pid file left by a process that died: see %s)\n' "$name" down "$LOG_DIR/$name.log"; fi
done
cd "$ROOT" && "$PY" manage.py streaming_status 2>/dev/null || echo "consumer lag: unavailable (PostgreSQL or Kafka down)"
