"""The benchmark behind ``make bench``: the pipeline's throughput and latency, and this machine's
raw ceilings for the same message sizes, measured in one run.

The pipeline runs in its own topic prefix with freshly started consumer processes, so a bench
never mixes with the demo's data flow. Nothing here is a test: CI does not gate on it.
"""

from __future__ import annotations

import json
import os
import platform
import pstats
import random
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.db import connection
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from backoffice.config import BASE_DIR
from backoffice.streaming import topics
from backoffice.streaming.kafka_admin import ALL_TOPICS, delete_topics_with_prefix, end_offsets
from backoffice.streaming.models import ConsumerOffset

# The stages a trade passes on its way to P&L, in order, with the table and timestamp column that
# says when the trade became visible there. Stages not built yet are skipped.
STAGES: list[tuple[str, str, str]] = [
    ("capture", "trades_tradeversion", "captured_at"),
    ("compliance", "compliance_versionverdict", "evaluated_at"),
    ("settlement", "settlement_obligation", "updated_at"),
    ("reporting", "reporting_positiontrade", "updated_at"),
]

# The topics each stage consumes (logical names); settlement and reporting both read validated trades.
STAGE_INPUTS: dict[str, list[str]] = {
    "capture": ["trades.executed"],
    "compliance": ["trades.captured"],
    "settlement": ["trades.validated", "settlement.status"],
    "reporting": ["trades.validated", "marketdata.prices"],
}

# The null-handler pipeline's stages (``backoffice.bench_floor``), one attribute per stage name.
NULL_STAGES_MODULE = "backoffice.bench_floor"


class Backlog:
    """How many messages each stage has yet to apply: its inputs' end offsets less its group's
    offsets in PostgreSQL (a partition the group has never touched counts from 0, so a stage
    that has not started is behind, never falsely done). One long-lived client: a fresh one per
    read costs more than the read, which the bench asks several times a second."""

    def __init__(self, stages: list[str]):
        self.stages = stages
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, enable_auto_commit=False
        )
        self.partitions = [
            TopicPartition(topic, partition)
            for stage in stages
            for topic in (topics.topic(t) for t in STAGE_INPUTS[stage])
            for partition in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]

    def behind(self) -> dict[str, int]:
        ends = {
            (tp.topic, tp.partition): end
            for tp, end in self.consumer.end_offsets(self.partitions).items()
        }
        stored = {
            (o.group, o.topic, o.partition): o.next_offset
            for o in ConsumerOffset.objects.filter(group__in=[topics.group(s) for s in self.stages])
        }
        return {
            stage: sum(
                max(0, ends[(t, p)] - stored.get((topics.group(stage), t, p), 0))
                for t, p in ends
                if topics.logical(t) in STAGE_INPUTS[stage]
            )
            for stage in self.stages
        }

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def stage_window(stage: str, trade_prefix: str) -> tuple[int, float]:
    """(messages the stage's group consumed, seconds from its first to its last effect row)."""
    table, column = next((t, c) for s, t, c in STAGES if s == stage)
    consumed = sum(
        ConsumerOffset.objects.filter(group=topics.group(stage)).values_list(
            "next_offset", flat=True
        )
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT extract(epoch FROM max({column}) - min({column})) FROM {table}"
            " WHERE trade_id LIKE %s",
            [trade_prefix + "%"],
        )
        row = cursor.fetchone()
    return consumed, float(row[0] or 0.0) if row else 0.0


@dataclass
class StageFigure:
    """One stage in a run: ``done_at`` is when it finished in the concurrent pass (seconds after the
    first publish); ``rate`` is what it sustains alone on a full backlog (the drain pass)."""

    stage: str
    consumers: int
    done_at: float
    messages: int = 0
    drain_seconds: float = 0.0
    rate: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass
