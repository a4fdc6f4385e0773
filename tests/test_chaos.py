"""The chaos run's own logic (no services): its seeded schedule, its dates and the expectation it
checks the database against. The run itself is ``make chaos``; that a broken build fails it is
``make chaos-mutants``."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backoffice import chaos
from backoffice.streaming.management.commands.chaos import messages, trade_start
from trades.calendar import MarketCalendar
from trades.simulator import SimCounterparty, SimInstrument, SimReference


def sent(
    trade_id: str, version: int, action: str, side: str = "BUY", qty: str = "100"
) -> chaos.Sent:
    payload = {
        "trade_id": trade_id,
        "trade_version": version,
        "action": action,
        "side": side,
        "quantity": qty,
    }
    return chaos.Sent(b"ACC-1", json.dumps(payload).encode(), action)


MESSAGES = [
    sent("T1", 1, "NEW"),
    sent("T1", 2, "AMEND", qty="150"),
    sent("T2", 1, "NEW", side="SELL", qty="40"),
    sent("T2", 2, "CANCEL"),
    sent("T3", 1, "NEW", qty="7"),
    chaos.Sent(b"ACC-1", b'{"trade_id": "T9"', "MALFORMED"),
]


def test_schedule_is_a_function_of_the_seed_with_every_fault_kind() -> None:
    first = chaos.schedule(7, window=100.0, processes=["relay", "capture"], kills=20)
    assert first == chaos.schedule(7, window=100.0, processes=["relay", "capture"], kills=20)
    assert first != chaos.schedule(8, window=100.0, processes=["relay", "capture"], kills=20)
    assert {f.kind for f in first} == set(chaos.FAULTS)
    assert sum(f.kind == "kill9" for f in first) == 20
    assert [f.at for f in first] == sorted(f.at for f in first)


def test_the_schedule_crashes_consumers_at_every_failpoint_and_leaves_the_rest_as_it_was() -> None:
    with_crashes = chaos.schedule(7, window=100.0, processes=["relay", "capture"], crashes=10)
    without = chaos.schedule(7, window=100.0, processes=["relay", "capture"], crashes=0)
    crashes = [f for f in with_crashes if f.kind == "crash_at"]
    assert [f for f in with_crashes if f.kind != "crash_at"] == without
    consumer = {f.point.split("=")[0] for f in crashes if f.target == "capture"}
    relay = {f.point.split("=")[0] for f in crashes if f.target == "relay"}
    assert consumer == set(chaos.CRASH_POINTS)
    assert relay == {"relay_after_publish"}
    assert all(int(f.point.split("=")[1]) >= 1 for f in crashes)
    assert all(f.at <= 50.0 for f in crashes)  # while trades still flow


def test_parks_stop_a_consumer_after_a_poll_past_the_runs_max_poll_interval() -> None:
    from backoffice.streaming.failpoints import Armed, _parse

    faults = chaos.schedule(5, window=100.0, processes=["relay", "capture"], parks=2)
    parks = [f for f in faults if f.kind == "park"]
    assert [f.target for f in parks] == ["capture", "capture"]
    for fault in parks:
        armed = _parse(fault.point)["after_poll"]
        assert armed.pause == chaos.PARK_SECONDS > 10  # chaos runs max.poll.interval.ms 10 s
        assert armed.hit >= 2
    assert _parse("after_poll=2/pause15,mid_effects=3") == {
        "after_poll": Armed(2, 15.0),
        "mid_effects": Armed(3, 0.0),
    }


def test_crashes_around_publishing_go_to_consumers_that_publish() -> None:
    faults = chaos.schedule(
        3,
        window=100.0,
        processes=["relay", "capture", "reporting"],
        crashes=30,
        emitters=["capture"],
    )
    around = {f.target for f in faults if f.point.split("=")[0] in chaos.PUBLISH_POINTS}
    assert around == {"capture"}
    assert "reporting" in {f.target for f in faults if f.kind == "crash_at"}


def test_failpoints_named_in_the_schedule_exist_in_the_runtime() -> None:
    """A crash point the runtime never reaches would be a fault that never happens."""
    runtime = "".join(
        (Path(__file__).parents[1] / "backoffice" / "streaming" / name).read_text()
        for name in ("consumer.py", "store.py", "emitter.py", "relay.py")
    )
    for point in (*chaos.CRASH_POINTS, "relay_after_publish"):
        assert f'failpoint("{point}")' in runtime, point


def test_in_force_takes_the_validated_version_from_the_messages_and_drops_cancels() -> None:
    # compliance validated T1 at v1 only (v2 waits in the exception queue); T2 was cancelled;
    # T3 never passed.
    verdicts = {"T1": (1, "WAITING"), "T2": (1, "CANCELLED"), "T3": (None, "WAITING")}
    assert chaos.expect_in_force(MESSAGES, verdicts) == {"T1": (1, "BUY", Decimal("100"))}


def test_compare_in_force_passes_only_an_exact_match() -> None:
    expected = {"T1": (2, "BUY", Decimal("150")), "T3": (1, "BUY", Decimal("7"))}
    exact = {"T1": [(2, "BUY", Decimal("150.000000"))], "T3": [(1, "BUY", Decimal("7"))]}
    assert chaos.compare_in_force("P&L trades", expected, exact).passed


def test_compare_in_force_names_missing_extra_doubled_and_wrong_trades() -> None:
    expected = {"T1": (2, "BUY", Decimal("150")), "T3": (1, "BUY", Decimal("7"))}
    actual = {
        "T1": [(1, "BUY", Decimal("100"))],  # stale version
        "T4": [(1, "SELL", Decimal("5"))],  # never validated
    }
    check = chaos.compare_in_force("settlement obligations", expected, actual)
    assert not check.passed
    assert "1 missing (e.g. T3)" in check.detail
    assert "1 unexpected (e.g. T4)" in check.detail
    assert "1 at the wrong version or quantity (e.g. T1)" in check.detail
    doubled = {"T1": [(2, "BUY", Decimal("150"))] * 2, "T3": [(1, "BUY", Decimal("7"))]}
    assert "1 held twice (e.g. T1)" in chaos.compare_in_force("x", expected, doubled).detail


# Chaos's dates (no services): each phase trades on the clock's business day and closes, in a
# database of its own, exactly the days its trades settle on. The holidays that move the days
# around these weeks, written here so the test does not follow edits to the reference data.
NYSE = MarketCalendar(
    "NYSE",
    frozenset({date(2026, 11, 26), date(2026, 12, 25), date(2027, 1, 1)}),
    settlement_cycle=1,
)
TARGET2 = MarketCalendar(
    "TARGET2",
    frozenset({date(2026, 12, 25), date(2026, 12, 26), date(2027, 1, 1)}),
    settlement_cycle=2,
)
CALENDARS = {"XNYS": NYSE, "XNAS": NYSE, "ARCX": NYSE, "XETR": TARGET2, "XPAR": TARGET2}
# Every weekday of an ordinary week (with Wednesday 2026-12-02, the day the issue was found), of
# Thanksgiving week (NYSE closed, TARGET2 open), of Christmas week and of New Year's week.
MONDAYS = (date(2026, 11, 30), date(2026, 11, 23), date(2026, 12, 21), date(2026, 12, 28))
DAYS = [monday + timedelta(days=n) for monday in MONDAYS for n in range(7)]
REFERENCE = SimReference(
    instruments=(
        SimInstrument("US0378331005", "USD", "XNYS", Decimal("0.01"), Decimal("231.40")),
        SimInstrument("DE0007164600", "EUR", "XETR", Decimal("0.01"), Decimal("120.50")),
    ),
    accounts=("ACC-0001", "ACC-0002"),
    counterparties=(SimCounterparty("CP-NRTH", frozenset({"XNYS", "XETR"})),),
    calendars=CALENDARS,
)


def _at_noon(time_machine: Any, day: date) -> None:
    time_machine.move_to(datetime.combine(day, time(12), tzinfo=UTC), tick=False)


@pytest.mark.parametrize("today", DAYS, ids=lambda d: f"{d:%a-%Y-%m-%d}")
def test_a_phase_trades_on_a_business_day_and_closes_only_its_own_settle_days(
    time_machine: Any, today: date
) -> None:
    _at_noon(time_machine, today)
    trade_date = trade_start(CALENDARS).date()
    # the clock's business day: the last NYSE business day on or before its today
    assert NYSE.is_business_day(trade_date)
    assert trade_date <= today
    assert not any(
        NYSE.is_business_day(trade_date + timedelta(days=n))
        for n in range(1, (today - trade_date).days + 1)
    )
    phase = chaos.phase_days(trade_date, CALENDARS)
    assert phase.settle_dates == {
        NYSE.settlement_date(trade_date),
        TARGET2.settlement_date(trade_date),
    }
    assert all(d > trade_date for d in phase.settle_dates)
    # scripts/chaos.sh gives each phase a fresh database: the custodian has closed nothing yet
    days, check = chaos.custodian_close(phase, phase.settle_dates, closed_before=[])
    assert check.passed, check.detail
    assert days == sorted(phase.settle_dates)


@pytest.mark.parametrize("today", [date(2026, 12, 2), date(2026, 11, 28), date(2026, 12, 24)])
def test_every_trade_a_run_sends_settles_on_one_of_its_phase_days(
    time_machine: Any, today: date
) -> None:
    _at_noon(time_machine, today)
    start = trade_start(CALENDARS)
    phase = chaos.phase_days(start.date(), CALENDARS)
    instruments = {i.isin: i.market for i in REFERENCE.instruments}
    settle_dates = set()
    for message in messages(REFERENCE, seed=7, count=5000, start=start):
        if message.kind in ("MALFORMED", "INVALID"):
            continue
        payload = json.loads(message.value)
        assert payload["trade_date"] == phase.trade_date.isoformat()
        calendar = CALENDARS[instruments[payload["instrument"]]]
        settle_dates.add(
            date.fromisoformat(payload["settle_date"])
            if "settle_date" in payload
            else calendar.settlement_date(phase.trade_date)
        )
    assert settle_dates == phase.settle_dates


def test_a_whole_default_run_stays_on_its_trade_date() -> None:
    # 100,000 trades spread over the session from the US open: none may spill into the next
    # day, whose settle dates the run would not close.
    start = datetime(2026, 12, 2, 14, 30, tzinfo=UTC)
    dates = {
        json.loads(m.value)["trade_date"]
        for m in messages(REFERENCE, seed=11, count=100_000, start=start)
        if m.kind not in ("MALFORMED", "INVALID")
    }
    assert dates == {"2026-12-02"}


def test_it_names_a_settle_day_an_earlier_phase_closed_in_the_same_database() -> None:
    # The layout before this fix, from Wednesday 2026-12-02: phase 1 trades Wednesday and closes
    # Thursday (NYSE T+1) and Friday (TARGET2 T+2); phase 2, in the same database a business day
    # later, has its NYSE trades due on that Friday, which the custodian closes only once.
    first = chaos.phase_days(date(2026, 12, 2), CALENDARS)
    second = chaos.phase_days(date(2026, 12, 3), CALENDARS)
    assert first.settle_dates == {date(2026, 12, 3), date(2026, 12, 4)}
    days, check = chaos.custodian_close(second, second.settle_dates, first.settle_dates)
    assert not check.passed
    assert check.name == chaos.CUSTODIAN_DAYS
    assert "2026-12-04 already closed by an earlier run in this database" in check.detail
    assert days == [date(2026, 12, 7)]


def test_it_names_a_settle_date_the_phase_did_not_trade_for() -> None:
    phase = chaos.phase_days(date(2026, 12, 2), CALENDARS)
    _, check = chaos.custodian_close(phase, {date(2026, 12, 3), date(2026, 12, 7)}, [])
    assert not check.passed
    assert check.detail == "2026-12-07 not a settle date of trades dated 2026-12-02"


MUTANTS = sorted((Path(__file__).resolve().parents[1] / "scripts/chaos/mutants").glob("*.patch"))


@pytest.mark.parametrize("patch", MUTANTS, ids=[p.stem for p in MUTANTS])
def test_every_chaos_mutant_still_applies_to_the_tree(patch: Path) -> None:
    """A mutant that no longer applies makes ``make chaos-mutants`` stop before it runs: the
    drift shows here, in ``make test``, the day the code under the patch changes."""
    done = subprocess.run(
        ["git", "apply", "--check", str(patch)],
        cwd=patch.parents[3],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"{patch.name}: {done.stderr.strip()} (regenerate the patch)"
