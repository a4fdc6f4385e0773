#!/usr/bin/env bash
# make chaos-mutants: shows that a deliberately broken build makes the chaos run fail. For each
# patch in scripts/chaos/mutants/ it copies the working tree (the files git tracks, as they are on
# disk) to var/mutants/<name>/tree, applies the patch there and runs that copy's
# `scripts/chaos.sh --single-only` with the arguments on the patch's `chaos-args:` line, on a
# PostgreSQL and a Kafka broker of its own (ports 55435 and 41092..., beside the dev services and
# `make chaos`), with this checkout's virtualenv and Kafka jars. Prints one line per run: which
# checks failed, the seed, how long it took.
#
# Usage: scripts/chaos-mutants.sh [--control] [NAME...]
#   NAME        only these mutants (file names without .patch); default: all
#   --control   also run the unpatched tree with each distinct set of chaos arguments: it must pass,
#               so a mutant's failure is the mutation's doing and not the short configuration's
#
# Exit 0 when chaos failed for every mutant (and passed for every control run); 1 when a mutant
# survived, a control run failed, or a run ended without a result table (see its log).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MUTANTS_DIR="$ROOT/scripts/chaos/mutants"
WORK_DIR="$ROOT/var/mutants"
MUT_PG_PORT="${MUTANTS_PG_PORT:-55435}"
MUT_KAFKA_PORT="${MUTANTS_KAFKA_PORT:-41092}"
VENV="${VENV:-$ROOT/.venv}"

die() { echo "error: $*" >&2; exit 1; }
info() { echo "==> $*"; }

control=0 names=()
for arg in "$@"; do
  case "$arg" in
    --control) control=1 ;;
    -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$arg' (usage: scripts/chaos-mutants.sh [--control] [NAME...])" ;;
    *) names+=("$arg") ;;
  esac
