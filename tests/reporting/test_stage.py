"""consume_reporting's handler through the runtime's transaction: positions, restatement, marks."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from backoffice.streaming.models import DeadLetter
from reporting.models import DailyClose, LatestPrice, MarketPrice, Position, PositionTrade
from reporting.pnl import CostMethod, replay, valuation
from reporting.positions import TradeVersion, rebuild, state_to_json, trade_version
from reporting.stage import (
    CURRENCY_MISMATCH,
    CURRENCY_MISMATCH_REASON,
    FX_RATE_MISSING,
    FX_RATE_MISSING_REASON,
    INVALID_PRICE,
    INVALID_PRICE_REASON,
    UNKNOWN_INSTRUMENT,
    UNKNOWN_INSTRUMENT_REASON,
)
from tests.reporting.conftest import fx_rate
from tests.reporting.helpers import AAPL, MSFT, SAP, price, run, run_each, validated

pytestmark = pytest.mark.django_db

# The same economics booked under two accounts must give the same figures.
COMPARED = (
    "quantity",
    "mark_price",
    "mark_source",
    "cost_basis",
    "market_value",
    "realized",
    "unrealized",
    "fees",
    "net_realized",
    "total",
    "base_currency",
    "fx_rate_to_base",
    "base_market_value",
    "base_realized",
    "base_unrealized",
    "base_fees",
    "base_total",
    "state",
    "trade_count",
    "last_trade_date",
)


def figures(account: str, instrument: str = AAPL) -> dict[str, Any]:
    row = Position.objects.get(account=account, instrument=instrument)
    return {name: getattr(row, name) for name in COMPARED}


def trades(account: str, *rows: tuple[str, str, str, str, str, int]) -> list[dict[str, Any]]:
    """(trade_id, side, quantity, price, fees, minute) -> payloads for ``account``."""
    return [
        validated(
            f"{account}-{tid}",
            account=account,
            side=side,
            quantity=qty,
            price=px,
            fees=fee,
            time=f"2024-12-20T14:{minute:02d}:00Z",
        )
        for tid, side, qty, px, fee, minute in rows
    ]


BASE = [
    ("T1", "BUY", "100", "200.00", "2.00", 31),
    ("T2", "BUY", "50", "210.00", "1.00", 32),
    ("T3", "SELL", "120", "220.00", "2.50", 33),
]


def test_new_trades_are_applied_incrementally_and_marked_at_the_last_fill_without_a_price():
    run_each(trades("ACC-0001", *BASE))

    row = Position.objects.get(account="ACC-0001", instrument=AAPL)
    # FIFO: 120 sold at 220 against 100 @ 200 and 20 @ 210 realizes 2 200; 30 @ 210 remain.
    assert (row.quantity, row.realized, row.fees) == (30, Decimal("2200.00"), Decimal("5.50"))
    assert (row.mark_source, row.mark_price) == ("TRADE", Decimal("220.00"))
    assert row.unrealized == Decimal("300.00")  # 30 x (220 - 210)
    assert row.total == Decimal("2494.50")
    assert row.trade_count == 3
    assert row.last_trade_id == "ACC-0001-T3"


def test_an_amendment_restates_the_position_as_if_booked_with_the_new_version():
    run_each(trades("ACC-0001", *BASE))
    amended = validated(
        "ACC-0001-T2", version=2, quantity="80", price="210.00", fees="1.60",
        time="2024-12-20T14:32:00Z",
    )  # fmt: skip
    run(amended)
    run_each(trades("ACC-0002", BASE[0], ("T2", "BUY", "80", "210.00", "1.60", 32), BASE[2]))

    assert figures("ACC-0001") == figures("ACC-0002")
    assert PositionTrade.objects.get(trade_id="ACC-0001-T2").version == 2


def test_a_cancel_restates_the_position_as_if_the_trade_never_existed():
    run_each(trades("ACC-0001", *BASE))
    run(validated("ACC-0001-T2", version=2, action="CANCEL", quantity="50", price="210.00",
                  fees="1.00", time="2024-12-20T14:32:00Z"))  # fmt: skip
    run_each(trades("ACC-0002", BASE[0], BASE[2]))

    assert figures("ACC-0001") == figures("ACC-0002")
    assert PositionTrade.objects.get(trade_id="ACC-0001-T2").status == "CANCELLED"


def test_cancelling_every_trade_of_a_position_removes_it():
    run(*trades("ACC-0001", BASE[0]))
    run(validated("ACC-0001-T1", version=2, action="CANCEL", price="200.00"))

    assert not Position.objects.exists()


def test_a_stale_or_repeated_version_changes_nothing():
    run(validated("T1", version=2, quantity="80"))  # the amendment overtook its NEW
    before = figures("ACC-0001")

    outcome = run(validated("T1", version=1, quantity="50"), validated("T1", version=2))

    assert figures("ACC-0001") == before
    assert outcome.dead_lettered == 0
    assert PositionTrade.objects.get(trade_id="T1").version == 2


def test_a_late_trade_is_restated_into_time_order():
    run_each(trades("ACC-0001", BASE[0], BASE[2], BASE[1]))  # T2 (14:32) arrives last
    run_each(trades("ACC-0002", *BASE))

    assert figures("ACC-0001") == figures("ACC-0002")


def test_an_amendment_that_moves_a_trade_to_another_account_restates_both():
    run_each(trades("ACC-0001", *BASE))
    moved = validated("ACC-0001-T2", version=2, account="ACC-0003", quantity="50",
                      price="210.00", fees="1.00", time="2024-12-20T14:32:00Z")  # fmt: skip
    run(moved)
    run_each(trades("ACC-0002", BASE[0], BASE[2]))

    assert figures("ACC-0001") == figures("ACC-0002")
    assert Position.objects.get(account="ACC-0003").quantity == 50


def test_a_book_that_changes_cost_method_is_restated_under_the_new_one():
    run_each(trades("ACC-0001", *BASE))
    run(validated("ACC-0001-T4", method="AVERAGE", quantity="10", time="2024-12-20T14:34:00Z"))

    row = Position.objects.get(account="ACC-0001")
    fills = [trade_version(p).fill() for p in trades("ACC-0001", *BASE)]
    fills.append(trade_version(validated("ACC-0001-T4", quantity="10",
                                         time="2024-12-20T14:34:00Z")).fill())  # fmt: skip
    assert row.pnl_method == "AVERAGE"
    assert row.state == state_to_json(replay(fills, CostMethod.AVERAGE))


class Book:
    """The test's own record of the live versions, to check the stage against pure replay."""

    def __init__(self) -> None:
        self.live: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}

    def expected(self) -> dict[tuple[str, str], dict[str, Any]]:
        by_key: dict[tuple[str, str], list[TradeVersion]] = {}
        for payload in self.live.values():
            version = trade_version(payload)
            by_key.setdefault(version.key, []).append(version)
        expected = {}
        for key, versions in by_key.items():
            built = rebuild(versions)
            assert built is not None
            state, _meta = built
            last = max(versions, key=lambda v: v.replay_key)
            booked = valuation(state, last.price, Decimal(1), "USD")
            expected[key] = {"state": state_to_json(state), "total": booked.total}
        return expected


