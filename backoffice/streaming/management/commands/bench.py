"""``manage.py bench --trades N``: push N trades through every stage and measure (see backoffice/bench.py)."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from kafka import KafkaProducer

from backoffice import bench
from backoffice.config import BASE_DIR
from backoffice.streaming import topics
from backoffice.streaming.command import require_services
from backoffice.streaming.kafka_admin import ALL_TOPICS, ensure_topics
from backoffice.streaming.lag import group_lag
from backoffice.streaming.models import ConsumerHeartbeat
from backoffice.streaming.selectors import outbox_backlog
from trades.selectors import reference_snapshot


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

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        run = bench.PipelineRun(trades=options["trades"], out_dir=Path(options["out"]))
        stages = [s for s, _, _ in bench.STAGES if bench.stage_available(s)]
        keys, values = self._messages(run)
        result = bench.BenchResult(
            trades=run.trades,
            messages_sent=len(values),
            machine=bench.machine_description(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.stdout.write(
            f"measuring ceilings with {len(values)} messages of ~{sum(map(len, values)) // len(values)} bytes"
        )
        result.kafka_ceiling_rate = bench.kafka_ceiling(values, keys)
        result.postgres_copy_rate = bench.postgres_copy_rate(len(values))
        done, rss = self._pass(run, stages, keys, values, options["timeout"])
        self._figures(result, run, stages, done, rss)
        if not options["no_profile"]:
            slowest = min(result.stages, key=lambda s: s.rate).stage
            self.stdout.write(
                f"second pass: profiling {slowest} on {max(5000, run.trades // 5)} trades"
            )
            profiled = bench.PipelineRun(
                trades=max(5000, run.trades // 5), out_dir=run.out_dir, profile=slowest
            )
            p_keys, p_values = self._messages(profiled)
            self._pass(profiled, stages, p_keys, p_values, options["timeout"])
            result.profile_top = bench.profile_summary(run.out_dir / f"{slowest}.prof", slowest)
        self._report(result, run, options)

    def _pass(
        self,
        run: bench.PipelineRun,
        stages: list[str],
        keys: list[bytes],
        values: list[bytes],
        timeout: float,
    ) -> tuple[dict[str, float], dict[str, float]]:
        settings.STREAMING = dataclasses.replace(settings.STREAMING, topic_prefix=run.prefix)
        ensure_topics(ALL_TOPICS)
        run.start(stages)
        try:
            self._wait_until_ready(run, stages)
            done = self._push_and_wait(run, stages, keys, values, timeout)
        finally:
            rss = run.stop()
        return done, rss

    def _messages(self, run: bench.PipelineRun) -> tuple[list[bytes], list[bytes]]:
        from trades.management.commands.produce_trades import (
            default_start,
            mean_gap,
            simulation_reference,
        )
        from trades.simulator import SimConfig, TradeSimulator

        snapshot = reference_snapshot()
        start = default_start(snapshot.calendars.get("XNYS"), datetime.now(UTC).date())
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

    def _push_and_wait(
        self,
        run: bench.PipelineRun,
        stages: list[str],
        keys: list[bytes],
        values: list[bytes],
        timeout: float,
    ) -> dict[str, float]:
        producer = KafkaProducer(
            bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
            acks="all",
            linger_ms=5,
            batch_size=512 * 1024,
        )
        target = topics.topic(topics.TRADES_EXECUTED)
        run.publish_started = time.time()
        for key, value in zip(keys, values, strict=True):
            producer.send(target, key=key, value=value)
        producer.flush()
        producer.close()
        self.stdout.write(
            f"published {len(values)} messages in {time.time() - run.publish_started:.1f} s; waiting for the stages"
        )
        done: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(stages):
            lag = group_lag(run.prefix)
            for stage in stages:
                group = topics.group(stage)
                if (
                    stage not in done
                    # a stage sent nothing (all held upstream) has no offsets: done with upstream
                    and lag.get(group, 0) == 0
                    and self._upstream_done(stage, stages, done)
                ):
                    done[stage] = time.time()
            if time.monotonic() > deadline:
                raise CommandError(
                    f"stages not done after {timeout:.0f}s: lag {lag}, outbox {outbox_backlog()}"
                )
            time.sleep(0.2)
        return done

    def _upstream_done(self, stage: str, stages: list[str], done: dict[str, float]) -> bool:
        earlier = stages[: stages.index(stage)]
        return all(s in done for s in earlier) and (not earlier or outbox_backlog() == 0)

    def _figures(
        self,
        result: bench.BenchResult,
        run: bench.PipelineRun,
        stages: list[str],
        done: dict[str, float],
        rss: dict[str, float],
    ) -> None:
        start = run.publish_started
        previous = start
        for stage in stages:
            seconds = done[stage] - start
            result.stages.append(
                bench.StageFigure(
                    stage, 1, seconds, result.messages_sent / seconds, rss.get(stage, 0.0)
                )
            )
            previous = done[stage]
        final, table, column = next((s, t, c) for s, t, c in reversed(bench.STAGES) if s in stages)
        result.final_stage = final
        result.end_to_end_seconds = previous - start
        result.end_to_end_rate = run.trades / result.end_to_end_seconds
        result.relay_peak_rss_mb = rss.get("relay", 0.0)
        result.ratio_to_ceiling = (
            result.end_to_end_rate / result.kafka_ceiling_rate if result.kafka_ceiling_rate else 0.0
        )
        visible = bench.visible_times(table, column, f"SIM{run.seed}-")
        publish = datetime.fromtimestamp(start, tz=UTC)
        latencies = [(at - publish).total_seconds() * 1000 for at in visible.values()]
        result.latency_p50_ms = bench.percentile(latencies, 0.50)
        result.latency_p99_ms = bench.percentile(latencies, 0.99)

    def _report(
        self, result: bench.BenchResult, run: bench.PipelineRun, options: dict[str, Any]
    ) -> None:
        lines = bench.summary_lines(result)
        for line in lines:
            self.stdout.write(line)
        (run.out_dir / "result.json").write_text(bench.to_json(result))
        bench.write_docs(Path(options["docs"]), result)
        self.stdout.write(f"wrote {run.out_dir / 'result.json'} and {options['docs']}")
