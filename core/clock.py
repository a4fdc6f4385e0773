"""The product's one clock: every "now" and "today" in domain code, views, filters, selectors,
tasks, commands and simulators comes from here.

In production it is the host's wall clock in UTC (the product's ``TIME_ZONE``). Tests set it with
time-machine (the ``clock`` fixture in ``tests/conftest.py``) instead of pinning a date the wall
clock will pass, and CI runs the suite again with the whole process moved a year ahead and onto a
weekend market holiday, so code that reads the wall clock anywhere else shows up as a failure.
``tests/test_one_clock.py`` refuses any other module that reads it directly.

Durations (rate limits, deadlines, latencies) are not dates: they use ``time.monotonic()`` or
``time.perf_counter()``, which no calendar can break.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def today() -> date:
    """The current calendar date in UTC. For the date the back office is working on (the one
    pages filter by), ask ``trades.selectors.business_date()``: on a weekend or a holiday it is
    the last business day, not today."""
    return now().date()


def epoch_seconds() -> float:
    """Seconds since the Unix epoch, for comparing with Kafka record timestamps."""
    return now().timestamp()