def random_stream(seed: int, count: int) -> tuple[list[dict[str, Any]], Book]:
    rng = random.Random(seed)
    book = Book()
    stream: list[dict[str, Any]] = []
    for n in range(count):
        draw = rng.random()
        if book.live and draw < 0.15:
            trade_id = rng.choice(sorted(book.live))
            payload = dict(book.live[trade_id])
            book.versions[trade_id] += 1
            payload.update(
                trade_version=book.versions[trade_id],
                action="AMEND",
                previous_version=book.versions[trade_id] - 1,
                quantity=str(rng.randint(1, 300)),
            )
            book.live[trade_id] = payload
        elif book.live and draw < 0.25:
            trade_id = rng.choice(sorted(book.live))
            payload = dict(book.live.pop(trade_id))
            book.versions[trade_id] += 1
            payload.update(trade_version=book.versions[trade_id], action="CANCEL")
        else:
            # Minutes drawn at random, so a good share of trades arrive out of time order.
            account = rng.choice(("ACC-0001", "ACC-0002"))
            payload = validated(
                f"R{n:04d}",
                account=account,
                instrument=rng.choice((AAPL, MSFT)),
                side=rng.choice(("BUY", "SELL")),
                quantity=str(rng.randint(1, 300)),
                price=f"{rng.randint(18000, 22000) / 100:.2f}",
                fees=f"{rng.randint(0, 300) / 100:.2f}",
                time=f"2024-12-20T{14 + n // 60 % 6:02d}:{rng.randint(0, 59):02d}:00Z",
                method="FIFO" if account == "ACC-0001" else "AVERAGE",
            )
            book.live[payload["trade_id"]] = payload
            book.versions[payload["trade_id"]] = 1
        stream.append(payload)
    return stream, book


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_and_restated_positions_agree_with_a_replay_of_the_live_versions(seed):
    stream, book = random_stream(seed, 240)
    rng = random.Random(seed)
    start = 0
    while start < len(stream):  # batches of 1 to 40, as the consumer's polls would cut them
        size = rng.randint(1, 40)
        run(*stream[start : start + size])
        start += size

    expected = book.expected()
    rows = {(p.account, p.instrument): p for p in Position.objects.all()}
    assert set(rows) == set(expected)
    for key, want in expected.items():
        assert rows[key].state == want["state"], key
        assert rows[key].total == want["total"], key


