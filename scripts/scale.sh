#!/usr/bin/env bash
# scripts/scale.sh STAGE N: run N consumers of STAGE in its one consumer group.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/procs.sh"

stage="${1:-}"; count="${2:-}"
[[ -n "$stage" && "$count" =~ ^[0-9]+$ ]] || die "usage: scripts/scale.sh STAGE N (stages: ${STAGES[*]})"
stage_exists "$stage" || die "no consumer for stage '$stage' (stages: ${STAGES[*]})"
for ((i = 1; i <= count; i++)); do
  name="consume_$stage"; (( i > 1 )) && name="consume_$stage-$i"
  proc_start "$name" "consume_$stage"
done
for name in $(known_procs); do
  if [[ "$name" =~ ^consume_${stage}-([0-9]+)$ ]] && (( BASH_REMATCH[1] > count )); then proc_stop "$name"; fi
done
(( count > 0 )) || proc_stop "consume_$stage"
info "$stage: $count consumer(s)"
