"""``manage.py bench --trades N``: push N trades through every stage and measure (see backoffice/bench.py)."""

from __future__ import annotations

import argparse
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
# The whole-day pass publishes in chunks, each once no stage is more than the window behind:
# enough queued that every stage works in full batches (with 2,000 the stages waited on each
# other and the pass measured latency, about 530 trades/s against 1,300 at full push), and no
# stage more than 2 % of a 1,000,000-trade day ahead of another.
DAY_CHUNK = 500
DAY_WINDOW = 20_000
# The passes --only can pick; every one of them runs in a full bench.
ONLY_PASSES = ["floor", "open-loop", "day", "sweep"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _rates(text: str) -> list[float]:
    """'1000,2000' -> [1000.0, 2000.0]; '' -> [] (no open-loop pass)."""
    try:
        return [_positive(part.strip()) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(
            f"{error}: give trades/s as comma-separated positive numbers, e.g. 1000,2000"
        ) from None


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
            "--open-loop-rates",
            type=_rates,
            default=[1000.0, 2000.0],
            help="trades/s offered in the open-loop passes, comma-separated ('' skips them)",
        )
        parser.add_argument("--open-loop-seconds", type=_positive, default=30.0)
        parser.add_argument(
            "--day-trades",
            type=int,
            default=1_000_000,
            help="trades in the whole-day pass cut into tenths (0 skips it)",
        )
        parser.add_argument(
            "--sweep-trades",
            type=int,
            default=50_000,
            help="trades per cell of the consumers x partitions sweep (0 skips it)",
        )
        parser.add_argument(
            "--only",
            choices=ONLY_PASSES,
            help="run only this pass (floor: the null-handler pipeline with --trades trades);"
            " no other ceilings, no concurrent pass, docs untouched, figures to --out as JSON",
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
        if options["only"]:
            result = bench.BenchResult(
                trades=0,
                messages_sent=0,
                machine=bench.machine_description(),
                started_at=clock.now().isoformat(timespec="seconds"),
            )
            self._extra_passes(result, run, stages, options, only=options["only"])
            for line in [*bench.floor_lines(result), *bench.extra_lines(result)]:
                self.stdout.write(line)
            run.out_dir.mkdir(parents=True, exist_ok=True)
            written = run.out_dir / f"bench-only-{options['only']}.json"
            written.write_text(bench.to_json(result) + "\n")
            self.stdout.write(f"wrote {written}")
            return
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
        self._extra_passes(result, run, stages, options, only=None)
        self._report(result, run, options)

    def _extra_passes(
        self,
        result: bench.BenchResult,
        run: bench.PipelineRun,
        stages: list[str],
        options: dict[str, Any],
        *,
        only: str | None,
    ) -> None:
        """The null-handler floor, the open-loop passes, the whole-day pass and the scale-out
        sweep, each on trades of a later business day than every pass before it (so no pass
        restates another's positions) and in its own topic prefix."""
        day = 3
        timeout = options["timeout"]
        rates: list[float] = options["open_loop_rates"]
        if only in (None, "floor"):
            self.stdout.write(f"floor: {run.trades} trades through the null-handler pipeline")
            null = bench.PipelineRun(
                trades=run.trades,
                out_dir=run.out_dir,
                seed=run.seed + day,
                day=day,
                null_handlers=True,
            )
            result.floor = self._floor(null, stages, timeout)
            day += 1
        if only in (None, "open-loop"):
            for rate in rates:
                trades = max(1, round(rate * options["open_loop_seconds"]))
                self.stdout.write(f"open loop: {trades} trades offered at {rate:,.0f}/s")
                paced = bench.PipelineRun(
                    trades=trades, out_dir=run.out_dir, seed=run.seed + day, day=day
                )
                result.open_loop.append(self._open_loop(paced, stages, rate, timeout))
                day += 1
        if only in (None, "day") and options["day_trades"]:
            self.stdout.write(
                f"day: {options['day_trades']} trades published in step with the pipeline"
            )
            whole = bench.PipelineRun(
                trades=options["day_trades"], out_dir=run.out_dir, seed=run.seed + day, day=day
            )
            result.day = self._day(whole, stages, timeout)
            day += 1
        if only in (None, "sweep") and options["sweep_trades"]:
            for consumers in (1, 2):
                for partitions in (4, 16):
                    self.stdout.write(f"sweep: {consumers} consumer(s) x {partitions} partitions")
                    cell = bench.PipelineRun(
                        trades=options["sweep_trades"],
                        out_dir=run.out_dir,
                        seed=run.seed + day,
                        day=day,
                        consumers=consumers,
                    )
                    result.sweep.append(self._sweep_cell(cell, stages, partitions, timeout))
                    day += 1

    def _open_loop(
        self, run: bench.PipelineRun, stages: list[str], rate: float, timeout: float
    ) -> bench.OpenLoopFigure:
        """Every stage running while trades are published at ``rate``: each trade's latency from
        its last message's send to its P&L row's commit."""
        keys, values = self._messages(run)
        self._use_prefix(run)
        run.start(stages)
        try:
            self._wait_until_ready(run, stages)
            published = self._publish(run, keys, values, rate=rate)
            self._wait_done(run, stages, timeout)
        finally:
            run.stop()
        times, _ = self._completions(run, stages)
        latencies = [
            (at - run.last_sent_at[t]) * 1000 for t, at in times.items() if t in run.last_sent_at
        ]
        first = min(run.sent_at.values())
        return bench.OpenLoopFigure(
            target_rate=rate,
            trades=run.trades,
            published_rate=published,
            through_rate=len(times) / (max(times.values()) - first) if times else 0.0,
            latency_p50_ms=bench.percentile(latencies, 0.50),
            latency_p99_ms=bench.percentile(latencies, 0.99),
            latency_max_ms=max(latencies, default=0.0),
        )

    def _day(self, run: bench.PipelineRun, stages: list[str], timeout: float) -> bench.DayFigure:
        """A day's trades published in step with the pipeline: throughput per tenth of the day,
        by completion, says whether a trade costs more as the day fills up. In step, because with
        a full-speed push the stages drift apart (capture finishes early and the last tenths run
        with a core to spare), which would flatter the last tenth."""
        keys, values = self._messages(run)
        self._use_prefix(run)
        run.start(stages)
        try:
            self._wait_until_ready(run, stages)
            backlog = bench.Backlog(stages)
            try:
                self._publish(run, keys, values, backlog=backlog)
            finally:
                backlog.close()
            del keys, values
            self._wait_done(run, stages, timeout)
        finally:
            run.stop()
        done = list(self._completions(run, stages)[0].values())
        return bench.DayFigure(
            trades=run.trades,
            window=DAY_WINDOW,
            reached=len(done),
            seconds=max(done) - min(done) if done else 0.0,
            slice_rates=bench.slice_rates(done),
        )

    def _sweep_cell(
        self, run: bench.PipelineRun, stages: list[str], partitions: int, timeout: float
    ) -> bench.SweepFigure:
        seconds, cpu, _ = self._full_push(run, stages, timeout, partitions=partitions)
        return bench.SweepFigure(
            consumers=run.consumers,
            partitions=partitions,
            trades=run.trades,
            rate=run.trades / seconds,
            cpu_ms_per_trade=sum(cpu.values()) * 1000 / run.trades,
        )

    def _floor(
        self, run: bench.PipelineRun, stages: list[str], timeout: float
    ) -> bench.FloorFigure:
        """The null-handler pipeline at full push, measured as the concurrent pass is: from the
        first publish to the last stage done, CPU of every process, writes and records."""
        seconds, cpu, writes_before = self._full_push(run, stages, timeout)
        return bench.floor_figure(
            trades=run.trades,
            seconds=seconds,
            cpu_seconds=cpu,
            records=bench.produced_records(run.prefix, bench.STAGE_INPUTS["capture"][0]),
            writes_before=writes_before,
            # After the stop: a process flushes its last table statistics when it exits.
            writes_after=bench.write_counts(),
        )

    def _full_push(
        self,
        run: bench.PipelineRun,
        stages: list[str],
        timeout: float,
        partitions: int | None = None,
    ) -> tuple[float, dict[str, float], dict[str, int]]:
        """Publish the run's trades at full speed, in a prefix of their own, through ``stages``:
        the seconds from the first publish to the last stage done, the CPU seconds of every
        process, and the table write counters once the stages were ready."""
        keys, values = self._messages(run)
        self._use_prefix(run, partitions=partitions)
        run.start(stages)
        try:
            self._wait_until_ready(run, stages)
            meter = bench.CpuMeter(run.pids())
            writes_before = bench.write_counts()
            meter.start()
            self._publish(run, keys, values)
            done = self._wait_done(run, stages, timeout)
            cpu, _ = meter.stop()
        finally:
            run.stop()
        final = next(s for s, _, _ in reversed(bench.STAGES) if s in stages)
        return done[final] - run.publish_started, cpu, writes_before

    def _completions(
        self, run: bench.PipelineRun, stages: list[str]
    ) -> tuple[dict[str, float], str]:
        """When each trade of the run reached the last stage: its row's commit time (epoch
        seconds), or, on a server without commit timestamps, the time the stage stamped on it
        (the batch's start); and which of the two it is."""
        _, table, column = next((s, t, c) for s, t, c in reversed(bench.STAGES) if s in stages)
        prefix = f"SIM{run.seed}-"
        committed = bench.commit_times(table, prefix)
        if committed is not None:
            return committed, "committed"
        stamped = bench.visible_times(table, column, prefix)
        return {t: at.timestamp() for t, at in stamped.items()}, "stamped (batch start)"

    def _use_prefix(self, run: bench.PipelineRun, partitions: int | None = None) -> None:
        settings.STREAMING = dataclasses.replace(settings.STREAMING, topic_prefix=run.prefix)
        ensure_topics(ALL_TOPICS, partitions=partitions)
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
            statements_before = bench.statement_count()
            meter.start()
            self._publish(run, keys, values)
            done = self._wait_done(run, stages, timeout)
            cpu = meter.stop()
            statements_after = bench.statement_count()
        finally:
            rss = run.stop()
        self.statements = (
            None
            if statements_before is None or statements_after is None
            else (statements_after - statements_before) / run.trades
        )
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

    def _publish(
        self,
        run: bench.PipelineRun,
        keys: list[bytes],
        values: list[bytes],
        rate: float | None = None,
        backlog: bench.Backlog | None = None,
    ) -> float:
        """Publish at full speed; or at ``rate`` messages a second (open loop: the schedule does
        not wait for the pipeline); or in step with it, each chunk once no stage is more than
        ``DAY_WINDOW`` messages behind (``backlog``). Returns the rate achieved."""
        producer = KafkaProducer(
            bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
            acks="all",
            linger_ms=5 if rate is None else 1,
            batch_size=512 * 1024,
        )
        target = topics.topic(topics.TRADES_EXECUTED)
        # Stage figures are durations from here (monotonic); a trade's latency compares when it
        # was sent with the commit timestamp of its row, so it uses the wall clock too.
        run.publish_started = time.monotonic()
        for index, (key, value) in enumerate(zip(keys, values, strict=True)):
            if backlog is not None and index % DAY_CHUNK == 0:
                producer.flush()
                while max(backlog.behind().values()) > DAY_WINDOW:
                    time.sleep(0.05)  # pacing: the pipeline has to catch up first
            if rate is not None:
                # Pacing, not synchronisation: the n-th message is due n/rate s after the first.
                ahead = run.publish_started + index / rate - time.monotonic()
                if ahead > 0.002:
                    time.sleep(ahead)
            found = TRADE_ID.search(value)
            if found:
                now = clock.epoch_seconds()
                trade_id = found.group(1).decode()
                run.sent_at.setdefault(trade_id, now)
                run.last_sent_at[trade_id] = now
            producer.send(target, key=key, value=value)
        producer.flush()
        producer.close()
        seconds = time.monotonic() - run.publish_started
        self.stdout.write(f"  published {len(values)} messages in {seconds:.1f} s")
        return len(values) / seconds if seconds > 0 else 0.0

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
        pids = set(run.pids().values())
        wanted = len(stages) * run.consumers
        while time.monotonic() < deadline:
            # every consumer process of the run holds partitions (with more consumers than a
            # topic has partitions some would idle, which the sweep never asks for)
            ready = ConsumerHeartbeat.objects.filter(
                group__in={topics.group(s) for s in stages}, partitions__gt=0, pid__in=pids
            ).count()
            if ready >= wanted:
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
        backlog = bench.Backlog(stages)
        try:
            while len(done) < len(stages):
                for stage in stages:
                    earlier = stages[: stages.index(stage)]
                    # In this order: the outbox is read empty after the stage before is done, and
                    # the stage's backlog after that, so nothing is still on its way to it.
                    if (
                        stage not in done
                        and all(s in done for s in earlier)
                        and (not earlier or outbox_backlog() == 0)
                        and backlog.behind()[stage] == 0
                    ):
                        done[stage] = time.monotonic()  # compared with run.publish_started
                if time.monotonic() > deadline:
                    behind = {s: n for s, n in backlog.behind().items() if s not in done}
                    raise CommandError(
                        f"stages not done after {timeout:.0f}s: behind {behind},"
                        f" outbox {outbox_backlog()} (logs in {run.out_dir})"
                    )
                time.sleep(0.2)
        finally:
            backlog.close()
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
        final = next(s for s, _, _ in reversed(bench.STAGES) if s in stages)
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
        result.statements_per_trade = self.statements
        completions, result.latency_source = self._completions(run, stages)
        result.trades_through = len(completions)
        latencies = [
            (at - run.last_sent_at[trade_id]) * 1000
            for trade_id, at in completions.items()
            if trade_id in run.last_sent_at
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
