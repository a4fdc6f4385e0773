"""The benchmark's own arithmetic and bookkeeping (no services): CPU accounting, percentiles and
the docs section it rewrites. The benchmark itself is ``make bench``, never a test."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from backoffice import bench
from backoffice.streaming.envelope import Message
from backoffice.streaming.store import StageContext
from backoffice.streaming.tracing import new_trace


def _result(**cpu: float) -> bench.BenchResult:
    return bench.BenchResult(
        trades=1000, messages_sent=1000, machine="test box", started_at="now", cpu_seconds=cpu
    )


def test_process_cpu_seconds_counts_this_process_and_is_zero_for_a_gone_one() -> None:
    assert bench.process_cpu_seconds(os.getpid()) > 0
    assert bench.process_cpu_seconds(2**22 + 7) == 0.0  # above Linux's pid_max default


def test_percentile_picks_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 0.50) == 51.0
    assert bench.percentile(values, 0.99) == 99.0
    assert bench.percentile([], 0.5) == 0.0


def test_cpu_lines_rank_components_per_trade_and_state_the_cpu_bound() -> None:
    result = _result(capture=1.0, postgresql=3.0)
    lines = bench.cpu_lines(result)
    assert lines[0] == "postgresql: 3.000 ms/trade (75%)"
    assert lines[1] == "capture: 1.000 ms/trade (25%)"
    assert "total: 4.000 CPU-ms/trade" in lines[2]
    assert bench.cpu_bound_rate(result) == (os.cpu_count() or 1) * 1000 / 4.0


def test_write_docs_rewrites_only_the_marked_section(tmp_path: Path) -> None:
    docs = tmp_path / "performance.md"
    marker = "<!-- bench:results -->"
    docs.write_text(f"# Performance\nintro\n{marker}\nold figures\n{marker}\nafterword\n")
    result = _result(capture=1.0)
    result.end_to_end_rate, result.final_stage = 1234.0, "reporting"
    bench.write_docs(docs, result)
    text = docs.read_text()
    assert text.startswith("# Performance\nintro\n")
    assert text.endswith("\nafterword\n")
    assert "old figures" not in text
    assert "**1,234 trades/s**" in text
    assert text.count(marker) == 2


def test_writes_per_trade_are_the_deltas_over_the_trades_pushed() -> None:
    before = dict.fromkeys(bench.WRITE_KINDS, 100)
    after = {
        "inserts": 2100,
        "updates": 600,
        "hot_updates": 350,
        "deletes": 300,
        "index_entries": 6100,
    }
    writes = bench.per_trade_writes(before, after, 200)
    assert writes == {
        "inserts": 10.0,
        "updates": 2.5,
        "hot_updates": 1.25,
        "deletes": 1.0,
        "index_entries": 30.0,
    }
    result = _result()
    result.writes_per_trade = writes
    assert bench.write_line(result) == (
        "10.0 inserts, 2.50 updates (1.25 HOT), 1.00 deletes, 30.0 index entries"
    )
    assert bench.write_line(_result()) == "not measured"


def test_cpu_no_process_accounts_for_is_listed_as_unattributed() -> None:
    spent = {"capture": 2.0, "postgresql": 3.0}
    assert bench.with_unattributed(spent, 5.5) == {**spent, "unattributed": 0.5}
    # /proc/stat and per-process clocks tick apart: never a negative remainder
    assert bench.with_unattributed(spent, 4.9)["unattributed"] == 0.0


def test_slices_are_tenths_by_completion_each_over_its_own_span() -> None:
    # 100 completions: the first 51 one per 0.1 s, the rest one per 0.2 s (a day that slows).
    done = [i * 0.1 for i in range(51)] + [5.0 + i * 0.2 for i in range(1, 50)]
    rates = bench.slice_rates(list(reversed(done)))  # any order: ranked by time
    assert len(rates) == 10
    assert rates[0] == 9 / 0.9  # ranks 0..9, from the first completion: 9 gaps of 0.1 s
    assert rates[1] == 10 / 1.0
    assert rates[-1] == 10 / 2.0
    assert bench.DayFigure(100, 10, 100, 10.0, rates).last_to_first == rates[-1] / rates[0]
    assert bench.slice_rates([1.0, 2.0]) == []  # too few to cut into tenths


def test_extra_passes_are_listed_in_the_summary_and_the_json() -> None:
    result = _result()
    result.open_loop.append(bench.OpenLoopFigure(1000, 30000, 999.6, 998.0, 210.4, 480.2, 612.0))
    result.day = bench.DayFigure(1_000_000, 2000, 912_345, 700.0, [1500.0] * 9 + [1275.0])
    result.sweep.append(bench.SweepFigure(2, 16, 50_000, 1800.4, 1.1234))
    lines = bench.summary_lines(result)
    assert (
        "open loop: 1,000 trades/s offered (30,000 trades, published at 1,000/s):"
        " publish -> P&L committed p50 210 ms, p99 480 ms, max 612 ms; 998 trades/s through"
    ) in lines
    day = next(line for line in lines if line.startswith("day: "))
    assert "1,500, 1,275; last tenth at 85% of the first" in day
    assert "sweep: 2 consumer(s) per stage x 16 partitions: 1,800 trades/s, 1.123 CPU-ms/trade" in (
        " ".join(lines)
    )
    assert "SQL statements per trade: not measured" in " ".join(lines)
    data = json.loads(bench.to_json(result))
    assert data["day"]["slice_rates"][-1] == 1275.0
    assert data["sweep"][0]["partitions"] == 16


def test_open_loop_rates_are_positive_numbers_or_a_clear_error() -> None:
    from backoffice.streaming.management.commands.bench import _rates

    assert _rates("1000, 2000") == [1000.0, 2000.0]
    assert _rates("") == []  # no open-loop pass
    for bad in ("1000,abc", "0", "-5", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="comma-separated positive numbers"):
            _rates(bad)


def _floor() -> bench.FloorFigure:
    return bench.floor_figure(
        trades=2000,
        seconds=0.5,
        cpu_seconds={"capture": 0.2, "postgresql": 0.6, "relay": 0.2},
        records=6400,
        writes_before=dict.fromkeys(bench.WRITE_KINDS, 0),
        writes_after={
            "inserts": 8000,
            "updates": 400,
            "hot_updates": 400,
            "deletes": 6000,
            "index_entries": 16000,
        },
    )


def test_floor_figure_is_per_trade_over_the_trades_pushed() -> None:
    floor = _floor()
    assert floor.rate == 4000.0
    assert floor.cpu_ms_per_trade == 0.5
    assert floor.records_per_trade == 3.2
    assert floor.writes_per_trade["inserts"] == 4.0
    zero = dict.fromkeys(bench.WRITE_KINDS, 0)
    stalled = bench.floor_figure(
        trades=10, seconds=0.0, cpu_seconds={}, records=0, writes_before=zero, writes_after=zero
    )
    assert stalled.rate == 0.0  # no division by a zero span


def test_floor_is_printed_next_to_the_ceilings_and_kept_in_the_json_and_docs(
    tmp_path: Path,
) -> None:
    result = _result(capture=1.0, postgresql=3.0)  # 4.0 CPU-ms/trade over 1,000 trades
    result.end_to_end_rate, result.final_stage = 1000.0, "reporting"
    result.floor = _floor()
    lines = bench.summary_lines(result)
    copy = next(i for i, line in enumerate(lines) if line.startswith("ceiling PostgreSQL COPY"))
    assert lines[copy + 1] == (
        "ceiling null-handler pipeline (same hops, handlers do nothing): 4,000 trades/s,"
        " 0.500 CPU-ms/trade (2,000 trades; per trade 3.20 records produced, 4.0 inserts,"
        " 0.20 updates (0.20 HOT), 3.00 deletes, 8.0 index entries)"
    )
    assert lines[copy + 2] == (
        "  its CPU-ms/trade by process: postgresql 0.300, capture 0.100, relay 0.100"
    )
    assert "pipeline / null-handler floor: 25% of its trades/s, 8.0x its CPU-ms/trade" in lines
    data = json.loads(bench.to_json(result))
    assert data["floor"]["rate"] == 4000.0
    assert data["floor"]["cpu_seconds"]["postgresql"] == 0.6
    docs = tmp_path / "performance.md"
    bench.write_docs(docs, result)
    text = docs.read_text()
    assert (
        "| ceiling: null-handler pipeline (same hops, handlers do nothing) | 4,000 trades/s,"
        in (text)
    )
    assert "| pipeline / null-handler floor | 25% of its trades/s, 8.0x its CPU-ms/trade |" in text


def test_without_a_floor_nothing_about_it_is_printed() -> None:
    result = _result()
    assert bench.floor_lines(result) == []
    assert not any("null-handler" in line for line in bench.summary_lines(result))
    # --only floor: no pipeline run to compare with, the floor alone
    result.floor = _floor()
    assert bench.floor_ratio_lines(result) == []
    assert len(bench.floor_lines(result)) == 2


def test_only_floor_is_a_pass_of_its_own() -> None:
    from backoffice.streaming.management.commands.bench import Command

    parser = Command().create_parser("manage.py", "bench")
    assert parser.parse_args(["--only", "floor", "--trades", "20000"]).only == "floor"
    assert parser.parse_args([]).only is None  # the full bench runs every pass, the floor too
    with pytest.raises(CommandError, match="invalid choice: 'ceilings'"):
        parser.parse_args(["--only", "ceilings"])


def test_a_null_handler_run_starts_the_stages_twins_on_the_generic_consumer() -> None:
    real = bench.PipelineRun(trades=1, out_dir=Path("unused"), seed=1)
    null = bench.PipelineRun(trades=1, out_dir=Path("unused"), seed=2, null_handlers=True)
    assert real.stage_command("capture") == ["consume_capture"]
    assert null.stage_command("settlement") == [
        "consume",
        "--stage",
        "backoffice.bench_floor:SETTLEMENT",
    ]


def _message(topic: str, offset: int, payload: dict) -> Message:
    return Message(
        topic=topic,
        partition=2,
        offset=offset,
        key="ACC-0001",
        payload=payload,
        schema="trades.executed",
        version=1,
        event_id=None,
        correlation_id=payload.get("trade_id"),
        trace=new_trace(),
        raw=b"{}",
    )


def test_null_stages_are_the_real_stages_names_and_topics() -> None:
    from backoffice import bench_floor
    from compliance.stage import STAGE as COMPLIANCE
    from reporting.stage import STAGE as REPORTING
    from settlement.stages import SETTLEMENT
    from trades.stage import CAPTURE

    for real in (CAPTURE, COMPLIANCE, SETTLEMENT, REPORTING):
        null = getattr(bench_floor, real.name.upper())
        assert null.name == real.name  # so the same consumer group
        assert [(s.topic, s.enveloped) for s in null.subscriptions] == [
            (s.topic, s.enveloped) for s in real.subscriptions
        ]
    assert [s for s, _, _ in bench.STAGES] == ["capture", "compliance", "settlement", "reporting"]


def test_a_null_handler_passes_each_trade_on_unchanged_and_drops_the_rest() -> None:
    from backoffice import bench_floor

    trade = {"trade_id": "T1", "account": "ACC-0001"}
    messages = [
        _message("trades.captured", 7, trade),
        _message("marketdata.prices", 8, {"isin": "US0378331005"}),
    ]
    ctx = StageContext("compliance", "backoffice.compliance", datetime(2026, 12, 3, tzinfo=UTC))
    result = bench_floor.COMPLIANCE.handler(messages, ctx)
    assert result.rejections == []
    [event] = result.events
    assert (event.topic, event.key, event.schema) == (
        "trades.validated",
        "ACC-0001",
        "trades.executed",
    )
    assert event.payload == trade
    assert event.cause is messages[0]  # the runtime derives its id and origin, as for a real event
    assert event.event_id is None
    assert bench_floor.REPORTING.handler(messages, ctx).events == []
