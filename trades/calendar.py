"""Business-day arithmetic for settlement dates (pure: no Django, no I/O).

A ``MarketCalendar`` is a market code, its weekend days and its full holiday list. Holidays are
data, not rules: the reference-data layer loads them (exchange and CSD calendars publish them a
year or more ahead) and this module never guesses one. Every function here is total over the
proleptic Gregorian calendar and deterministic, so settlement dates computed on two nodes agree.

Conventions (used by netting, fails aging and penalties alike):

* ``business_days_between(a, b)`` counts the business days in the half-open interval ``(a, b]``:
  after ``a``, up to and including ``b``. It is negative when ``b < a`` and zero when ``a == b``.
* ``add_business_days(d, n)`` is its inverse: for ``n > 0`` the result ``r`` is the ``n``-th
  business day strictly after ``d`` so ``business_days_between(d, r) == n``; ``n == 0`` returns
  ``d`` unchanged, even when ``d`` is not a business day.
* ``settlement_date(trade_date, cycle)`` is T+``cycle``: ``add_business_days(trade_date, cycle)``.
  A trade date that is itself a holiday or weekend (OTC or late bookings) still counts forward
  from that calendar date, which is the market practice for T+N.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

_ONE_DAY = timedelta(days=1)
_ALL_WEEKDAYS = frozenset(range(7))


@dataclass(frozen=True)
class MarketCalendar:
    """A market's business days: every date that is neither a weekend day nor a holiday.

    ``weekend`` holds ``date.weekday()`` numbers (Monday 0 … Sunday 6); the default is Saturday
    and Sunday. ``settlement_cycle`` is the market's standard T+N (1 for US equities since
    May 2024, 2 for EU markets until the planned move to T+1).
    """

    market: str
    holidays: frozenset[date]
    settlement_cycle: int
    weekend: frozenset[int] = field(default=frozenset({5, 6}))

    def __post_init__(self) -> None:
        # A calendar with no business day at all would make add_business_days loop forever.
        if not self.weekend <= _ALL_WEEKDAYS:
            raise ValueError(f"weekend days must be in 0..6, got {sorted(self.weekend)}")
        if self.weekend == _ALL_WEEKDAYS:
            raise ValueError("a calendar needs at least one non-weekend weekday")
        if self.settlement_cycle < 0:
            raise ValueError("settlement_cycle must be >= 0")

    def is_business_day(self, d: date) -> bool:
        """True exactly when ``d`` is neither a weekend day nor a listed holiday."""
        return d.weekday() not in self.weekend and d not in self.holidays

    def add_business_days(self, d: date, n: int) -> date:
        """Return the ``n``-th business day after ``d`` (before it when ``n`` is negative).

        Guarantee: for ``n != 0`` the result is a business day; for ``n > 0`` (and for
        ``n < 0`` when ``d`` is itself a business day, because the interval is half-open)
        ``business_days_between(d, result) == n``; ``n == 0`` returns ``d`` itself. Holidays are
        finite and at least one weekday is open, so the walk always terminates.
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
        are counted arithmetically so long spans (fails aged for months) stay cheap.
        """
        if b < a:
            return -self.business_days_between(b, a)
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
        ``cycle == 0`` (same-day settlement) returns the trade date.
        """
        n = self.settlement_cycle if cycle is None else cycle
        if n < 0:
            raise ValueError("a settlement cycle cannot be negative")
        return self.add_business_days(trade_date, n)
