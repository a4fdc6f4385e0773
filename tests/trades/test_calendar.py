"""Business-day arithmetic against real 2026 holiday calendars, plus property tests; and the
coverage window outside which a calendar refuses to judge a date."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trades.calendar import (
    CALENDAR_NOT_COVERED,
    CALENDAR_NOT_LOADED,
    NO_COVERAGE,
    CalendarNotCoveredError,
    MarketCalendar,
)

# NYSE 2026 (published): New Year, MLK, Presidents, Good Friday, Memorial, Juneteenth,
# Independence Day observed (4 July is a Saturday), Labor Day, Thanksgiving, Christmas; plus
# New Year 2027 so year-end trades can roll.
XNYS_HOLIDAYS = frozenset(
    date.fromisoformat(d)
    for d in (
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-04-03",
        "2026-05-25",
        "2026-06-19",
        "2026-07-03",
        "2026-09-07",
        "2026-11-26",
        "2026-12-25",
        "2027-01-01",
    )
)
# TARGET2 closing days 2026: New Year, Good Friday, Easter Monday, 1 May, 25 and 26 December.
TARGET2_HOLIDAYS = frozenset(
    date.fromisoformat(d)
    for d in ("2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-12-25", "2026-12-26")
)

XNYS = MarketCalendar("XNYS", XNYS_HOLIDAYS, settlement_cycle=1)
TARGET2 = MarketCalendar("TARGET2", TARGET2_HOLIDAYS, settlement_cycle=2)


@pytest.mark.parametrize(
    ("calendar", "trade_date", "expected"),
    [
        # Wed before Thanksgiving: Thu 26 Nov closed -> Fri 27 Nov.
        (XNYS, date(2026, 11, 25), date(2026, 11, 27)),
        # Thu 24 Dec: Fri 25 Dec closed, weekend -> Mon 28 Dec.
        (XNYS, date(2026, 12, 24), date(2026, 12, 28)),
        # Thu 31 Dec: Fri 1 Jan 2027 closed, weekend -> Mon 4 Jan 2027.
        (XNYS, date(2026, 12, 31), date(2027, 1, 4)),
        # Thu 2 Jul: Fri 3 Jul is Independence Day observed -> Mon 6 Jul.
        (XNYS, date(2026, 7, 2), date(2026, 7, 6)),
        # Ordinary Friday rolls over the weekend only.
        (XNYS, date(2026, 11, 20), date(2026, 11, 23)),
        # T+2 from Thu 2 Apr: Good Friday, weekend, Easter Monday closed -> Tue 7, Wed 8 Apr.
        (TARGET2, date(2026, 4, 2), date(2026, 4, 8)),
        # T+2 from Wed 29 Apr: Thu 30 Apr, Fri 1 May closed -> Mon 4 May.
        (TARGET2, date(2026, 4, 29), date(2026, 5, 4)),
        # T+2 from Wed 23 Dec: Thu 24 Dec open, Fri 25 closed, Sat 26 (holiday and weekend)
        # -> Mon 28 Dec.
        (TARGET2, date(2026, 12, 23), date(2026, 12, 28)),
        # Trade booked on a holiday (Easter Monday) counts forward from that date: Tue, Wed.
        (TARGET2, date(2026, 4, 6), date(2026, 4, 8)),
    ],
)
def test_settlement_date_real_holidays(calendar, trade_date, expected):
    assert calendar.settlement_date(trade_date) == expected


def test_explicit_cycle_overrides_market_cycle():
    # T+3 on NYSE from Wed 25 Nov: Fri 27, Mon 30, Tue 1 Dec.
    assert XNYS.settlement_date(date(2026, 11, 25), 3) == date(2026, 12, 1)
    assert XNYS.settlement_date(date(2026, 11, 25), 0) == date(2026, 11, 25)


def test_is_business_day():
    assert not XNYS.is_business_day(date(2026, 11, 26))  # Thanksgiving
    assert not XNYS.is_business_day(date(2026, 11, 28))  # Saturday
    assert XNYS.is_business_day(date(2026, 11, 27))
    assert not TARGET2.is_business_day(date(2026, 5, 1))
    assert XNYS.is_business_day(date(2026, 5, 1))  # not a US holiday


def test_business_days_between_is_half_open():
    # (Wed 25 Nov, Mon 30 Nov] = Fri 27, Mon 30 (Thu holiday, weekend excluded).
    assert XNYS.business_days_between(date(2026, 11, 25), date(2026, 11, 30)) == 2
    assert XNYS.business_days_between(date(2026, 11, 30), date(2026, 11, 25)) == -2
    assert XNYS.business_days_between(date(2026, 11, 25), date(2026, 11, 25)) == 0
    # Whole of December 2026 on NYSE: 23 weekdays minus Christmas = 22.
    assert XNYS.business_days_between(date(2026, 11, 30), date(2026, 12, 31)) == 22
    # April 2026 on TARGET2: 22 weekdays minus Good Friday and Easter Monday = 20.
    assert TARGET2.business_days_between(date(2026, 3, 31), date(2026, 4, 30)) == 20


def test_add_business_days_backwards():
    # Two business days before Mon 30 Nov: Fri 27, then Wed 25 (Thanksgiving skipped).
    assert XNYS.add_business_days(date(2026, 11, 30), -2) == date(2026, 11, 25)


def test_custom_weekend():
    # A Friday/Saturday weekend market: Thu -> Sun.
    cal = MarketCalendar("XTAE-like", frozenset(), settlement_cycle=1, weekend=frozenset({4, 5}))
    assert cal.settlement_date(date(2026, 11, 19)) == date(2026, 11, 22)


@pytest.mark.parametrize("weekend", [frozenset(range(7)), frozenset({7})])
def test_invalid_weekend_rejected(weekend):
    with pytest.raises(ValueError, match="weekend"):
        MarketCalendar("BAD", frozenset(), settlement_cycle=1, weekend=weekend)


def test_negative_cycle_rejected():
    with pytest.raises(ValueError, match="negative"):
        XNYS.settlement_date(date(2026, 11, 25), -1)


trade_dates = st.dates(min_value=date(2025, 12, 1), max_value=date(2027, 1, 31))


@given(trade_date=trade_dates, cycle=st.integers(min_value=1, max_value=15))
def test_settlement_date_properties(trade_date, cycle):
    for calendar in (XNYS, TARGET2):
        settle = calendar.settlement_date(trade_date, cycle)
        assert calendar.is_business_day(settle)
        assert settle > trade_date
        assert calendar.business_days_between(trade_date, settle) == cycle
        # Exactly N: brute-force count of open days in (trade_date, settle].
        span = (settle - trade_date).days
        brute = sum(
            calendar.is_business_day(trade_date + timedelta(days=i)) for i in range(1, span + 1)
        )
        assert brute == cycle


@given(a=trade_dates, b=trade_dates)
def test_business_days_between_matches_brute_force(a, b):
    lo, hi = min(a, b), max(a, b)
    brute = sum(XNYS.is_business_day(lo + timedelta(days=i)) for i in range(1, (hi - lo).days + 1))
    assert XNYS.business_days_between(lo, hi) == brute
    assert XNYS.business_days_between(hi, lo) == -brute


@given(d=trade_dates, n=st.integers(min_value=-30, max_value=30))
def test_add_business_days_inverse_of_between(d, n):
    result = TARGET2.add_business_days(d, n)
    if n:
        assert TARGET2.is_business_day(result)
    # (a, b] is half-open, so walking backwards is an exact inverse only from an open day.
    if n >= 0 or TARGET2.is_business_day(d):
        assert TARGET2.business_days_between(d, result) == n


# Coverage: the same 2026 holidays, declared complete for 2026 only.
FIRST, LAST = date(2026, 1, 1), date(2026, 12, 31)
XNYS_2026 = replace(XNYS, covers=(FIRST, LAST))
TARGET2_2026 = replace(TARGET2, covers=(FIRST, LAST))


def not_covered(calendar: str, day: date) -> str:
    return CALENDAR_NOT_COVERED.format(
        calendar=calendar, first=FIRST, last=LAST, day=day, year=day.year
    )


def test_a_date_past_coverage_is_refused_with_the_year_to_load():
    with pytest.raises(CalendarNotCoveredError) as error:
        XNYS_2026.is_business_day(date(2027, 1, 4))
    assert str(error.value) == not_covered("XNYS", date(2027, 1, 4))
    assert "add the 2027 XNYS holidays to trades/data/holidays.json" in str(error.value)
    assert "manage.py load_reference_data" in str(error.value)
    assert (error.value.calendar, error.value.covers, error.value.day) == (
        "XNYS",
        (FIRST, LAST),
        date(2027, 1, 4),
    )


def test_a_settlement_date_that_would_roll_past_coverage_is_refused_not_guessed():
    # Thu 31 Dec 2026, T+1: Fri 1 Jan 2027 must be judged, and 2027 is not loaded.
    with pytest.raises(CalendarNotCoveredError) as error:
        XNYS_2026.settlement_date(date(2026, 12, 31))
    assert str(error.value) == not_covered("XNYS", date(2027, 1, 1))
    # T+2 from Wed 30 Dec 2026 needs Thu 31 Dec and then 2027.
    with pytest.raises(CalendarNotCoveredError, match="2027-01-01"):
        TARGET2_2026.settlement_date(date(2026, 12, 30))


def test_a_date_before_coverage_is_refused_too():
    with pytest.raises(CalendarNotCoveredError) as error:
        XNYS_2026.add_business_days(date(2026, 1, 2), -2)  # Fri 2 Jan: 1 Jan closed, then 2025
    assert str(error.value) == not_covered("XNYS", date(2025, 12, 31))


def test_counting_business_days_over_a_span_that_leaves_coverage_is_refused():
    with pytest.raises(CalendarNotCoveredError) as error:
        XNYS_2026.business_days_between(date(2026, 12, 1), date(2027, 1, 15))
    assert str(error.value) == not_covered("XNYS", date(2027, 1, 15))
    with pytest.raises(CalendarNotCoveredError):
        XNYS_2026.business_days_between(date(2027, 1, 15), date(2026, 12, 1))
    # (31 Dec 2025, 5 Jan 2026] judges only 2026 dates, so it is inside the window.
    assert XNYS_2026.business_days_between(date(2025, 12, 31), date(2026, 1, 5)) == 2


def test_asking_nothing_of_the_calendar_is_answered_outside_coverage():
    # n == 0 and an empty span judge no date, so they need no holidays.
    assert XNYS_2026.settlement_date(date(2029, 3, 1), 0) == date(2029, 3, 1)
    assert XNYS_2026.add_business_days(date(2029, 3, 1), 0) == date(2029, 3, 1)
    assert XNYS_2026.business_days_between(date(2029, 3, 1), date(2029, 3, 1)) == 0


def test_dates_inside_coverage_are_answered_as_before():
    assert XNYS_2026.settlement_date(date(2026, 11, 25)) == date(2026, 11, 27)
    assert XNYS_2026.settlement_date(date(2026, 12, 30)) == date(2026, 12, 31)
    assert not XNYS_2026.is_business_day(date(2026, 12, 25))
    assert TARGET2_2026.settlement_date(date(2026, 4, 2)) == date(2026, 4, 8)
    assert XNYS_2026.business_days_between(date(2026, 11, 30), LAST) == 22


def test_a_calendar_with_no_coverage_loaded_judges_no_date():
    unloaded = replace(XNYS, covers=NO_COVERAGE)
    with pytest.raises(CalendarNotCoveredError) as error:
        unloaded.settlement_date(date(2026, 11, 25))
    assert str(error.value) == CALENDAR_NOT_LOADED.format(calendar="XNYS", day=date(2026, 11, 26))


def test_a_coverage_that_ends_before_it_starts_is_rejected():
    with pytest.raises(ValueError, match="first <= last"):
        replace(XNYS, covers=(LAST, FIRST))


wide_dates = st.dates(min_value=date(2025, 11, 1), max_value=date(2027, 2, 28))


@given(trade_date=st.dates(min_value=FIRST, max_value=LAST), cycle=st.integers(0, 15))
def test_a_covered_calendar_settles_like_an_unchecked_one_or_refuses_past_coverage(
    trade_date, cycle
):
    for unchecked, covered in ((XNYS, XNYS_2026), (TARGET2, TARGET2_2026)):
        expected = unchecked.settlement_date(trade_date, cycle)
        if expected <= LAST:
            assert covered.settlement_date(trade_date, cycle) == expected
        else:
            with pytest.raises(CalendarNotCoveredError) as error:
                covered.settlement_date(trade_date, cycle)
            # the first date it could not judge: the day after the window
            assert error.value.day == LAST + timedelta(days=1)


@given(a=wide_dates, b=wide_dates)
def test_a_covered_calendar_counts_like_an_unchecked_one_exactly_inside_coverage(a, b):
    lo, hi = min(a, b), max(a, b)
    inside = lo == hi or (lo + timedelta(days=1) >= FIRST and hi <= LAST)
    if inside:
        assert XNYS_2026.business_days_between(a, b) == XNYS.business_days_between(a, b)
    else:
        with pytest.raises(CalendarNotCoveredError):
            XNYS_2026.business_days_between(a, b)


def test_a_weekend_or_holiday_belongs_to_the_last_business_day_before_it():
    nyse = MarketCalendar("NYSE", frozenset({date(2026, 11, 26)}), settlement_cycle=1)
    assert nyse.business_day_on_or_before(date(2026, 11, 25)) == date(2026, 11, 25)  # itself
    assert nyse.business_day_on_or_before(date(2026, 11, 26)) == date(2026, 11, 25)  # holiday
    assert nyse.business_day_on_or_before(date(2026, 11, 29)) == date(2026, 11, 27)  # Sunday
