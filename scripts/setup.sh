#!/usr/bin/env bash
# Installs only what is missing: Debian packages, the Kafka jars, the Python venv. Idempotent.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || die "not root and no sudo: install $* as root, then rerun scripts/setup.sh"
  SUDO="sudo"
fi

apt_missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_missing+=(postgresql postgresql-contrib)
command -v redis-server >/dev/null || apt_missing+=(redis-server)
command -v kcat >/dev/null || apt_missing+=(kcat)
command -v java >/dev/null || apt_missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || apt_missing+=(maven)
# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium).
command -v chromium >/dev/null || apt_missing+=(chromium)
if (( ${#apt_missing[@]} )); then
  info "installing Debian packages: ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || die "apt-get update failed: check that Debian's package mirror is reachable"
  $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >"$LOG_DIR/apt.log" 2>&1 \
    || die "apt-get install ${apt_missing[*]} failed: see $LOG_DIR/apt.log"
  # Debian starts a system-wide Redis/PostgreSQL on install; the project runs its own on other
  # ports, so those are left alone.
fi

"$ROOT/scripts/kafka/kafka.sh" install

python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || python_bin=python3
"$python_bin" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "Python 3.11 is required ($python_bin is $("$python_bin" -V 2>&1)): set PYTHON=/path/to/python3.11"
if [[ ! -x "$PY" ]]; then
  info "creating the virtualenv in $VENV"
  "$python_bin" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  info "installing Python packages (requirements.txt)"
  "$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt" \
    || die "pip install -r requirements.txt failed (is PyPI reachable?)"
  echo "$want" > "$stamp"
fi
info "setup complete"
