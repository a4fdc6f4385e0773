"""``manage.py bench --trades N``: push N trades through every stage and measure (see backoffice/bench.py)."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from kafka import KafkaProducer

from backoffice import bench
from backoffice.config import BASE_DIR
from backoffice.streaming import topics
from backoffice.streaming.command import require_services
from backoffice.streaming.kafka_admin import ALL_TOPICS, delete_topics_with_prefix, ensure_topics
from backoffice.streaming.models import ConsumerHeartbeat
from backoffice.streaming.selectors import outbox_backlog
from core import clock
from trades.selectors import reference_snapshot

TRADE_ID = re.compile(rb'"trade_id":\s*"([^"]+)"')


class Command(BaseCommand):
    help = "Benchmark the pipeline end to end against this machine's raw ceilings"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--trades", type=int, default=200_000)
        parser.add_argument("--timeout", type=float, default=1800)
        parser.add_argument("--out", default=str(BASE_DIR / "var" / "bench"))
        parser.add_argument("--docs", default=str(BASE_DIR / "docs" / "performance.md"))
        parser.add_argument(
            "--no-profile",
            action="store_true",
            help="skip the second, profiled pass of the slowest stage",
        )
        parser.add_argument(
            "--concurrent-only",
            action="store_true",
            help="only the concurrent pass (no per-stage drain, no profile, docs untouched)",
        )
        parser.add_argument(
            "--profile-stage",
            choices=[s for s, _, _ in bench.STAGES],
            help="profile this stage instead of the slowest",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        self.prefixes: list[str] = []
        try:
            self._bench(options)
        finally:
            for prefix in self.prefixes:  # a bench's topics are its own: leave the broker clean
                delete_topics_with_prefix(prefix)

    def _bench(self, options: dict[str, Any]) -> None:
        run = bench.PipelineRun(trades=options["trades"], out_dir=Path(options["out"]))
        stages = [s for s, _, _ in bench.STAGES if bench.stage_available(s)]
        keys, values = self._messages(run)
        result = bench.BenchResult(
            trades=run.trades,
            messages_sent=len(values),
            machine=bench.machine_description(),
            started_at=clock.now().isoformat(timespec="seconds"),
        )
        self.stdout.write(
            f"measuring ceilings with {len(values)} messages of ~{sum(map(len, values)) // len(values)} bytes"
        )
        result.kafka_ceiling_rate = bench.kafka_ceiling(values, keys)
        result.postgres_copy_rate = bench.postgres_copy_rate(len(values))
        timeout = options["timeout"]

        self.stdout.write(f"pass 1 (concurrent): every stage running, {len(values)} messages")
        self._use_prefix(run)
        done, rss, cpu = self._concurrent(run, stages, keys, values, timeout)
        self._figures(result, run, stages, done, rss, cpu)

        if options["concurrent_only"]:
            for line in bench.summary_lines(result):
                self.stdout.write(line)
            return
        self.stdout.write("pass 2 (drain): each stage alone on the full backlog of its input")
        # Trades of a later business day: in the same database, trades timed before the positions'
        # last fills would be late trades, and every position would be restated instead of extended.
        drain = bench.PipelineRun(trades=run.trades, out_dir=run.out_dir, seed=run.seed + 1, day=1)
        self._use_prefix(drain)
        d_keys, d_values = self._messages(drain)
        for figure, (messages, seconds) in zip(
            result.stages,
            self._drain(drain, stages, d_keys, d_values, timeout).values(),
            strict=True,
        ):
            figure.messages, figure.drain_seconds = messages, seconds
            figure.rate = messages / seconds if seconds else 0.0

        if not options["no_profile"]:
            slowest = options["profile_stage"] or min(result.stages, key=lambda s: s.rate).stage
            trades = max(5000, run.trades // 5)
            self.stdout.write(f"pass 3: profiling {slowest} draining {trades} trades alone")
            profiled = bench.PipelineRun(
                trades=trades, out_dir=run.out_dir, profile=slowest, seed=run.seed + 2, day=2
            )
            self._use_prefix(profiled)
            p_keys, p_values = self._messages(profiled)
            self._drain(profiled, stages[: stages.index(slowest) + 1], p_keys, p_values, timeout)
            result.profile_top = bench.profile_summary(run.out_dir / f"{slowest}.prof", slowest)
        self._report(result, run, options)

    def _use_prefix(self, run: bench.PipelineRun) -> None:
        settings.STREAMING = dataclasses.replace(settings.STREAMING, topic_prefix=run.prefix)
        ensure_topics(ALL_TOPICS)
        self.prefixes.append(run.prefix)

    def _concurrent(
        self,
        run: bench.PipelineRun,
        stages: list[str],
        keys: list[bytes],
        values: list[bytes],
        timeout: float,
    ) -> tuple[dict[str, float], dict[str, float], tuple[dict[str, float], float]]:
        """Every stage running while the trades are published at full speed."""
        run.start(stages)
        try:
            self._wait_until_ready(run, stages)
            meter = bench.CpuMeter(run.pids())
            self.writes_before = bench.write_counts()
            meter.start()
            self._publish(run, keys, values)
            done = self._wait_done(run, stages, timeout)
            cpu = meter.stop()
        finally:
            rss = run.stop()
        # After the stop: a process flushes its last table statistics when it exits.
        self.writes = bench.per_trade_writes(self.writes_before, bench.write_counts(), run.trades)
        self.produced = bench.produced_records(run.prefix, bench.STAGE_INPUTS["capture"][0])
        return done, rss, cpu

    def _drain(
        self,
        run: bench.PipelineRun,
        stages: list[str],
        keys: list[bytes],
        values: list[bytes],
        timeout: float,
    ) -> dict[str, tuple[int, float]]:
        """Publish everything first, then run the stages one after another, each alone on the
        whole backlog of its input: (messages consumed, seconds from its first to its last effect).
        """
        self._publish(run, keys, values)
        figures: dict[str, tuple[int, float]] = {}
        try:
            for index, stage in enumerate(stages):
                run.start([stage])
                self._wait_done(run, stages[: index + 1], timeout)
                run.stop_one(stage)
                figures[stage] = bench.stage_window(stage, f"SIM{run.seed}-")
        finally:
            run.stop()
        return figures

    def _publish(self, run: bench.PipelineRun, keys: list[bytes], values: list[bytes]) -> None:
        producer = KafkaProducer(
            bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
            acks="all",
            linger_ms=5,
            batch_size=512 * 1024,
        )
        target = topics.topic(topics.TRADES_EXECUTED)
        # Stage figures are durations from here (monotonic); a trade's latency compares when it
        # was sent with the timestamp a stage wrote from the product's clock, so it uses that one.
        run.publish_started = time.monotonic()
        for key, value in zip(keys, values, strict=True):
            found = TRADE_ID.search(value)
            if found:
                run.sent_at.setdefault(found.group(1).decode(), clock.epoch_seconds())
            producer.send(target, key=key, value=value)
        producer.flush()
        producer.close()
        self.stdout.write(
            f"  published {len(values)} messages in {time.monotonic() - run.publish_started:.1f} s"
        )

    def _messages(self, run: bench.PipelineRun) -> tuple[list[bytes], list[bytes]]:
        from trades.management.commands.produce_trades import (
            default_start,
            mean_gap,
            simulation_reference,
        )
        from trades.simulator import SimConfig, TradeSimulator

        snapshot = reference_snapshot()
        # a later pass trades on a later day, after every fill of the passes before
        start = default_start(snapshot.calendars.get("XNYS"), clock.today(), run.day)
        config = SimConfig(seed=run.seed, start=start, mean_gap=mean_gap(run.trades))
        simulator = TradeSimulator(simulation_reference(snapshot), config)
        keys, values = [], []
        for message in simulator.generate(run.trades):
            keys.append(message.key.encode())
            values.append(message.value)
        return keys, values

    def _wait_until_ready(self, run: bench.PipelineRun, stages: list[str]) -> None:
        """Clock starts once every stage's consumer holds partitions (start-up is not throughput)."""
        deadline = time.monotonic() + 120
        groups = {topics.group(s) for s in stages}
        while time.monotonic() < deadline:
            ready = set(
                ConsumerHeartbeat.objects.filter(group__in=groups, partitions__gt=0).values_list(
                    "group", flat=True
                )
            )
            if ready == groups:
                return
            time.sleep(0.2)
        raise CommandError(f"consumers not ready after 120 s: see the logs in {run.out_dir}")

    def _wait_done(
        self, run: bench.PipelineRun, stages: list[str], timeout: float
    ) -> dict[str, float]:
        """When each stage has applied everything its upstream will ever send it: the stages before
        it are done, the outbox is empty, and its group's offsets reach its inputs' end offsets."""
        done: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(stages):
            for stage in stages:
                earlier = stages[: stages.index(stage)]
                if (
                    stage not in done
                    and all(s in done for s in earlier)
                    and (not earlier or outbox_backlog() == 0)
                    and bench.stage_behind(stage) == 0
                ):
                    done[stage] = time.monotonic()  # compared with run.publish_started
            if time.monotonic() > deadline:
                behind = {s: bench.stage_behind(s) for s in stages if s not in done}
                raise CommandError(
                    f"stages not done after {timeout:.0f}s: behind {behind}, outbox {outbox_backlog()}"
                    f" (logs in {run.out_dir})"
                )
            time.sleep(0.2)
        return done

    def _figures(
        self,
        result: bench.BenchResult,
        run: bench.PipelineRun,
        stages: list[str],
        done: dict[str, float],
        rss: dict[str, float],
        cpu: tuple[dict[str, float], float],
    ) -> None:
        start = run.publish_started
        result.stages = [
            bench.StageFigure(stage, 1, done[stage] - start, peak_rss_mb=rss.get(stage, 0.0))
            for stage in stages
        ]
        final, table, column = next((s, t, c) for s, t, c in reversed(bench.STAGES) if s in stages)
        result.final_stage = final
        result.end_to_end_seconds = done[final] - start
        result.end_to_end_rate = run.trades / result.end_to_end_seconds
        result.relay_peak_rss_mb = rss.get("relay", 0.0)
        result.writes_per_trade = self.writes
        result.messages_per_trade = self.produced / run.trades
        result.cpu_seconds, result.cpu_busy_share = cpu
        result.ratio_to_ceiling = (
            result.end_to_end_rate / result.kafka_ceiling_rate if result.kafka_ceiling_rate else 0.0
        )
        visible = bench.visible_times(table, column, f"SIM{run.seed}-")
        result.trades_through = len(visible)
        latencies = [
            (at.timestamp() - run.sent_at[trade_id]) * 1000
            for trade_id, at in visible.items()
            if trade_id in run.sent_at
        ]
        result.latency_p50_ms = bench.percentile(latencies, 0.50)
        result.latency_p99_ms = bench.percentile(latencies, 0.99)

    def _report(
        self, result: bench.BenchResult, run: bench.PipelineRun, options: dict[str, Any]
    ) -> None:
        lines = bench.summary_lines(result)
        for line in lines:
            self.stdout.write(line)
        docs = Path(options["docs"])
        docs.with_suffix(".json").write_text(bench.to_json(result) + "\n")
        bench.write_docs(docs, result)
        self.stdout.write(f"wrote {docs.with_suffix('.json')} and {docs}")
