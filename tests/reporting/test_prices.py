"""The simulated price feed (pure) and ``produce_prices`` into a running ``consume_reporting``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.streaming.schemas import registry
from reporting.models import DailyClose, LatestPrice, MarketPrice
from reporting.prices import PriceFeed, payload
from tests.conftest import wait_until
from trades.models import Instrument
from trades.simulator import PriceWalk, SimInstrument

FRIDAY_OPEN = datetime(2024, 12, 20, 14, 30, tzinfo=UTC)
INSTRUMENTS = (
    SimInstrument("US0378331005", "USD", "XNAS", Decimal("0.01"), Decimal("231.40")),
    SimInstrument("DE0007164600", "EUR", "XETR", Decimal("0.05"), Decimal("228.45")),
)


def feed(**overrides) -> PriceFeed:
    options = {"seed": 7, "start": FRIDAY_OPEN, "interval": timedelta(hours=1)}
    return PriceFeed(INSTRUMENTS, **{**options, **overrides})


def test_the_feed_is_deterministic_on_tick_and_valid_under_the_schema():
    first, again = list(feed().ticks(50)), list(feed().ticks(50))

    assert first == again
    for tick in first:
        instrument = next(i for i in INSTRUMENTS if i.isin == tick.isin)
        assert tick.price % instrument.tick_size == 0
        assert tick.price > 0
        registry().validate("marketdata.prices", 1, payload(tick))


def test_the_feed_walks_like_the_trade_simulator_with_the_same_seed():
    walk = PriceWalk(INSTRUMENTS, seed="7/prices")
    expected = [walk.step(i.isin) for _ in range(3) for i in INSTRUMENTS]

    assert [t.price for t in feed().ticks(6)] == expected


def test_the_clock_stays_in_the_session_and_skips_to_the_next_business_day():
    ticks = list(feed(interval=timedelta(hours=3)).ticks(8))  # 14:30, 17:30, 20:30, then Monday

    times = [(t.business_date, t.as_of.strftime("%H:%M")) for t in ticks[::2]]
    assert times == [
        (date(2024, 12, 20), "14:30"),
        (date(2024, 12, 20), "17:30"),
        (date(2024, 12, 20), "20:30"),
        (date(2024, 12, 23), "14:30"),
    ]
    assert len({feed().event_id(t) for t in ticks}) == 8


def test_a_feed_without_instruments_or_with_a_naive_start_is_refused():
    with pytest.raises(ValueError, match="needs instruments"):
        PriceFeed([], seed=1, start=FRIDAY_OPEN, interval=timedelta(seconds=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        feed(start=datetime(2024, 12, 20, 14, 30))


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_produce_prices_feeds_consume_reporting(reference, processes):
    processes.start("consume_reporting", name="reporting")
    # A Friday inside the loaded NYSE holidays (a start outside them is refused: no guessing)
    args = ("--count", "154", "--seed", "3", "--interval", "600", "--start", "2025-12-19T14:30Z")

    result = processes.run("produce_prices", *args)
    again = processes.run("produce_prices", *args)  # same feed, same event ids: applied once

    assert result.returncode == 0, result.stderr
    assert again.returncode == 0, again.stderr
    assert "sent 154 prices" in result.stdout
    wait_until(lambda: MarketPrice.objects.count() == 154, what="154 prices stored")
    active = Instrument.objects.filter(status=Instrument.Status.ACTIVE).count()
    assert LatestPrice.objects.count() == DailyClose.objects.count() == active
    assert set(DailyClose.objects.values_list("business_date", flat=True)) == {date(2025, 12, 19)}


def test_a_start_on_a_weekend_opens_on_the_next_business_day():
    saturday = datetime(2024, 12, 21, 14, 30, tzinfo=UTC)

    (tick,) = feed(start=saturday).ticks(1)

    assert (tick.business_date, tick.as_of) == (date(2024, 12, 23), FRIDAY_OPEN + timedelta(days=3))
