#!/usr/bin/env bash
# The project's own Apache Kafka broker (KRaft, combined broker+controller), from Maven
# Central jars. See docs/kafka.md.
#
#   kafka.sh install                 copy the broker jars into var/kafka-libs (idempotent)
#   kafka.sh start [--cluster N]     single node (default) or N combined nodes on this host
#   kafka.sh stop                    SIGTERM every node, SIGKILL what will not stop in time
#   kafka.sh status                  one line per node: up/down, pid, port
#   kafka.sh kill-node N             SIGKILL node N (fault tests)
#   kafka.sh start-node N            (re)start node N of the current mode and wait for it
#
# Environment:
#   ROOT              repo root (default: two levels above this script)
#   VAR_DIR           state dir: pids, logs, data, bootstrap (default: $ROOT/var)
#   KAFKA_LIBS_DIR    jar dir (default: $ROOT/var/kafka-libs, shared by every VAR_DIR)
#   KAFKA_PORT_BASE   client port of node 1 (default 9092); node i listens on
#                     base+2(i-1), its controller on base+2(i-1)+1
#   KAFKA_PARTITIONS  default num.partitions (default 4)
#   KAFKA_HEAP        JVM heap per node (default 1g single, 512m per cluster node)
#   KAFKA_START_TIMEOUT / KAFKA_STOP_TIMEOUT   seconds (default 60 / 30)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${ROOT:-$(cd "$SCRIPT_DIR/../.." && pwd)}"
VAR_DIR="${VAR_DIR:-$ROOT/var}"
LIBS_DIR="${KAFKA_LIBS_DIR:-$ROOT/var/kafka-libs}"
POM="$SCRIPT_DIR/pom.xml"
LOG4J_CONFIG="$SCRIPT_DIR/log4j2.properties"
RUN_DIR="$VAR_DIR/run"
LOG_DIR="$VAR_DIR/log"
STATE_DIR="$VAR_DIR/kafka"
PORT_BASE="${KAFKA_PORT_BASE:-9092}"
PARTITIONS="${KAFKA_PARTITIONS:-4}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
STARTED_MARKER="Kafka Server started"
INSTALL_HINT="apt-get install -y openjdk-17-jre-headless maven"

