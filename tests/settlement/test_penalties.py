"""Fails in the database: idempotent daily penalty accrual, aging and the fails report.

AAPL (liquid shares, 1.0 bp/day) delivery of 300 fails on Fri 27 Nov 2026 (ISD):
failed value 300 x 231.40 = 69,420.00 -> 6.94 per failing day (6.942 half-even).
NYSE: Thu 26 Nov is Thanksgiving; Mon 30 Nov and Tue 1 Dec are business days.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from settlement.fails import AgeBucket
from settlement.models import Fail, FailPenalty
from settlement.netting import NettingKey, PaymentType, chain_id
from settlement.selectors import fails_list, fails_report
from settlement.services import fail_penalties_accrue
from tests.settlement.conftest import MSFT, NOW, status, trade
from tests.settlement.test_stage_settlement import CHAIN
from trades.calendar import CALENDAR_NOT_COVERED

# NYSE holidays are loaded for 2025-01-01..2028-12-31 (trades/data/holidays.json).
PAST_COVERAGE = date(2029, 1, 3)
NYSE_NOT_COVERED = CALENDAR_NOT_COVERED.format(
    calendar="NYSE", first="2025-01-01", last="2028-12-31", day="2029-01-01", year=2029
)
MSFT_CHAIN = chain_id(
    NettingKey("ACC-0001", "CP-NRTH", MSFT, date(2026, 11, 27), "USD", PaymentType.DVP)
)

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(settle) -> None:
    settle.trades(trade("T1", side="SELL", quantity="300"))
    settle.statuses(status(f"{CHAIN}-v1", 1, "FAILED", reason_code="INSUFFICIENT_SECURITIES"))


def penalties() -> list[tuple[date, int, Decimal]]:
    return list(
        FailPenalty.objects.order_by("accrual_date").values_list(
            "accrual_date", "day_number", "penalty"
        )
    )


def test_accrual_is_idempotent_per_fail_and_day(failed):
    first = fail_penalties_accrue(as_of=date(2026, 11, 30), now=NOW)
    assert (first.fails, first.created, first.missing_rate) == (1, 2, [])
    again = fail_penalties_accrue(as_of=date(2026, 11, 30), now=NOW)
    assert again.created == 0
    later = fail_penalties_accrue(as_of=date(2026, 12, 1), now=NOW)
    assert later.created == 1
    assert penalties() == [
        (date(2026, 11, 27), 1, D("6.94")),
        (date(2026, 11, 30), 2, D("6.94")),
        (date(2026, 12, 1), 3, D("6.94")),
    ]


def test_a_settled_fail_stops_accruing(failed, settle):
    settle.statuses(status(f"{CHAIN}-v1", 2, "SETTLED", day="2026-11-30"))
    fail_penalties_accrue(as_of=date(2026, 12, 4), now=NOW)
    assert penalties() == [(date(2026, 11, 27), 1, D("6.94"))]


def test_the_command_accrues_through_a_date(failed, capsys):
    call_command("accrue_fail_penalties", "--as-of", "2026-11-30")
    assert capsys.readouterr().out.strip() == "2026-11-30: 2 penalty day(s) accrued over 1 fail(s)"
    call_command("accrue_fail_penalties", "--as-of", "2026-11-30")
    assert capsys.readouterr().out.strip() == "2026-11-30: 0 penalty day(s) accrued over 1 fail(s)"


def test_fails_are_aged_in_business_days_with_their_penalties(failed):
    fail_penalties_accrue(as_of=date(2026, 12, 1), now=NOW)
    (row,) = fails_list(as_of=date(2026, 12, 1))
    assert (row.age, row.bucket, row.penalties) == (3, AgeBucket.DAYS_2_3, D("20.82"))
    (row,) = fails_list(as_of=date(2026, 11, 27))
    assert (row.age, row.bucket, row.penalties) == (1, AgeBucket.DAY_1, D("6.94"))


def test_the_fails_report_buckets_by_currency(failed):
    report = fails_report(as_of=date(2026, 12, 1))
    assert report.open_fails == 1
    assert report.penalties_to_date == {"USD": D("20.82")}
    assert [(b.bucket, b.count, b.failed_value) for b in report.buckets if b.count] == [
        (AgeBucket.DAYS_2_3, 1, D("69420.00"))
    ]


@pytest.fixture
def one_settled_one_open(failed, settle) -> None:
    """AAPL failed on 27 Nov and settled on 30 Nov; MSFT failed on 27 Nov and is still open."""
    settle.statuses(status(f"{CHAIN}-v1", 2, "SETTLED", day="2026-11-30"))
    settle.trades(trade("T2", side="SELL", quantity="100", instrument=MSFT, symbol="MSFT"))
    settle.statuses(status(f"{MSFT_CHAIN}-v1", 1, "FAILED", reason_code="INSUFFICIENT_SECURITIES"))
    assert Fail.objects.count() == 2


def test_a_fail_aging_past_the_loaded_holidays_is_skipped_and_the_others_accrue(
    one_settled_one_open,
):
    result = fail_penalties_accrue(as_of=PAST_COVERAGE, now=NOW)

    assert (result.fails, result.created, result.missing_rate) == (2, 1, [])
    assert result.uncovered == [f"{MSFT_CHAIN}-v1"]
    assert result.uncovered_calendars == {"NYSE": NYSE_NOT_COVERED}
    assert penalties() == [(date(2026, 11, 27), 1, D("6.94"))]  # AAPL's one failing day


def test_the_command_names_the_skipped_fails_and_what_to_load_once_per_calendar(
    one_settled_one_open, capsys
):
    call_command("accrue_fail_penalties", "--as-of", PAST_COVERAGE.isoformat())

    out, err = capsys.readouterr()
    assert out.strip() == "2029-01-03: 1 penalty day(s) accrued over 2 fail(s)"
    assert err.splitlines() == [
        f"1 fail(s) skipped, their failing days are past the loaded holidays: {MSFT_CHAIN}-v1",
        NYSE_NOT_COVERED,
    ]
