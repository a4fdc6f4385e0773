"""The business date: the one "today" every page filters by (docs/time.md)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
from django.core.management import call_command

from trades.management.commands.load_reference_data import reference_data_load
from trades.selectors import BUSINESS_DATE_WITHOUT_HOLIDAYS, business_date

pytestmark = pytest.mark.django_db


@pytest.fixture
def calendars() -> None:
    reference_data_load()


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 12, 2), date(2026, 12, 2)),  # a Wednesday is its own business date
        (date(2026, 11, 28), date(2026, 11, 27)),  # Saturday: Friday
        (date(2026, 11, 29), date(2026, 11, 27)),  # Sunday: Friday
        (date(2026, 11, 26), date(2026, 11, 25)),  # Thanksgiving: the Wednesday before
        (date(2027, 12, 25), date(2027, 12, 23)),  # Christmas Saturday, after NYSE's Friday closure
        (date(2028, 1, 17), date(2028, 1, 14)),  # MLK day 2028, a Monday: the Friday before
    ],
)
def test_it_is_the_latest_business_day_on_or_before_today(calendars, today, expected):
    assert business_date(today=today) == expected


def test_it_follows_the_clock(calendars, set_clock):
    set_clock(datetime(2026, 11, 26, 20, 0, tzinfo=UTC))  # Thanksgiving evening
    assert business_date() == date(2026, 11, 25)
    set_clock(datetime(2026, 11, 30, 0, 5, tzinfo=UTC))  # just past midnight UTC on Monday
    assert business_date() == date(2026, 11, 30)


def test_without_a_calendar_loaded_weekends_alone_decide(caplog):
    with caplog.at_level(logging.WARNING, logger="trades.selectors"):
        assert business_date(today=date(2026, 11, 26)) == date(2026, 11, 26)  # no holidays known
        assert business_date(today=date(2026, 11, 29)) == date(2026, 11, 27)
    assert BUSINESS_DATE_WITHOUT_HOLIDAYS.split(":")[0] in caplog.text


def test_past_the_loaded_holidays_it_still_answers_and_says_what_to_load(calendars, caplog):
    with caplog.at_level(logging.WARNING, logger="trades.selectors"):
        assert business_date(today=date(2031, 6, 7)) == date(2031, 6, 6)  # a Saturday
    assert "holidays" in caplog.text
    assert "load_reference_data" in caplog.text


def test_the_command_prints_it_and_counts_business_days_from_it(calendars, set_clock, capsys):
    set_clock(datetime(2026, 11, 30, 15, 0, tzinfo=UTC))  # Monday after Thanksgiving
    call_command("business_date")
    call_command("business_date", "--business-days", "-2")  # Fri 27, skipping the weekend; Wed 25
    call_command("business_date", "--business-days", "1")
    assert capsys.readouterr().out.split() == ["2026-11-30", "2026-11-25", "2026-12-01"]