say() { printf 'kafka: %s\n' "$*"; }
die() { printf 'kafka: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '4,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

# ---------------------------------------------------------------- prerequisites

# require_tools java [mvn]: one line naming what is missing and how to get it.
require_tools() {
    local missing=() tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        local names="${missing[*]}"
        die "${names// / and } not found: install with '$INSTALL_HINT'"
    fi
    local version major
    version="$(java -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n1)"
    major="${version%%.*}"
    if is_uint "$major" && ((major < 17)); then
        die "java $version is too old (Kafka 4 needs 17+): install with '$INSTALL_HINT'"
    fi
}

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

libs_installed() {
    [[ -f "$LIBS_DIR/.installed" ]] && [[ "$(cat "$LIBS_DIR/.installed")" == "$(pom_hash)" ]]
}

cmd_install() {
    if libs_installed; then
        say "jars already installed in $LIBS_DIR ($(find "$LIBS_DIR" -name '*.jar' | wc -l) jars)"
        return 0
    fi
    require_tools java mvn
    say "fetching Kafka jars with Maven into $LIBS_DIR"
    local tmp
    tmp="$(mktemp -d "${LIBS_DIR%/}.tmp.XXXXXX")"
    if ! mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$tmp" >"$tmp.mvn.log" 2>&1; then
        tail -n 20 "$tmp.mvn.log" >&2
        rm -rf "$tmp" "$tmp.mvn.log"
        die "maven could not fetch the jars (see above)"
    fi
    rm -f "$tmp.mvn.log"
    pom_hash >"$tmp/.installed"
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    say "installed $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars in $LIBS_DIR"
}

# ---------------------------------------------------------------- node helpers

client_port() { echo $((PORT_BASE + 2 * ($1 - 1))); }
controller_port() { echo $((PORT_BASE + 2 * ($1 - 1) + 1)); }

node_name() { echo "$1-$2"; }                    # mode, id -> single-1 / cluster-2
node_dir() { echo "$STATE_DIR/$1/node-$2"; }
pid_file() { echo "$RUN_DIR/kafka-$(node_name "$1" "$2").pid"; }
log_file() { echo "$LOG_DIR/kafka-$(node_name "$1" "$2").log"; }
out_file() { echo "$LOG_DIR/kafka-$(node_name "$1" "$2").out"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid of a live broker for that node, or nothing. The pid must still be a java
# kafka.Kafka process on this node's config (guards against pid reuse).
node_pid() {
    local pf pid cmdline
    pf="$(pid_file "$1" "$2")"
    [[ -f "$pf" ]] || return 0
    pid="$(cat "$pf" 2>/dev/null || true)"
    is_uint "$pid" || return 0
    cmdline="$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null || true)"
    if [[ "$cmdline" == *"kafka.Kafka $(node_dir "$1" "$2")/server.properties"* ]]; then
        echo "$pid"
    fi
}

# Node ids of a mode, from the node dirs written at start.
node_ids() {
    local d
    for d in "$STATE_DIR/$1"/node-*; do
        if [[ -d "$d" ]]; then echo "${d##*/node-}"; fi
    done | sort -n
}

running_ids() {
    local id
    for id in $(node_ids "$1"); do
        if [[ -n "$(node_pid "$1" "$id")" ]]; then echo "$id"; fi
    done
}

current_mode() { cat "$STATE_DIR/mode" 2>/dev/null || true; }

# Listener port recorded in a node's config (the ports it was started with).
configured_port() {
    local cfg
    cfg="$(node_dir "$1" "$2")/server.properties"
    [[ -f "$cfg" ]] || { echo "?"; return 0; }
    sed -n 's#^listeners=PLAINTEXT://[^:]*:\([0-9]*\),.*#\1#p' "$cfg"
}

# ---------------------------------------------------------------- config

write_config() {
    local mode="$1" id="$2" count="$3" rf="$4" min_isr="$5"
    local dir voters="" i controlled_shutdown=true
    dir="$(node_dir "$mode" "$id")"
    # `stop` takes the whole cluster down at once, so migrating leadership first is
    # pointless, and it can hang: a broker waits (minutes) for the controller quorum to
    # approve its controlled shutdown, and with one node already killed and another
    # leaving, that quorum is gone. Logs are still flushed and closed cleanly.
    [[ "$mode" == cluster ]] && controlled_shutdown=false
    for ((i = 1; i <= count; i++)); do
        voters+="${voters:+,}$i@127.0.0.1:$(controller_port "$i")"
    done
    mkdir -p "$dir/data"
    cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka/kafka.sh start ($mode, node $id of $count). Do not edit.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$(client_port "$id"),CONTROLLER://127.0.0.1:$(controller_port "$id")
advertised.listeners=PLAINTEXT://127.0.0.1:$(client_port "$id")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

num.partitions=$PARTITIONS
auto.create.topics.enable=true
default.replication.factor=$rf
min.insync.replicas=$min_isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
controlled.shutdown.enable=$controlled_shutdown

# Two cores: fewer threads than the defaults (3 network / 8 io).
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
}

java_tool() {
    # java_tool LOGFILE CLASS ARGS...: run a Kafka tool class with our jars and logging.
    local logf="$1"
    shift
    java -cp "$LIBS_DIR/*" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
        -Dkafka.log.file="$logf" "$@"
}

cluster_id() {
    local mode="$1" f
    f="$STATE_DIR/$mode/cluster.id"
    if [[ ! -s "$f" ]]; then
        mkdir -p "$STATE_DIR/$mode"
        java_tool "$LOG_DIR/kafka-tools.log" kafka.tools.StorageTool random-uuid | tail -n1 >"$f.tmp"
        mv "$f.tmp" "$f"
    fi
    cat "$f"
}

format_storage() {
    local mode="$1" id="$2" dir cid
    dir="$(node_dir "$mode" "$id")"
    [[ -f "$dir/data/meta.properties" ]] && return 0
    cid="$(cluster_id "$mode")"
    if ! java_tool "$LOG_DIR/kafka-tools.log" kafka.tools.StorageTool format \
        -t "$cid" -c "$dir/server.properties" >>"$(out_file "$mode" "$id")" 2>&1; then
        tail -n 20 "$(out_file "$mode" "$id")" >&2
        die "formatting storage for node $id failed"
    fi
}

# ---------------------------------------------------------------- start / wait

heap_for() {
    if [[ -n "${KAFKA_HEAP:-}" ]]; then
        echo "$KAFKA_HEAP"
    elif [[ "$1" == single ]]; then
        echo 1g
    else
        echo 512m
    fi
}

# launch_node MODE ID: start the JVM in the background; sets LAUNCH_MARK to
# "ID:LOGSIZE:OUTSIZE", the sizes of the node's files before the start (wait_ready and
# show_failure only look at what this start wrote).
LAUNCH_MARK=""
launch_node() {
    local mode="$1" id="$2" dir logf outf heap pid port
    dir="$(node_dir "$mode" "$id")"
    logf="$(log_file "$mode" "$id")"
    outf="$(out_file "$mode" "$id")"
    heap="$(heap_for "$mode")"
    for port in "$(client_port "$id")" "$(controller_port "$id")"; do
        if port_open "$port"; then
            die "port $port is already in use by another process; not starting node $id"
        fi
    done
    format_storage "$mode" "$id"
    touch "$logf" "$outf"
    LAUNCH_MARK="$id:$(stat -c %s "$logf"):$(stat -c %s "$outf")"
    # setsid + nohup: the broker outlives this shell and its terminal. JVM stdout/stderr
    # (crashes, GC warnings) go to the .out file; log4j writes the .log file.
    setsid nohup java -server "-Xms$heap" "-Xmx$heap" \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.log.file="$logf" \
        -cp "$LIBS_DIR/*" kafka.Kafka "$dir/server.properties" \
        >>"$outf" 2>&1 </dev/null &
    pid=$!
    disown "$pid" 2>/dev/null || true # not our job any more: no "Killed" notices from bash
    echo "$pid" >"$(pid_file "$mode" "$id")"
}

# show_failure MODE MARK: the last lines this start wrote to the node's log and .out.
show_failure() {
    local mode="$1" id log_off out_off f off
    IFS=: read -r id log_off out_off <<<"$2"
    for f in "$(log_file "$mode" "$id"):$log_off" "$(out_file "$mode" "$id"):$out_off"; do
        off="${f##*:}"
        f="${f%:*}"
        if [[ -f "$f" ]] && (($(stat -c %s "$f") > off)); then
            printf -- '--- last lines of %s ---\n' "$f" >&2
            tail -c "+$((off + 1))" "$f" | tail -n 25 >&2 || true
        fi
    done
}

# abort_start MODE MARKS: SIGKILL the nodes this start launched (they never became ready).
abort_start() {
    local mode="$1" item id pid
    for item in $2; do
        id="${item%%:*}"
        pid="$(node_pid "$mode" "$id")"
        if [[ -n "$pid" ]]; then
            kill -KILL "$pid" 2>/dev/null || true
            printf 'kafka: killed node %s (pid %s) of the failed start\n' "$id" "$pid" >&2
        fi
        rm -f "$(pid_file "$mode" "$id")"
    done
}

# wait_ready MODE "MARK ...": poll until every node logged "Kafka Server started" (since
# its mark) and accepts connections on its client port. On failure show the new log lines,
# kill the nodes of this start and exit non-zero.
wait_ready() {
    local mode="$1" pending="$2" deadline next item id offset rest
    deadline=$((SECONDS + START_TIMEOUT))
    while [[ -n "$pending" ]]; do
        next=""
        for item in $pending; do
            id="${item%%:*}"
            rest="${item#*:}"
            offset="${rest%%:*}"
            if [[ -z "$(node_pid "$mode" "$id")" ]]; then
                show_failure "$mode" "$item"
                abort_start "$mode" "$2"
                die "node $id ($mode) died during startup"
            fi
            if tail -c "+$((offset + 1))" "$(log_file "$mode" "$id")" | grep -qF "$STARTED_MARKER" &&
                port_open "$(client_port "$id")"; then
                continue
            fi
            next+="${next:+ }$item"
        done
        pending="$next"
        if [[ -z "$pending" ]]; then break; fi
        if ((SECONDS >= deadline)); then
            local ids=""
            for item in $pending; do
                show_failure "$mode" "$item"
                ids+="${ids:+ }${item%%:*}"
            done
            abort_start "$mode" "$2"
            die "node(s) $ids ($mode) not ready after ${START_TIMEOUT}s (KAFKA_START_TIMEOUT)"
        fi
        sleep 0.5
    done
}

write_bootstrap() {
    local count="$1" i list=""
    for ((i = 1; i <= count; i++)); do
        list+="${list:+,}127.0.0.1:$(client_port "$i")"
    done
    echo "$list" >"$STATE_DIR/bootstrap"
    echo "$list"
}

cmd_start() {
    local count=1 mode=single other
    while (($#)); do
        case "$1" in
            --cluster)
                if [[ $# -lt 2 ]] || ! is_uint "$2"; then
                    die "usage: kafka.sh start [--cluster N]"
                fi
                count="$2"
                shift 2
                ;;
            --cluster=*)
                count="${1#--cluster=}"
                is_uint "$count" || die "usage: kafka.sh start [--cluster N]"
                shift
                ;;
            *) die "unknown option '$1' (usage: kafka.sh start [--cluster N])" ;;
        esac
    done
    if [[ "$count" != 1 ]]; then
        mode=cluster
        ((count >= 3 && count <= 9)) || die "--cluster needs 3..9 nodes (got $count)"
    fi
    other=cluster
    [[ "$mode" == cluster ]] && other=single
    if [[ -n "$(running_ids "$other")" ]]; then
        die "the $other broker is running in $VAR_DIR; run 'kafka.sh stop' first"
    fi

    mkdir -p "$RUN_DIR" "$LOG_DIR" "$STATE_DIR/$mode"
    cmd_install >/dev/null
    require_tools java

    # A different node count than last time means a different quorum: start afresh.
    local prev_count
    prev_count="$(node_ids "$mode" | wc -l)"
    if [[ "$mode" == cluster ]] && ((prev_count != 0 && prev_count != count)); then
        if [[ -n "$(running_ids "$mode")" ]]; then
            die "a $prev_count-node cluster is running; 'kafka.sh stop' before starting $count nodes"
        fi
        say "node count changed ($prev_count -> $count): wiping $STATE_DIR/$mode"
        rm -rf "${STATE_DIR:?}/$mode"
        mkdir -p "$STATE_DIR/$mode"
    fi

    local rf=1 min_isr=1
    if [[ "$mode" == cluster ]]; then
        rf=3
        min_isr=2
    fi

    local started=$SECONDS id pending="" to_start=()
    for ((id = 1; id <= count; id++)); do
        write_config "$mode" "$id" "$count" "$rf" "$min_isr"
        if [[ -z "$(node_pid "$mode" "$id")" ]]; then to_start+=("$id"); fi
    done
    echo "$mode" >"$STATE_DIR/mode"
    local bootstrap
    bootstrap="$(write_bootstrap "$count")"
    if ((${#to_start[@]} == 0)); then
        say "already running ($mode, $count node(s)) on $bootstrap"
        return 0
    fi
    local port
    for id in "${to_start[@]}"; do # all ports first: never leave half a cluster behind
        for port in "$(client_port "$id")" "$(controller_port "$id")"; do
            if port_open "$port"; then
                die "port $port (node $id) is already in use by another process; not starting"
            fi
        done
    done
    for id in "${to_start[@]}"; do
        launch_node "$mode" "$id"
        pending+="${pending:+ }$LAUNCH_MARK"
    done
    wait_ready "$mode" "$pending"
    say "$mode broker up on $bootstrap in $((SECONDS - started))s (logs: $LOG_DIR/kafka-$mode-*.log)"
}

# ---------------------------------------------------------------- node commands

mode_or_die() {
    local mode
    mode="$(current_mode)"
    [[ -n "$mode" ]] || die "no broker has been started in $VAR_DIR"
    echo "$mode"
}

check_node_id() {
    local mode="$1" id="$2"
    is_uint "$id" || die "node id must be a number (got '$id')"
    [[ -f "$(node_dir "$mode" "$id")/server.properties" ]] || die "no node $id in $mode mode"
}

cmd_kill_node() {
    [[ $# -eq 1 ]] || die "usage: kafka.sh kill-node N"
    local mode id="$1" pid
    mode="$(mode_or_die)"
    check_node_id "$mode" "$id"
    pid="$(node_pid "$mode" "$id")"
    if [[ -z "$pid" ]]; then
        say "node $id ($mode) is not running"
        return 0
    fi
    kill -KILL "$pid"
    local deadline=$((SECONDS + 10))
    while [[ -d "/proc/$pid" ]] && ((SECONDS < deadline)); do sleep 0.1; done
    rm -f "$(pid_file "$mode" "$id")"
    say "node $id ($mode) killed (SIGKILL, pid $pid)"
}

cmd_start_node() {
    [[ $# -eq 1 ]] || die "usage: kafka.sh start-node N"
    local mode id="$1" started=$SECONDS
    mode="$(mode_or_die)"
    check_node_id "$mode" "$id"
    if [[ -n "$(node_pid "$mode" "$id")" ]]; then
        say "node $id ($mode) already running (pid $(node_pid "$mode" "$id"))"
        return 0
    fi
    require_tools java
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    launch_node "$mode" "$id"
    wait_ready "$mode" "$LAUNCH_MARK"
    say "node $id ($mode) up on 127.0.0.1:$(client_port "$id") in $((SECONDS - started))s"
}

cmd_status() {
    local mode id pid state
    mode="$(current_mode)"
    if [[ -z "$mode" ]] || [[ -z "$(node_ids "$mode")" ]]; then
        say "not started (no nodes in $VAR_DIR)"
        return 0
    fi
    for id in $(node_ids "$mode"); do
        pid="$(node_pid "$mode" "$id")"
        state=down
        if [[ -n "$pid" ]]; then state=up; fi
        printf 'kafka %s node %s: %-4s pid %-7s port %s\n' \
            "$mode" "$id" "$state" "${pid:--}" "$(configured_port "$mode" "$id")"
    done
}

cmd_stop() {
    local mode id pid stopping=() item
    for mode in single cluster; do
        for id in $(node_ids "$mode"); do
            pid="$(node_pid "$mode" "$id")"
            if [[ -n "$pid" ]]; then
                kill -TERM "$pid" 2>/dev/null || true
                stopping+=("$mode:$id:$pid")
            else
                rm -f "$(pid_file "$mode" "$id")"
            fi
        done
    done
    if ((${#stopping[@]} == 0)); then
        say "not running"
        return 0
    fi
    local deadline=$((SECONDS + STOP_TIMEOUT)) alive
    while :; do
        alive=()
        for item in "${stopping[@]}"; do
            pid="${item##*:}"
            if [[ -d "/proc/$pid" ]]; then alive+=("$item"); fi
        done
        if ((${#alive[@]} == 0 || SECONDS >= deadline)); then break; fi
        sleep 0.2
    done
    local rc=0
    for item in "${alive[@]}"; do
        IFS=: read -r mode id pid <<<"$item"
        printf 'kafka: node %s (%s, pid %s) did not stop within %ss: sending SIGKILL\n' \
            "$id" "$mode" "$pid" "$STOP_TIMEOUT" >&2
        kill -KILL "$pid" 2>/dev/null || true
        rc=1
    done
    for item in "${stopping[@]}"; do
        IFS=: read -r mode id pid <<<"$item"
        rm -f "$(pid_file "$mode" "$id")"
    done
    say "stopped ${#stopping[@]} node(s)"
    return "$rc"
}

main() {
    local cmd="${1:-start}"
    (($#)) && shift
    case "$cmd" in
        install) cmd_install "$@" ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        kill-node) cmd_kill_node "$@" ;;
        start-node) cmd_start_node "$@" ;;
        -h | --help | help) usage ;;
        *)
            printf "kafka: unknown command '%s'\n" "$cmd" >&2
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