class BenchResult:
    trades: int
    messages_sent: int
    machine: str
    started_at: str
    end_to_end_seconds: float = 0.0
    end_to_end_rate: float = 0.0
    final_stage: str = ""
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    stages: list[StageFigure] = field(default_factory=list)
    relay_peak_rss_mb: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # concurrent pass, per component
    cpu_busy_share: float = 0.0  # of all cores' time during the concurrent pass
    trades_through: int = 0  # trades that reached the final stage (the rest wait in exceptions)
    kafka_ceiling_rate: float = 0.0
    postgres_copy_rate: float = 0.0
    ratio_to_ceiling: float = 0.0
    # Concurrent pass, per trade pushed: row writes from pg_stat deltas and the index entries
    # they cost, and records the pipeline produced (transaction markers included).
    writes_per_trade: dict[str, float] = field(default_factory=dict)
    messages_per_trade: float = 0.0
    statements_per_trade: float | None = None  # None: pg_stat_statements is not loaded
    profile_top: list[str] = field(default_factory=list)
    latency_source: str = ""  # what the latency figures time the end of
    open_loop: list[OpenLoopFigure] = field(default_factory=list)
    day: DayFigure | None = None
    sweep: list[SweepFigure] = field(default_factory=list)
    floor: FloorFigure | None = None


@dataclass
class OpenLoopFigure:
    """Trades published at a fixed rate while every stage runs: latency to P&L committed."""

    target_rate: float
    trades: int
    published_rate: float  # what the publisher achieved
    through_rate: float  # trades that reached P&L / seconds from first publish to last commit
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float


@dataclass
class DayFigure:
    """A whole day's trades published in step with the pipeline (no stage more than ``window``
    messages behind), so every stage works on the same part of the day; cut into tenths by
    completion."""

    trades: int
    window: int
    reached: int
    seconds: float
    slice_rates: list[float]

    @property
    def last_to_first(self) -> float:
        return self.slice_rates[-1] / self.slice_rates[0] if self.slice_rates[0] else 0.0


@dataclass
class SweepFigure:
    """One cell of the scale-out sweep: a concurrent pass with this many consumers per stage
    (one process each) on topics with this many partitions."""

    consumers: int
    partitions: int
    trades: int
    rate: float
    cpu_ms_per_trade: float


@dataclass
class FloorFigure:
    """The null-handler pipeline at full push: the same stage consumers, topics and partitions,
    the same runtime (decode, inbox, outbox, offsets, publish), handlers that only pass each trade
    on. What a trade costs there is the floor under the real pipeline's cost."""

    trades: int
    rate: float  # trades / seconds from first publish to the last stage done
    cpu_ms_per_trade: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # per component
    records_per_trade: float = 0.0  # produced, transaction markers included
    writes_per_trade: dict[str, float] = field(default_factory=dict)


def floor_figure(
    *,
    trades: int,
    seconds: float,
    cpu_seconds: dict[str, float],
    records: int,
    writes_before: dict[str, int],
    writes_after: dict[str, int],
) -> FloorFigure:
    return FloorFigure(
        trades=trades,
        rate=trades / seconds if seconds > 0 else 0.0,
        cpu_ms_per_trade=sum(cpu_seconds.values()) * 1000 / trades,
        cpu_seconds=cpu_seconds,
        records_per_trade=records / trades,
        writes_per_trade=per_trade_writes(writes_before, writes_after, trades),
    )


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU time a process has used so far (0 when it is gone); with
    ``reaped_children``, plus that of the children it has waited for (the postmaster's
    backends that have exited: a consumer reconnects every CONN_MAX_AGE)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLOCK_TICKS


