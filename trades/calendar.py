"""Business-day arithmetic for settlement dates (pure: no Django, no I/O).

A ``MarketCalendar`` is a market code, its weekend days, its holiday list and the window of dates
that list is complete for (``covers``). Holidays are data, not rules: the reference-data layer
loads them (exchange and CSD calendars publish them a year or more ahead) and this module never
guesses one. Inside the window every function here is deterministic, so settlement dates
computed on two nodes agree. A date outside the window is never assumed open: any function that
would have to judge it raises ``CalendarNotCoveredError``, whose message says which year to load.
A calendar built without a window (``covers=None``, hand-built calendars in tests) judges every
date of the proleptic Gregorian calendar from its holiday list alone.

Conventions (used by netting, fails aging and penalties alike):

* ``business_days_between(a, b)`` counts the business days in the half-open interval ``(a, b]``:
  after ``a``, up to and including ``b``. It is negative when ``b < a`` and zero when ``a == b``.
* ``add_business_days(d, n)`` is its inverse: for ``n > 0`` the result ``r`` is the ``n``-th
  business day strictly after ``d`` so ``business_days_between(d, r) == n``; ``n == 0`` returns
  ``d`` unchanged, even when ``d`` is not a business day.
* ``settlement_date(trade_date, cycle)`` is T+``cycle``: ``add_business_days(trade_date, cycle)``.
  A trade date that is itself a holiday or weekend (OTC or late bookings) still counts forward
  from that calendar date, which is the market practice for T+N.
* A date is *judged* when its business-day status is needed: ``is_business_day(d)`` judges ``d``;
  ``add_business_days`` judges each date it steps onto (not ``d`` itself, and nothing for
  ``n == 0``); ``business_days_between`` judges every date of ``(a, b]``. Judging a date outside
  ``covers`` raises ``CalendarNotCoveredError``, so every answer returned is exact: none is
  ever computed from holidays that were not loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

_ONE_DAY = timedelta(days=1)
_ALL_WEEKDAYS = frozenset(range(7))

# What ops see (dead letters, refusals, command errors) when a date is past the loaded holidays.
CALENDAR_NOT_COVERED = (
    "the {calendar} calendar has holidays loaded for {first} to {last} only, so it cannot say"
    " whether {day} is a business day: add the {year} {calendar} holidays to"
    " trades/data/holidays.json (or the calendar feed), extend its coverage to include {day},"
    " and run manage.py load_reference_data"
)
CALENDAR_NOT_LOADED = (
    "the {calendar} calendar has no holiday coverage loaded, so it cannot say whether {day} is"
    " a business day: add the {calendar} holidays and their coverage to"
    " trades/data/holidays.json (or the calendar feed), and run manage.py load_reference_data"
)

Coverage = tuple[date, date]  # first and last date (inclusive) whose holidays are complete
NO_COVERAGE: tuple[()] = ()  # a calendar whose holidays were never loaded: it judges no date


class CalendarNotCoveredError(ValueError):
    """A calendar was asked about a date outside the window its holiday list is complete for.

    ``covers`` is the calendar's loaded window (``()`` when none is loaded) and ``day`` the
    first date it would have had to judge outside it.
    """

    def __init__(self, calendar: str, covers: Coverage | tuple[()], day: date):
        if covers:
            first, last = covers
            message = CALENDAR_NOT_COVERED.format(
                calendar=calendar, first=first, last=last, day=day, year=day.year
            )
        else:
            message = CALENDAR_NOT_LOADED.format(calendar=calendar, day=day)
        super().__init__(message)
        self.calendar = calendar
        self.covers = covers
        self.day = day


@dataclass(frozen=True)
class MarketCalendar:
    """A market's business days: every date that is neither a weekend day nor a holiday.

    ``weekend`` holds ``date.weekday()`` numbers (Monday 0 … Sunday 6); the default is Saturday
    and Sunday. ``settlement_cycle`` is the market's standard T+N (1 for US equities since
    May 2024, 2 for EU markets until the planned move to T+1). ``covers`` is the inclusive
    window ``(first, last)`` whose holidays are complete; judging a date outside it raises
    ``CalendarNotCoveredError``. ``NO_COVERAGE`` (``()``) judges no date at all, ``None``
    (the default) judges every date from ``holidays`` alone.
    """

    market: str
    holidays: frozenset[date]
    settlement_cycle: int
    weekend: frozenset[int] = field(default=frozenset({5, 6}))
    covers: Coverage | tuple[()] | None = None

    def __post_init__(self) -> None:
        # A calendar with no business day at all would make add_business_days loop forever.
        if not self.weekend <= _ALL_WEEKDAYS:
            raise ValueError(f"weekend days must be in 0..6, got {sorted(self.weekend)}")
        if self.weekend == _ALL_WEEKDAYS:
            raise ValueError("a calendar needs at least one non-weekend weekday")
        if self.settlement_cycle < 0:
            raise ValueError("settlement_cycle must be >= 0")
        if self.covers and self.covers[0] > self.covers[1]:
            raise ValueError(f"covers must be (first, last) with first <= last, got {self.covers}")

    def _require_covered(self, first: date, last: date) -> None:
        """Raise unless every date of ``[first, last]`` is inside ``covers``."""
        covers = self.covers
        if covers is None:
            return
        if not covers:
            raise CalendarNotCoveredError(self.market, covers, first)
        if last > covers[1]:
            raise CalendarNotCoveredError(self.market, covers, last)
        if first < covers[0]:
            raise CalendarNotCoveredError(self.market, covers, first)

    def is_business_day(self, d: date) -> bool:
        """True exactly when ``d`` is neither a weekend day nor a listed holiday.

        Raises ``CalendarNotCoveredError`` when ``d`` is outside ``covers`` (weekends included:
        one rule, no date outside the window is answered).
        """
        self._require_covered(d, d)
        return d.weekday() not in self.weekend and d not in self.holidays

    def business_day_on_or_before(self, d: date) -> date:
        """``d`` when it is a business day, else the last business day before it: the business
        date of a calendar day (a Saturday, or a holiday, belongs to the day the market last
        opened)."""
        while not self.is_business_day(d):
            d -= _ONE_DAY
        return d

    def add_business_days(self, d: date, n: int) -> date:
        """Return the ``n``-th business day after ``d`` (before it when ``n`` is negative).

        Guarantee: for ``n != 0`` the result is a business day; for ``n > 0`` (and for
        ``n < 0`` when ``d`` is itself a business day, because the interval is half-open)
        ``business_days_between(d, result) == n``; ``n == 0`` returns ``d`` itself. Holidays are
        finite and at least one weekday is open, so the walk always terminates: with the
        result, or with ``CalendarNotCoveredError`` on the first date it steps onto outside
        ``covers``.
        """
        step = _ONE_DAY if n >= 0 else -_ONE_DAY
        remaining = abs(n)
        current = d
        while remaining:
            current += step
            if self.is_business_day(current):
                remaining -= 1
        return current

    def business_days_between(self, a: date, b: date) -> int:
        """Count business days in ``(a, b]`` — after ``a``, up to and including ``b``.

        Guarantee: zero when ``a == b``; ``-business_days_between(b, a)`` when ``b < a``; and
        ``business_days_between(a, add_business_days(a, n)) == n`` for every ``n >= 0``. Whole weeks
        are counted arithmetically so long spans (fails aged for months) stay cheap. Raises
        ``CalendarNotCoveredError`` when the span leaves ``covers``.
        """
        if b < a:
            return -self.business_days_between(b, a)
        if a == b:
            return 0
        self._require_covered(a + _ONE_DAY, b)
        span = (b - a).days
        open_weekdays = 7 - len(self.weekend)
        full_weeks, rest = divmod(span, 7)
        count = full_weeks * open_weekdays
        current = a + timedelta(days=full_weeks * 7)
        for _ in range(rest):
            current += _ONE_DAY
            if current.weekday() not in self.weekend:
                count += 1
        # Holidays falling on a weekend are already excluded; only weekday holidays subtract.
        count -= sum(1 for h in self.holidays if a < h <= b and h.weekday() not in self.weekend)
        return count

    def settlement_date(self, trade_date: date, cycle: int | None = None) -> date:
        """Return the intended settlement date T+``cycle`` (the market's cycle when omitted).

        Guarantee: for ``cycle >= 1`` the result is a business day strictly after
        ``trade_date`` with exactly ``cycle`` business days in ``(trade_date, result]``;
        ``cycle == 0`` (same-day settlement) returns the trade date. Raises
        ``CalendarNotCoveredError`` when T+``cycle`` cannot be reached inside ``covers``.
        """
        n = self.settlement_cycle if cycle is None else cycle
        if n < 0:
            raise ValueError("a settlement cycle cannot be negative")
        return self.add_business_days(trade_date, n)
