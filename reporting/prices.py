"""A deterministic market-data feed for ``manage.py produce_prices`` (pure: no Django, no I/O).

Prices come from ``trades.simulator.PriceWalk`` with the trade simulator's seed derivation, so a
feed and ``produce_trades`` run with the same seed walk the same instruments from the same
reference prices, on the same ticks, with the same volatility. The clock advances ``interval``
per round (every instrument priced once per round) inside a session, then jumps to the next
business day's open: the business date of a price is always the day its session belongs to.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

from reporting.positions import PriceTick
from trades.simulator import PriceWalk, SimInstrument

SOURCE = "SIM"
DEFAULT_SESSION = timedelta(hours=6, minutes=30)
# Event ids from the run's identity: publishing the same feed twice is de-duplicated downstream.
FEED_NAMESPACE = uuid.UUID("3c0f5d1e-2b7a-5c4d-8e9f-0a1b2c3d4e5f")


class PriceFeed:
    """Iterate ``ticks(count)`` for the feed's next ``count`` prices."""

    def __init__(
        self,
        instruments: Sequence[SimInstrument],
        *,
        seed: int,
        start: datetime,
        interval: timedelta,
        session: timedelta = DEFAULT_SESSION,
        is_business_day: Callable[[date], bool] = lambda day: day.weekday() < 5,
    ):
        if not instruments:
            raise ValueError("a price feed needs instruments")
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if interval <= timedelta(0) or session <= timedelta(0):
            raise ValueError("interval and session must be positive")
        self._instruments = list(instruments)
        self._walk = PriceWalk(self._instruments, seed=f"{seed}/prices")
        self._seed = seed
        start = start.astimezone(UTC)
        while not is_business_day(start.date()):  # a weekend start opens on the next session
            start += timedelta(days=1)
        self._open = self._now = start
        self._interval = interval
        self._session = session
        self._is_business_day = is_business_day

    def ticks(self, count: int) -> Iterator[PriceTick]:
        produced = 0
        while produced < count:
            for instrument in self._instruments:
                if produced == count:
                    return
                yield PriceTick(
                    isin=instrument.isin,
                    price=self._walk.step(instrument.isin),
                    currency=instrument.currency,
                    as_of=self._now,
                    business_date=self._open.date(),
                    source=SOURCE,
                )
                produced += 1
            self._advance()

    def _advance(self) -> None:
        self._now += self._interval
        if self._now < self._open + self._session:
            return
        day = self._open.date() + timedelta(days=1)
        while not self._is_business_day(day):
            day += timedelta(days=1)
        self._open = self._open + timedelta(days=(day - self._open.date()).days)
        self._now = self._open

    def event_id(self, tick: PriceTick) -> uuid.UUID:
        return uuid.uuid5(FEED_NAMESPACE, f"{self._seed}|{tick.isin}|{tick.as_of.isoformat()}")


def payload(tick: PriceTick) -> dict[str, str]:
    """The ``marketdata.prices`` payload of ``tick``."""
    return {
        "isin": tick.isin,
        "price": f"{tick.price.normalize():f}",
        "currency": tick.currency,
        "as_of": tick.as_of.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "business_date": tick.business_date.isoformat(),
        "source": tick.source,
    }
