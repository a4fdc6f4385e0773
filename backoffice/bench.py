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
from kafka import KafkaConsumer, KafkaProducer

from backoffice.config import BASE_DIR

# The stages a trade passes on its way to P&L, in order, with the table and timestamp column that
# says when the trade became visible there. Stages not built yet are skipped.
STAGES: list[tuple[str, str, str]] = [
    ("capture", "trades_tradeversion", "captured_at"),
    ("compliance", "compliance_ruleevaluation", "evaluated_at"),
    ("settlement", "settlement_obligation", "created_at"),
    ("reporting", "reporting_positiontrade", "updated_at"),
]


@dataclass
class StageFigure:
    stage: str
    consumers: int
    seconds: float
    rate: float
    peak_rss_mb: float


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
    kafka_ceiling_rate: float = 0.0
    postgres_copy_rate: float = 0.0
    ratio_to_ceiling: float = 0.0
    profile_top: list[str] = field(default_factory=list)


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


def summary_lines(result: BenchResult) -> list[str]:
    lines = [
        f"machine: {result.machine}",
        f"trades: {result.trades} ({result.messages_sent} messages incl. amendments/cancels)",
        f"end-to-end: {result.end_to_end_rate:,.0f} trades/s ({result.end_to_end_seconds:.1f} s, first publish -> last {result.final_stage} row durable)",
        f"latency publish -> {result.final_stage} visible: p50 {result.latency_p50_ms:,.0f} ms, p99 {result.latency_p99_ms:,.0f} ms",
    ]
    lines += [
        f"  {s.stage:<12} {s.rate:>9,.0f} msg/s  ({s.seconds:.1f} s, {s.consumers} consumer(s), peak RSS {s.peak_rss_mb:.0f} MB)"
        for s in result.stages
    ]
    lines += [
        f"  relay        peak RSS {result.relay_peak_rss_mb:.0f} MB",
        f"ceiling kafka-python produce->consume: {result.kafka_ceiling_rate:,.0f} msg/s",
        f"ceiling PostgreSQL COPY: {result.postgres_copy_rate:,.0f} rows/s",
        f"pipeline / kafka ceiling: {result.ratio_to_ceiling:.0%}",
    ]
    return lines


def to_json(result: BenchResult) -> str:
    return json.dumps(asdict(result), indent=2, default=str)


class PipelineRun:
    """One benchmark run: its own topic prefix, consumer processes, trades and measurements."""

    def __init__(self, *, trades: int, out_dir: Path, profile: str | None = None):
        self.trades = trades
        self.out_dir = out_dir
        self.profile = profile  # the one stage to run under cProfile, if any
        self.seed = int(time.time() * 10) % 10_000_000
        self.prefix = f"bench{self.seed}."
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.publish_started = 0.0

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

    def start(self, stages: list[str]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.processes["relay"] = start_process(
            ["relay_outbox"], self.env("relay"), self.out_dir / "relay.log"
        )
        for stage in stages:
            self.processes[stage] = start_process(
                [f"consume_{stage}"], self.env(stage), self.out_dir / f"{stage}.log"
            )

    def stop(self) -> dict[str, float]:
        rss = {name: peak_rss_mb(p.pid) for name, p in self.processes.items()}
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        return rss


def write_docs(path: Path, result: BenchResult) -> None:
    """Rewrite the measured section of docs/performance.md with this run's figures."""
    marker = "<!-- bench:results -->"
    table = [
        marker,
        f"Last run: {result.started_at} on {result.machine}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| trades pushed | {result.trades:,} |",
        f"| end-to-end (first publish -> last {result.final_stage} row durable) | {result.end_to_end_rate:,.0f} trades/s ({result.end_to_end_seconds:.1f} s) |",
        f"| latency publish -> {result.final_stage} visible | p50 {result.latency_p50_ms:,.0f} ms, p99 {result.latency_p99_ms:,.0f} ms |",
        *[
            f"| stage {s.stage} | {s.rate:,.0f} msg/s, done at {s.seconds:.1f} s, peak RSS {s.peak_rss_mb:.0f} MB |"
            for s in result.stages
        ],
        f"| relay peak RSS | {result.relay_peak_rss_mb:.0f} MB |",
        f"| ceiling: kafka-python produce -> consume | {result.kafka_ceiling_rate:,.0f} msg/s |",
        f"| ceiling: PostgreSQL COPY of the same rows | {result.postgres_copy_rate:,.0f} rows/s |",
        f"| pipeline / Kafka ceiling | {result.ratio_to_ceiling:.0%} |",
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
    return [f"slowest stage: {stage} (profiled in a second, smaller pass)", *body[-(lines + 1) :]]
