"""The benchmark's own arithmetic and bookkeeping (no services): CPU accounting, percentiles and
the docs section it rewrites. The benchmark itself is ``make bench``, never a test."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from backoffice import bench


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
