"""The benchmark's own arithmetic and bookkeeping (no services): CPU accounting, percentiles and
the docs section it rewrites. The benchmark itself is ``make bench``, never a test."""

from __future__ import annotations

import os
from pathlib import Path

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
