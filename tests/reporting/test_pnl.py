"""Hand-worked examples for reporting.pnl; the arithmetic is spelled out next to each case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.money import UnknownCurrencyError
from reporting.pnl import (
    CostMethod,
    Fill,
    Lot,
    PositionState,
    Side,
    apply_fill,
    replay,
    restate,
    unrealized_pnl,
    valuation,
)

D = Decimal
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
FIFO = CostMethod.FIFO
AVERAGE = CostMethod.AVERAGE


def fill(
    trade_id: str,
    side: Side,
    quantity: str,
    price: str,
    *,
    fees: str = "0",
    minute: int = 0,
    currency: str = "USD",
    version: int = 1,
) -> Fill:
    return Fill(
        trade_id=trade_id,
        trade_version=version,
        side=side,
        quantity=D(quantity),
        price=D(price),
        fees=D(fees),
        trade_time=T0 + timedelta(minutes=minute),
        currency=currency,
    )


# Buy 100 @ 10, buy 100 @ 12, sell 150 @ 15.
PARTIAL_CLOSE = [
    fill("T1", "BUY", "100", "10", minute=1),
    fill("T2", "BUY", "100", "12", minute=2),
    fill("T3", "SELL", "150", "15", minute=3),
]


def test_fifo_partial_close_consumes_oldest_lot_first():
    state = replay(PARTIAL_CLOSE, FIFO)
    # Released cost 100*10 + 50*12 = 1600 against proceeds 150*15 = 2250.
    assert state.realized == D(650)
    assert state.quantity == D(50)
    assert state.lots == (Lot(D(50), D(600)),)
    assert state.cost_basis == D(600)
    # 50 * 14 - 600
    assert unrealized_pnl(state, D(14)) == D(100)


def test_average_partial_close_releases_cost_pro_rata():
    state = replay(PARTIAL_CLOSE, AVERAGE)
    # Average cost 2200 / 200 = 11, released 150 * 11 = 1650 against proceeds 2250.
    assert state.realized == D(600)
    assert state.average_cost == D(11)
    assert state.cost_basis == D(550)
    assert unrealized_pnl(state, D(14)) == D(150)


@pytest.mark.parametrize("method", list(CostMethod))
def test_realized_plus_unrealized_is_the_same_for_both_methods(method):
    state = replay(PARTIAL_CLOSE, method)
    # -(1000 + 1200) + 2250 + 50 * 14 = 750
    assert state.realized + unrealized_pnl(state, D(14)) == D(750)


def test_average_cost_repeating_decimal_telescopes_exactly():
    fills = [
        fill("T1", "BUY", "1", "10", minute=1),
        fill("T2", "BUY", "2", "11", minute=2),
        fill("T3", "SELL", "1", "12", minute=3),
    ]
    state = replay(fills, AVERAGE)
    # 32 / 3 released to 18 places; the remainder keeps the complement.
    assert state.realized == D("1.333333333333333333")
    assert state.cost_basis == D("21.333333333333333333")
    closed = apply_fill(state, fill("T4", "SELL", "2", "12", minute=4), AVERAGE)
    # Exactly FIFO's (12 - 10) + 2 * (12 - 11) once flat.
    assert closed.realized == D(4)
    assert closed.quantity == 0
    assert closed.lots == ()


def test_one_fill_flips_long_into_short():
    state = replay(
        [fill("T1", "BUY", "100", "10", minute=1), fill("T2", "SELL", "150", "12", minute=2)],
        FIFO,
    )
    # 100 closed at +2 each; the other 50 open a short received at 12.
    assert state.realized == D(200)
    assert state.quantity == D(-50)
    assert state.lots == (Lot(D(50), D(600)),)
    assert state.cost_basis == D(-600)
    # Short gains when the price falls: -550 - (-600).
    assert unrealized_pnl(state, D(11)) == D(50)


def test_fifo_short_covering_and_flip_back_to_long():
    shorts = [
        fill("T1", "SELL", "100", "20", minute=1),
        fill("T2", "SELL", "50", "22", minute=2),
        fill("T3", "BUY", "120", "18", minute=3),
    ]
    state = replay(shorts, FIFO)
    # Cover 100 @ 20 and 20 @ 22 (2440 received) for 2160 paid.
    assert state.realized == D(280)
    assert state.quantity == D(-30)
    assert state.cost_basis == D(-660)
    state = apply_fill(state, fill("T4", "BUY", "40", "19", minute=4), FIFO)
    # Cover the last 30 @ 22 at 19 (+90); 10 left long at 19.
    assert state.realized == D(370)
    assert state.quantity == D(10)
    assert state.lots == (Lot(D(10), D(190)),)


def test_average_short_covering():
    shorts = [
        fill("T1", "SELL", "100", "20", minute=1),
        fill("T2", "SELL", "50", "22", minute=2),
        fill("T3", "BUY", "120", "18", minute=3),
    ]
    state = replay(shorts, AVERAGE)
    # 3100 received for 150; 120 covered release 3100 * 120 / 150 = 2480 for 2160 paid.
    assert state.realized == D(320)
    assert state.cost_basis == D(-620)


def test_fees_are_kept_out_of_realized_and_out_of_cost():
    state = replay(
        [
            fill("T1", "BUY", "100", "10", fees="5", minute=1),
            fill("T2", "SELL", "100", "11", fees="5.50", minute=2),
        ],
        FIFO,
    )
    assert state.realized == D(100)
    assert state.fees == D("10.50")
    figures = valuation(state, D(11), D(1), "USD")
    assert figures.realized == D("100.00")
    assert figures.fees == D("10.50")
    assert figures.net_realized == D("89.50")
    assert figures.unrealized == D("0.00")
    assert figures.total == D("89.50")


def test_jpy_rounds_to_whole_yen_half_even():
    state = replay([fill("T1", "BUY", "5", "60.5", currency="JPY")], FIFO)
    figures = valuation(state, D("60.3"), D(1), "JPY")
    # Market value 301.5 rounds to 302 (even); unrealized exactly -1.
    assert figures.market_value == D(302)
    assert figures.unrealized == D(-1)
    # Cost basis 302.5 is derived (302 + 1) so the snapshot foots.
    assert figures.cost_basis == D(303)
    assert figures.total == D(-1)
    assert figures.market_value.as_tuple().exponent == 0


def test_fx_translation_to_base():
    state = replay([fill("T1", "BUY", "10", "99.99", fees="1.25", currency="EUR")], FIFO)
    figures = valuation(state, D("101.015"), D("1.0850"), "USD")
    assert (figures.market_value, figures.unrealized, figures.fees) == (
        D("1010.15"),
        D("10.25"),
        D("1.25"),
    )
    assert figures.cost_basis == D("999.90")
    # 1010.15 * 1.085 = 1096.01275; 10.25 * 1.085 = 11.12125; 1.25 * 1.085 = 1.35625
    assert figures.base_market_value == D("1096.01")
    assert figures.base_unrealized == D("11.12")
    assert figures.base_fees == D("1.36")
    assert figures.base_total == D("9.76")
    assert figures.base_cost_basis == D("1084.89")
    assert figures.base_currency == "USD"
    assert figures.currency == "EUR"


def test_translation_multiplies_before_rounding():
    state = replay(
        [
            fill("T1", "BUY", "1", "100", currency="EUR", minute=1),
            fill("T2", "SELL", "1", "200.005", currency="EUR", minute=2),
        ],
        FIFO,
    )
    figures = valuation(state, D(200), D(2), "USD")
    # 100.005 books as 100.00 (half even) locally but 200.01 in base, not 2 * 100.00.
    assert figures.realized == D("100.00")
    assert figures.base_realized == D("200.01")


def test_state_keeps_full_precision_until_valuation():
    state = replay([fill("T1", "BUY", "3", "10.123456789")], FIFO)
    assert state.cost_basis == D("30.370370367")
    assert valuation(state, D("10.123456789"), D(1), "USD").cost_basis == D("30.37")


def test_flat_position_values_to_zero_in_base_currency():
    figures = valuation(PositionState(), D(100), D(1), "GBP")
    assert figures.currency == "GBP"
    assert figures.total == D("0.00")
    assert figures.quantity == 0


def test_replay_sorts_by_trade_time_then_trade_id():
    fills = [
        fill("T2", "SELL", "10", "12", minute=5),
        fill("B", "BUY", "10", "11", minute=1),
        fill("A", "BUY", "10", "10", minute=1),
    ]
    state = replay(fills, FIFO)
    # A (10) is the oldest lot, so the sell at 12 realizes 20 and leaves B at 11.
    assert state.realized == D(20)
    assert state.lots == (Lot(D(10), D(110)),)


def test_restate_amend_uses_the_current_version_only():
    original = {f.trade_id: f for f in PARTIAL_CLOSE}
    amended = dict(original, T3=fill("T3", "SELL", "150", "16", minute=3, version=2))
    assert restate(original, FIFO).realized == D(650)
    assert restate(amended, FIFO).realized == D(800)


def test_restate_after_cancel_equals_never_having_the_trade():
    live = {f.trade_id: f for f in PARTIAL_CLOSE}
    del live["T2"]
    # Without T2 the sell of 150 closes 100 @ 10 and opens a 50 short at 15.
    state = restate(live, FIFO)
    assert state == replay([PARTIAL_CLOSE[0], PARTIAL_CLOSE[2]], FIFO)
    assert state.realized == D(500)
    assert state.quantity == D(-50)


def test_restate_rejects_a_key_that_is_not_the_trade_id():
    with pytest.raises(ValueError, match="holds a fill"):
        restate({"X": PARTIAL_CLOSE[0]}, FIFO)


def test_fill_in_another_currency_is_refused():
    state = replay([fill("T1", "BUY", "1", "1", currency="USD")], FIFO)
    with pytest.raises(ValueError, match="EUR"):
        apply_fill(state, fill("T2", "BUY", "1", "1", currency="EUR"), FIFO)
    with pytest.raises(ValueError, match="EUR"):
        replay([fill("T2", "BUY", "1", "1", currency="EUR")], FIFO, currency="USD")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"quantity": D(0)}, ValueError),
        ({"quantity": D(-1)}, ValueError),
        ({"fees": D("-0.01")}, ValueError),
        ({"side": "SHORT"}, ValueError),
        ({"price": 10.5}, TypeError),
        ({"price": D("NaN")}, TypeError),
        ({"trade_time": datetime(2024, 3, 1, 9, 0)}, ValueError),
        ({"currency": "XYZ"}, UnknownCurrencyError),
    ],
)
def test_fill_validation(changes, error):
    fields = {
        "trade_id": "T1",
        "trade_version": 1,
        "side": "BUY",
        "quantity": D(1),
        "price": D(1),
        "fees": D(0),
        "trade_time": T0,
        "currency": "USD",
    }
    with pytest.raises(error):
        Fill(**(fields | changes))


def test_position_state_rejects_lots_that_disagree_with_quantity():
    with pytest.raises(ValueError, match="add up"):
        PositionState(currency="USD", quantity=D(5), lots=(Lot(D(4), D(40)),))


def test_valuation_rejects_non_positive_fx_rate():
    with pytest.raises(ValueError, match="fx_rate_to_base"):
        valuation(PositionState(), D(1), D(0), "USD")


def test_switching_to_average_pools_fifo_lots():
    state = replay(PARTIAL_CLOSE[:2], FIFO)
    state = apply_fill(state, fill("T3", "SELL", "100", "15", minute=3), AVERAGE)
    # Pooled average 11: 100 * (15 - 11).
    assert state.realized == D(400)
    assert state.lots == (Lot(D(100), D(1100)),)
