#!/usr/bin/env bash
# Stops every platform process (SIGTERM, wait, report), then the services.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/procs.sh"

for name in $(known_procs); do proc_stop "$name"; done
"$ROOT/scripts/services.sh" stop
left="$(pgrep -f "$ROOT/(manage.py|.venv/bin/celery)" || true)"
[[ -z "$left" ]] || { echo "still running: $left" >&2; exit 1; }
info "everything stopped"