def service_pids() -> dict[str, list[int]]:
    """This pipeline's broker and PostgreSQL processes (not other clusters on the same machine):
    the brokers from the pid files ``scripts/kafka/kafka.sh`` writes, and the postmaster serving
    our connection with its children."""
    run_dir = Path(os.environ.get("VAR_DIR", BASE_DIR / "var")) / "run"
    brokers = []
    for pid_file in run_dir.glob("kafka-*.pid"):
        try:
            brokers.append(int(pid_file.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    postmaster = _parent_pid(int(row[0])) if row else None
    postgres = [postmaster] if postmaster else []
    if postmaster:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _parent_pid(int(entry.name)) == postmaster:
                postgres.append(int(entry.name))
    return {"kafka broker": brokers, "postgresql": postgres}


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class CpuMeter:
    """CPU seconds each component spends between ``start`` and ``stop``.

    Components are the pipeline's own processes (by name) plus the broker and PostgreSQL; a
    PostgreSQL backend that appears during the window counts from zero.
    """

    def __init__(self, processes: dict[str, int]):
        self.processes = processes
        self.before: dict[tuple[str, int], float] = {}
        self.machine_before = (0.0, 0.0)

    def _snapshot(self) -> dict[tuple[str, int], float]:
        pids = {name: [pid] for name, pid in self.processes.items()} | service_pids()
        postmaster = pids["postgresql"][:1]  # service_pids lists it first
        return {
            (name, pid): process_cpu_seconds(pid, reaped_children=pid in postmaster)
            for name, group in pids.items()
            for pid in group
        }

    def start(self) -> None:
        self.before = self._snapshot()
        self.machine_before = machine_busy_seconds()

    def stop(self) -> tuple[dict[str, float], float]:
        """CPU seconds per component, and the share of all cores that was busy."""
        after = self._snapshot()
        busy, total = machine_busy_seconds()
        spent: dict[str, float] = {}
        for (name, pid), seconds in after.items():
            spent[name] = spent.get(name, 0.0) + max(0.0, seconds - self.before.get((name, pid), 0))
        window = total - self.machine_before[1]
        share = (busy - self.machine_before[0]) / window if window > 0 else 0.0
        return with_unattributed(spent, busy - self.machine_before[0]), share


def with_unattributed(spent: dict[str, float], machine_busy: float) -> dict[str, float]:
    """``spent`` plus what the machine's cores were busy with that no listed process accounts
    for (the bench driver itself, kernel threads, short-lived processes), so the per-trade total
    is the machine's and not only the pipeline's."""
    return {**spent, "unattributed": max(0.0, machine_busy - sum(spent.values()))}


def kafka_ceiling(messages: list[bytes], keys: list[bytes]) -> float:
    """kafka-python produce -> consume of the same messages on a fresh topic, msg/s."""
    topic = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        acks="all",
        linger_ms=5,
        batch_size=512 * 1024,
    )
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    consumer.poll(timeout_ms=1000)  # join before the clock starts
    started = time.monotonic()
    for key, value in zip(keys, messages, strict=True):
        producer.send(topic, key=key, value=value)
    producer.flush()
    received = 0
    deadline = time.monotonic() + 300
    while received < len(messages) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            received += len(batch)
    elapsed = time.monotonic() - started
    producer.close()
    consumer.close()
    delete_topics_with_prefix(topic)
    return received / elapsed


def postgres_copy_rate(rows: int) -> float:
    """COPY of trade-version-sized rows into an unlogged-free temp table, rows/s."""
    sample = (
        "T0000001",
        1,
        "NEW",
        "ACC-0001",
        "EQ-US",
        "CP-NRTH",
        "US0378331005",
        "AAPL",
        "EQUITY",
        "LIQUID_SHARES",
        "XNAS",
        "BUY",
        "100",
        "231.40",
        "USD",
        "23140.00",
        "1.00",
        "23141.00",
        "2026-11-25",
        "2026-11-25T15:00:00+00:00",
        "2026-11-27",
        True,
        "XNAS",
        "jdoe",
        "DVP",
    )
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copy (trade_id text, version int, action text, account text,"
            " book text, counterparty text, instrument text, symbol text, asset_class text,"
            " csdr_class text, market text, side text, quantity numeric, price numeric,"
            " currency text, gross numeric, fees numeric, net numeric, trade_date date,"
            " trade_time timestamptz, settle_date date, computed bool, venue text, trader text,"
            " payment_type text, PRIMARY KEY (trade_id, version))"
        )
        started = time.monotonic()
        with cursor.copy("COPY bench_copy FROM STDIN") as copy:
            for n in range(rows):
                copy.write_row((f"T{n:09d}", *sample[1:]))
        raw.commit()
        elapsed = time.monotonic() - started
        cursor.execute("DROP TABLE bench_copy")
    raw.commit()
    return rows / elapsed


def stage_available(stage: str) -> bool:
    return (BASE_DIR / _app(stage) / "management" / "commands" / f"consume_{stage}.py").is_file()


def _app(stage: str) -> str:
    return {
        "capture": "trades",
        "compliance": "compliance",
        "settlement": "settlement",
        "reporting": "reporting",
    }[stage]


def table_exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        row = cursor.fetchone()
    return bool(row and row[0])


def visible_times(table: str, column: str, trade_prefix: str) -> dict[str, datetime]:
    """When each trade of this run first became visible in ``table`` (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT trade_id, min({column}) FROM {table} WHERE trade_id LIKE %s GROUP BY trade_id",
            [trade_prefix + "%"],
        )
        return dict(cursor.fetchall())


def commit_times(table: str, trade_prefix: str) -> dict[str, float] | None:
    """When each trade's row in ``table`` was committed (epoch seconds): PostgreSQL's commit
    timestamp of the transaction that last wrote it, so the time its effect became durable and
    visible, not the batch's start. None when the server does not keep commit timestamps
    (``track_commit_timestamp``; scripts/services.sh turns it on)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('track_commit_timestamp')")
        row = cursor.fetchone()
        if not row or row[0] != "on":
            return None
        cursor.execute(
            f"SELECT trade_id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM {table}"
            " WHERE trade_id LIKE %s",
            [trade_prefix + "%"],
        )
        return {trade_id: float(at) for trade_id, at in cursor.fetchall() if at is not None}


def slice_rates(done: list[float], slices: int = 10) -> list[float]:
    """Trades per second in each tenth of a run, by order of completion.

    Slice i holds the trades ranked i/10 to (i+1)/10 by completion time; its rate is their count
    over the time from the previous slice's last completion to its own. The first slice starts at
    the first completion, so start-up and the pipeline's fill time flatter no slice.
    """
    ordered = sorted(done)
    if len(ordered) < 2 * slices:
        return []
    rates = []
    previous, previous_index = ordered[0], 0
    for i in range(1, slices + 1):
        index = round(i * len(ordered) / slices) - 1
        span = ordered[index] - previous
        rates.append((index - previous_index) / span if span > 0 else 0.0)
        previous, previous_index = ordered[index], index
    return rates


def enable_statement_stats() -> bool:
    """Make pg_stat_statements readable in this database, when the server loads it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'pg_stat_statements' = ANY(string_to_array("
            "replace(current_setting('shared_preload_libraries'), ' ', ''), ','))"
        )
        row = cursor.fetchone()
        if not row or not row[0]:
            return False
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return True


def statement_count() -> int | None:
    """Statements this database has run so far (pg_stat_statements calls; utility statements
    such as BEGIN and COMMIT included), or None when the extension is not loaded."""
    if not enable_statement_stats():
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def cpu_lines(result: BenchResult) -> list[str]:
    """CPU milliseconds per trade by component in the concurrent pass: what the cores went to."""
    if not result.cpu_seconds or not result.trades:
        return []
    total = sum(result.cpu_seconds.values())
    ordered = sorted(result.cpu_seconds.items(), key=lambda item: -item[1])
    return [
        f"{name}: {seconds * 1000 / result.trades:.3f} ms/trade ({seconds / total:.0%})"
        for name, seconds in ordered
    ] + [
        f"total: {total * 1000 / result.trades:.3f} CPU-ms/trade; cores busy {result.cpu_busy_share:.0%};"
        f" {os.cpu_count()} cores / that = {cpu_bound_rate(result):,.0f} trades/s at 100 % CPU"
    ]


def cpu_bound_rate(result: BenchResult) -> float:
    total = sum(result.cpu_seconds.values())
    return (os.cpu_count() or 1) * result.trades / total if total else 0.0


WRITE_KINDS = ("inserts", "updates", "hot_updates", "deletes", "index_entries")


def write_counts() -> dict[str, int]:
    """Row writes so far on the user tables (pg_stat), and the index entries they cost: an
    insert or a non-HOT update adds one entry to each of its table's indexes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT coalesce(sum(s.n_tup_ins), 0), coalesce(sum(s.n_tup_upd), 0),"
            " coalesce(sum(s.n_tup_hot_upd), 0), coalesce(sum(s.n_tup_del), 0),"
            " coalesce(sum((s.n_tup_ins + s.n_tup_upd - s.n_tup_hot_upd)"
            " * (SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid)), 0)"
            " FROM pg_stat_user_tables s"
        )
        row = cursor.fetchone()
    assert row is not None
    return dict(zip(WRITE_KINDS, (int(v) for v in row), strict=True))