done
if ((${#names[@]} == 0)); then
  for patch in "$MUTANTS_DIR"/*.patch; do
    if [[ -f "$patch" ]]; then names+=("$(basename "$patch" .patch)"); fi
  done
fi
((${#names[@]})) || die "no mutants in $MUTANTS_DIR"
for name in "${names[@]}"; do
  [[ -f "$MUTANTS_DIR/$name.patch" ]] || die "no mutant '$name' ($MUTANTS_DIR/$name.patch)"
done
[[ -x "$VENV/bin/python" ]] || die "no virtualenv at $VENV: run 'make setup' (scripts/setup.sh)"

# chaos_args NAME: the chaos arguments a mutant's patch names on its `chaos-args:` line.
chaos_args() {
  local line
  line="$(sed -n 's/^chaos-args:[[:space:]]*//p' "$MUTANTS_DIR/$1.patch" | head -n 1)"
  [[ -n "$line" ]] || die "$1.patch has no 'chaos-args:' line (e.g. chaos-args: --seed 1 --trades 20000)"
  echo "$line"
}

# stop_leftovers DIR: stop the PostgreSQL and Kafka a killed earlier run may have left in DIR.
stop_leftovers() {
  local dir="$1"
  [[ -d "$dir/var" && -x "$dir/tree/scripts/services.sh" ]] || return 0
  VAR_DIR="$dir/var" KAFKA_LIBS_DIR="$ROOT/var/kafka-libs" KAFKA_PORT_BASE="$MUT_KAFKA_PORT" \
    "$dir/tree/scripts/kafka/kafka.sh" stop >/dev/null 2>&1 || true
  VAR_DIR="$dir/var" PG_PORT="$MUT_PG_PORT" VENV="$VENV" \
    DATABASE_URL="postgresql://backoffice:backoffice@127.0.0.1:$MUT_PG_PORT/backoffice" \
    "$dir/tree/scripts/services.sh" postgres stop >/dev/null 2>&1 || true
}

# copy_tree DEST: the files git tracks, as they are in the working tree (uncommitted edits too).
copy_tree() {
  mkdir -p "$1"
  (cd "$ROOT" && git ls-files -z) |
    while IFS= read -r -d '' file; do
      if [[ -e "$ROOT/$file" || -L "$ROOT/$file" ]]; then printf '%s\0' "$file"; fi
    done |
    tar -C "$ROOT" --null -T - -cf - | tar -C "$1" -xf -
}

RESULTS=()
failed=0

# run NAME PATCH|"" ARGS...: one chaos run of a copy of the tree, mutated by PATCH if given.
run() {
  local name="$1" patch="$2" dir log started rc=0 seed fails outcome
  shift 2
  dir="$WORK_DIR/$name"
  log="$dir/chaos.log"
  stop_leftovers "$dir"
  rm -rf "$dir"
  copy_tree "$dir/tree"
  if [[ -n "$patch" ]]; then
    # The ceiling keeps git from finding this checkout above the copy: it patches like patch(1).
    (cd "$dir/tree" && GIT_CEILING_DIRECTORIES="$dir" git apply "$patch") ||
      die "$(basename "$patch") does not apply to the working tree: regenerate it"
  fi
  info "$name: scripts/chaos.sh --single-only $* (log: ${log#"$ROOT"/})"
  started=$SECONDS
  env -u ROOT -u PGDATA CHAOS_VAR_DIR="$dir/var" CHAOS_PG_PORT="$MUT_PG_PORT" \
    CHAOS_KAFKA_PORT="$MUT_KAFKA_PORT" KAFKA_LIBS_DIR="$ROOT/var/kafka-libs" VENV="$VENV" \
    "$dir/tree/scripts/chaos.sh" --single-only "$@" >"$log" 2>&1 || rc=$?
  seed="$(sed -n 's/^chaos seed \([0-9]*\).*/\1/p' "$log" | head -n 1)"
  fails="$(sed -n 's/^| \(.*\) | FAIL | .*/\1/p' "$log" | paste -sd ';' - | sed 's/;/; /g')"
  sed -n '/^| check | result/,/^$/p; /^==> \|^chaos seed\|^seed \|^published\|^process restarts/p' \
    "$log" | sed 's/^/    /'
  if ! grep -q '^| check | result' "$log"; then
    outcome="ERROR (no result table, exit $rc)"
    failed=1
  elif [[ -n "$patch" ]]; then
    if ((rc != 0)) && [[ -n "$fails" ]]; then outcome=caught; else outcome=SURVIVED; failed=1; fi
  else
    if ((rc == 0)) && [[ -z "$fails" ]]; then outcome=passed; else outcome="FAILED"; failed=1; fi
  fi
  RESULTS+=("$(printf '%-24s %-9s %-6s %5ss  %s' "$name" "$outcome" "${seed:--}" \
    "$((SECONDS - started))" "${fails:-none}")")
}

# has ITEM LIST...: whether ITEM is one of LIST.
has() {
  local item="$1" other
  shift
  for other in "$@"; do [[ "$other" == "$item" ]] && return 0; done
  return 1
}

control_args=() # each distinct set of chaos arguments, in mutant order
for name in "${names[@]}"; do
  args="$(chaos_args "$name")"
  if ! has "$args" ${control_args[@]+"${control_args[@]}"}; then control_args+=("$args"); fi
  # shellcheck disable=SC2086 # the chaos-args line is a list of words
  run "$name" "$MUTANTS_DIR/$name.patch" $args
done
if ((control)); then
  for n in "${!control_args[@]}"; do
    # shellcheck disable=SC2086
    run "control-$((n + 1))" "" ${control_args[$n]}
  done
fi

echo
printf '%-24s %-9s %-6s %6s  %s\n' run outcome seed time "failed checks"
printf '%s\n' "${RESULTS[@]}"
if ((failed)); then
  echo "chaos-mutants: FAILED (a mutant survived, a control run failed, or a run gave no result)"
else
  echo "chaos-mutants: every mutant made chaos fail"
fi
exit "$failed"