def test_a_price_marks_every_position_in_its_instrument_and_an_older_price_is_ignored(instruments):
    run_each(trades("ACC-0001", *BASE) + trades("ACC-0002", BASE[0]))
    run(price(AAPL, "212.50", as_of="2024-12-20T21:00:00Z"))
    run(price(AAPL, "199.00", as_of="2024-12-20T20:00:00Z"))  # late: older than the one held

    one, two = (Position.objects.get(account=a) for a in ("ACC-0001", "ACC-0002"))
    assert (one.mark_source, one.mark_price, two.mark_price) == (
        "MARKET",
        Decimal("212.50"),
        Decimal("212.50"),
    )
    assert one.unrealized == Decimal("75.00")  # 30 x (212.50 - 210)
    assert two.unrealized == Decimal("1250.00")  # 100 x (212.50 - 200)
    assert MarketPrice.objects.count() == 2
    assert LatestPrice.objects.get(isin=AAPL).price == Decimal("212.50")
    assert DailyClose.objects.get(isin=AAPL).price == Decimal("212.50")


def test_a_position_opened_after_a_price_is_marked_at_that_price(instruments):
    run(price(AAPL, "212.50"))
    run(*trades("ACC-0001", BASE[0]))

    row = Position.objects.get(account="ACC-0001")
    assert (row.mark_source, row.unrealized) == ("MARKET", Decimal("1250.00"))


def test_a_foreign_position_is_translated_at_the_rate_of_its_valuation_date(instruments):
    fx_rate("2024-12-19", "EUR", "USD", "1.0400")
    fx_rate("2024-12-20", "EUR", "USD", "1.0450")
    run(validated("S1", account="ACC-0013", book="MACRO", instrument=SAP, quantity="200",
                  price="228.00", fees="4.56", time="2024-12-19T09:00:00Z"))  # fmt: skip
    row = Position.objects.get(account="ACC-0013")
    assert (row.fx_rate_to_base, row.base_fees) == (Decimal("1.0400"), Decimal("4.74"))

    run(price(SAP, "237.50", as_of="2024-12-20T16:30:00Z"))

    row = Position.objects.get(account="ACC-0013")
    assert row.valuation_date.isoformat() == "2024-12-20"
    assert row.fx_rate_to_base == Decimal("1.0450")
    assert row.base_market_value == Decimal("49637.50")  # 200 x 237.50 x 1.045
    assert row.base_fees == Decimal("4.77")  # 4.56 x 1.045 = 4.7652


def test_a_trade_without_an_fx_rate_to_its_base_currency_is_refused_with_the_reason():
    payload = validated("S1", account="ACC-0013", book="MACRO", instrument=SAP, price="228.00")

    outcome = run(payload)

    assert outcome.dead_lettered == 1
    letter = DeadLetter.objects.get()
    assert letter.error_class == FX_RATE_MISSING
    assert letter.reason == FX_RATE_MISSING_REASON.format(
        currency="EUR", base="USD", on="2024-12-20", trade_id="S1", version=1, book="MACRO"
    )
    assert not Position.objects.exists()
    assert not PositionTrade.objects.exists()


def test_prices_the_stage_cannot_use_are_refused_with_the_reason(instruments):
    outcome = run(
        price("XS0000000009", "10.00", currency="USD"),
        price(AAPL, "212.50", currency="EUR"),
        price(AAPL, "0"),
        price(MSFT, "400.10"),
    )

    assert outcome.dead_lettered == 3
    reasons = {d.error_class: d.reason for d in DeadLetter.objects.all()}
    assert reasons == {
        UNKNOWN_INSTRUMENT: UNKNOWN_INSTRUMENT_REASON.format(isin="XS0000000009"),
        CURRENCY_MISMATCH: CURRENCY_MISMATCH_REASON.format(
            isin=AAPL, currency="EUR", expected="USD"
        ),
        INVALID_PRICE: INVALID_PRICE_REASON.format(isin=AAPL, price="0"),
    }
    assert list(LatestPrice.objects.values_list("isin", flat=True)) == [MSFT]