def per_trade_writes(
    before: dict[str, int], after: dict[str, int], trades: int
) -> dict[str, float]:
    return {k: (after[k] - before[k]) / trades for k in WRITE_KINDS}


def produced_records(prefix: str, inbound: str) -> int:
    """Records on the run's topics other than the inbound one (what the pipeline produced)."""
    physical = [f"{prefix}{t}" for t in ALL_TOPICS if t != inbound]
    return sum(end_offsets(physical).values())


def summary_lines(result: BenchResult) -> list[str]:
    lines = [
        f"machine: {result.machine}",
        f"trades: {result.trades:,} ({result.messages_sent:,} messages incl. amendments/cancels/malformed);"
        f" {result.trades_through:,} reached {result.final_stage} (the rest wait in compliance exceptions or were refused)",
        f"end-to-end: {result.end_to_end_rate:,.0f} trades/s ({result.end_to_end_seconds:.1f} s, first publish -> last {result.final_stage} row durable)",
        f"latency publish -> {result.final_stage} {result.latency_source} (full-speed push: mostly queueing): p50 {result.latency_p50_ms:,.0f} ms, p99 {result.latency_p99_ms:,.0f} ms",
        "per stage: alone on a full backlog (drain pass) | done in the concurrent pass | peak RSS",
    ]
    lines += [
        f"  {s.stage:<12} {s.rate:>9,.0f} msg/s ({s.messages:,} in {s.drain_seconds:.1f} s) | {s.done_at:.1f} s | {s.peak_rss_mb:.0f} MB"
        for s in result.stages
    ]
    lines += [
        f"  relay        peak RSS {result.relay_peak_rss_mb:.0f} MB",
        "CPU in the concurrent pass:",
        *[f"  {line}" for line in cpu_lines(result)],
        f"writes per trade in the concurrent pass: {write_line(result)}",
        f"records produced per trade: {result.messages_per_trade:.2f} (transaction markers included)",
        f"SQL statements per trade: {statements_text(result)}",
        *extra_lines(result),
        f"ceiling kafka-python produce->consume: {result.kafka_ceiling_rate:,.0f} msg/s",
        f"ceiling PostgreSQL COPY: {result.postgres_copy_rate:,.0f} rows/s",
        *floor_lines(result),
        f"pipeline / kafka ceiling: {result.ratio_to_ceiling:.0%}",
        *floor_ratio_lines(result),
    ]
    return lines


FLOOR_LABEL = "null-handler pipeline (same hops, handlers do nothing)"


def floor_lines(result: BenchResult) -> list[str]:
    """The null-handler floor and where its CPU goes, or nothing when it was not measured."""
    f = result.floor
    if f is None:
        return []
    by_component = sorted(f.cpu_seconds.items(), key=lambda item: -item[1])
    return [
        f"ceiling {FLOOR_LABEL}: {floor_text(f)}",
        "  its CPU-ms/trade by process: "
        + ", ".join(f"{name} {seconds * 1000 / f.trades:.3f}" for name, seconds in by_component),
    ]


def floor_text(f: FloorFigure) -> str:
    return (
        f"{f.rate:,.0f} trades/s, {f.cpu_ms_per_trade:.3f} CPU-ms/trade ({f.trades:,} trades;"
        f" per trade {f.records_per_trade:.2f} records produced,"
        f" {writes_text(f.writes_per_trade)})"
    )


def floor_ratio_lines(result: BenchResult) -> list[str]:
    """The pipeline against the floor: its share of the floor's rate, and how many times the
    floor's CPU per trade it spends (the rest is what the stages themselves do)."""
    text = floor_ratio_text(result)
    return [f"pipeline / null-handler floor: {text}"] if text else []


def floor_ratio_text(result: BenchResult) -> str:
    f = result.floor
    if f is None or not (f.rate and f.cpu_ms_per_trade and result.end_to_end_rate):
        return ""
    if not result.cpu_seconds:
        return f"{result.end_to_end_rate / f.rate:.0%} of its trades/s"
    pipeline_cpu_ms = sum(result.cpu_seconds.values()) * 1000 / result.trades
    return (
        f"{result.end_to_end_rate / f.rate:.0%} of its trades/s,"
        f" {pipeline_cpu_ms / f.cpu_ms_per_trade:.1f}x its CPU-ms/trade"
    )


def extra_lines(result: BenchResult) -> list[str]:
    """The open-loop, whole-day and sweep figures, one line each."""
    return [
        *[f"open loop: {open_loop_text(f)}" for f in result.open_loop],
        *([f"day: {day_text(result.day)}"] if result.day else []),
        *[f"sweep: {sweep_text(f)}" for f in result.sweep],
    ]


def statements_text(result: BenchResult) -> str:
    if result.statements_per_trade is None:
        return "not measured (pg_stat_statements is not loaded; scripts/services.sh loads it)"
    return f"{result.statements_per_trade:.2f} (pg_stat_statements, BEGIN/COMMIT included)"


def open_loop_text(f: OpenLoopFigure) -> str:
    return (
        f"{f.target_rate:,.0f} trades/s offered ({f.trades:,} trades, published at"
        f" {f.published_rate:,.0f}/s): publish -> P&L committed p50 {f.latency_p50_ms:,.0f} ms,"
        f" p99 {f.latency_p99_ms:,.0f} ms, max {f.latency_max_ms:,.0f} ms;"
        f" {f.through_rate:,.0f} trades/s through"
    )


def day_text(f: DayFigure) -> str:
    rates = ", ".join(f"{r:,.0f}" for r in f.slice_rates)
    return (
        f"{f.trades:,} trades published in step with the pipeline (no stage over {f.window:,}"
        f" messages behind; {f.reached:,} reached P&L in {f.seconds:,.0f} s); trades/s per tenth of the day"
        f" by completion: {rates}; last tenth at {f.last_to_first:.0%} of the first"
    )


def sweep_text(f: SweepFigure) -> str:
    return (
        f"{f.consumers} consumer(s) per stage x {f.partitions} partitions: {f.rate:,.0f} trades/s,"
        f" {f.cpu_ms_per_trade:.3f} CPU-ms/trade ({f.trades:,} trades)"
    )


def write_line(result: BenchResult) -> str:
    return writes_text(result.writes_per_trade)


def writes_text(w: dict[str, float]) -> str:
    if not w:
        return "not measured"
    return (
        f"{w['inserts']:.1f} inserts, {w['updates']:.2f} updates ({w['hot_updates']:.2f} HOT),"
        f" {w['deletes']:.2f} deletes, {w['index_entries']:.1f} index entries"
    )


def to_json(result: BenchResult) -> str:
    return json.dumps(asdict(result), indent=2, default=str)


class PipelineRun:
    """One benchmark run: its own topic prefix, consumer processes, trades and measurements."""

    def __init__(
        self,
        *,
        trades: int,
        out_dir: Path,
        profile: str | None = None,
        seed: int | None = None,
        day: int = 0,
        consumers: int = 1,
        null_handlers: bool = False,
    ):
        self.trades = trades
        self.consumers = consumers  # processes per stage, one consumer group
        self.null_handlers = null_handlers  # run the stages' pass-through twins (the floor)
        self.day = day  # business days after today the simulated trades are dated
        self.out_dir = out_dir
        self.profile = profile  # the one stage to run under cProfile, if any
        self.seed = seed if seed is not None else random.SystemRandom().randrange(10_000_000)
        self.prefix = f"bench{self.seed}."
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.publish_started = 0.0
        self.sent_at: dict[str, float] = {}  # trade id -> when its first message was sent
        self.last_sent_at: dict[str, float] = {}  # ... and its last (the version P&L ends on)

    def env(self, stage: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "TOPIC_PREFIX": self.prefix,
                "METRICS_PORT": "0",
                "LOG_LEVEL": "WARNING",
            }
        )
        if stage == self.profile:
            env["STREAM_PROFILE"] = str(self.out_dir / f"{stage}.prof")
        return env

    def start(self, names: list[str]) -> None:
        """Start the relay (once) and ``consumers`` processes for each named stage."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        wanted = [("relay", ["relay_outbox"])] + [
            (name if n == 1 else f"{name}-{n}", self.stage_command(name))
            for name in names
            for n in range(1, self.consumers + 1)
        ]
        for name, command in wanted:
            if name in self.processes:
                continue
            self.processes[name] = start_process(
                command, self.env(name), self.out_dir / f"{self.prefix}{name}.log"
            )

    def stage_command(self, stage: str) -> list[str]:
        """The manage.py command line of a stage's consumer: the real one, or its null twin
        on the same runtime through the generic ``consume`` command."""
        if self.null_handlers:
            return ["consume", "--stage", f"{NULL_STAGES_MODULE}:{stage.upper()}"]
        return [f"consume_{stage}"]

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def stop_one(self, name: str) -> float:
        """Stop one process (SIGTERM: it finishes its batch); its peak RSS in MB."""
        process = self.processes.pop(name)
        rss = peak_rss_mb(process.pid)
        process.terminate()
        _wait_or_kill(process)
        return rss

    def stop(self) -> dict[str, float]:
        rss = {name: peak_rss_mb(p.pid) for name, p in self.processes.items()}
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            _wait_or_kill(process)
        self.processes.clear()
        return rss


def _wait_or_kill(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_docs(path: Path, result: BenchResult) -> None:
    """Rewrite the measured section of docs/performance.md with this run's figures."""
    marker = "<!-- bench:results -->"
    table = [
        marker,
        f"Last run: {result.started_at} on {result.machine}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| trades pushed | {result.trades:,} ({result.messages_sent:,} messages); {result.trades_through:,} reached {result.final_stage} |",
        f"| end-to-end (first publish -> last {result.final_stage} row durable) | **{result.end_to_end_rate:,.0f} trades/s** ({result.end_to_end_seconds:.1f} s) |",
        f"| latency publish -> {result.final_stage} {result.latency_source} (full-speed push) | p50 {result.latency_p50_ms:,.0f} ms, p99 {result.latency_p99_ms:,.0f} ms |",
        *[
            f"| stage {s.stage} | {s.rate:,.0f} msg/s alone on a backlog ({s.messages:,} in {s.drain_seconds:.1f} s); done at {s.done_at:.1f} s in the concurrent pass; peak RSS {s.peak_rss_mb:.0f} MB |"
            for s in result.stages
        ],
        f"| relay peak RSS | {result.relay_peak_rss_mb:.0f} MB |",
        f"| ceiling: kafka-python produce -> consume | {result.kafka_ceiling_rate:,.0f} msg/s |",
        f"| ceiling: PostgreSQL COPY of the same rows | {result.postgres_copy_rate:,.0f} rows/s |",
        *([f"| ceiling: {FLOOR_LABEL} | {floor_text(result.floor)} |"] if result.floor else []),
        f"| pipeline / Kafka ceiling | {result.ratio_to_ceiling:.0%} |",
        *(
            [f"| pipeline / null-handler floor | {floor_ratio_text(result)} |"]
            if floor_ratio_text(result)
            else []
        ),
        f"| writes per trade (concurrent pass, pg_stat) | {write_line(result)} |",
        f"| records produced per trade | {result.messages_per_trade:.2f} (transaction markers included) |",
        f"| SQL statements per trade | {statements_text(result)} |",
        *[f"| open loop | {open_loop_text(f)} |" for f in result.open_loop],
        *([f"| day | {day_text(result.day)} |"] if result.day else []),
        *[f"| sweep | {sweep_text(f)} |" for f in result.sweep],
        "",
        "CPU per trade in the concurrent pass, by process:",
        "",
        *[f"- {line}" for line in cpu_lines(result)],
        "",
        "Where the slowest stage spends its time (cProfile, cumulative):",
        "",
        "```",
        *result.profile_top,
        "```",
        marker,
    ]
    text = (
        path.read_text() if path.is_file() else "# Performance\n\n" + marker + "\n" + marker + "\n"
    )
    head, _, rest = text.partition(marker)
    _, _, tail = rest.partition(marker)
    path.write_text(head + "\n".join(table) + tail)


def profile_summary(path: Path, stage: str, lines: int = 18) -> list[str]:
    """The top of a cProfile dump by cumulative time, as text lines."""
    if not path.is_file():
        return [f"no profile was written for {stage}"]
    text = StringIO()
    pstats.Stats(str(path), stream=text).sort_stats("cumulative").print_stats(lines)
    body = [line for line in text.getvalue().splitlines() if line.strip()]
    return [
        f"slowest stage: {stage} (pass 3: draining alone under cProfile)",
        *body[-(lines + 1) :],
    ]
