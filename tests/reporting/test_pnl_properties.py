"""Property-based invariants of reporting.pnl (hypothesis)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from backoffice.money import minor_units, quantize_money
from reporting.pnl import (
    CostMethod,
    Fill,
    Side,
    apply_fill,
    replay,
    restate,
    unrealized_pnl,
    valuation,
)

T0 = datetime(2024, 3, 1, tzinfo=UTC)

# Storage scales: quantities NUMERIC(20, 6), prices NUMERIC(20, 8).
quantities = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(100_000), places=6)
prices = st.decimals(min_value=Decimal(0), max_value=Decimal(10_000), places=8)
fees = st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2)
methods = st.sampled_from(list(CostMethod))
sides: st.SearchStrategy[Side] = st.sampled_from(("BUY", "SELL"))


@st.composite
def fill_lists(draw: st.DrawFn, min_size: int = 0) -> list[Fill]:
    rows = draw(
        st.lists(
            st.tuples(
                sides,
                quantities,
                prices,
                fees,
                # Few distinct minutes so ties on trade_time (broken by trade_id) are common.
                st.integers(min_value=0, max_value=5),
            ),
            min_size=min_size,
            max_size=12,
        )
    )
    return [
        Fill(f"T{i:03d}", 1, side, qty, price, fee, T0 + timedelta(minutes=minute), "USD")
        for i, (side, qty, price, fee, minute) in enumerate(rows)
    ]


def cash_flow(fills: Sequence[Fill]) -> Decimal:
    """What was paid (negative) and received (positive) for the units, fees excluded."""
    return sum((-f.signed_quantity * f.price for f in fills), Decimal(0))


def in_replay_order(fills: Sequence[Fill]) -> list[Fill]:
    return sorted(fills, key=lambda f: (f.trade_time, f.trade_id))


@settings(deadline=None)
@given(fills=fill_lists(), mark=prices, method=methods)
def test_realized_plus_unrealized_is_the_mark_to_market_change(fills, mark, method):
    state = replay(fills, method)
    position = sum((f.signed_quantity for f in fills), Decimal(0))
    # Exact, not approximate: both methods split the same total between realized and
    # unrealized, fees sit outside both.
    assert state.realized + unrealized_pnl(state, mark) == cash_flow(fills) + position * mark
    assert state.fees == sum((f.fees for f in fills), Decimal(0))


@settings(deadline=None)
@given(fills=fill_lists(), method=methods)
def test_position_is_the_sum_of_signed_quantities(fills, method):
    state = replay(fills, method)
    assert state.quantity == sum((f.signed_quantity for f in fills), Decimal(0))
    assert sum((lot.quantity for lot in state.lots), Decimal(0)) == abs(state.quantity)


@settings(deadline=None)
@given(fills=fill_lists(min_size=1), data=st.data(), method=methods)
def test_restate_after_cancel_equals_never_having_had_the_trade(fills, data, method):
    cancelled = data.draw(st.sampled_from(fills))
    # The position as it stood, built incrementally with the trade included.
    booked = replay(fills, method)
    survivors = [f for f in fills if f is not cancelled]
    shuffled = data.draw(st.permutations(survivors))
    restated = restate({f.trade_id: f for f in shuffled}, method)
    never_had = replay([], method)
    for f in in_replay_order(survivors):
        never_had = apply_fill(never_had, f, method)
    assert restated == never_had
    if cancelled.fees:
        assert restated != booked


@settings(deadline=None)
@given(fills=fill_lists(min_size=1), data=st.data(), new_price=prices, method=methods)
def test_restate_after_amend_equals_having_booked_the_new_version(fills, data, new_price, method):
    amended = data.draw(st.sampled_from(fills))
    new_version = replace(amended, trade_version=2, price=new_price)
    current = {f.trade_id: f for f in fills} | {amended.trade_id: new_version}
    expected = replay([], method)
    for f in in_replay_order([new_version if f is amended else f for f in fills]):
        expected = apply_fill(expected, f, method)
    assert restate(current, method) == expected


@settings(deadline=None)
@given(fills=fill_lists(), close_price=prices, close_fees=fees)
def test_fifo_and_average_agree_on_realized_once_flat(fills, close_price, close_fees):
    position = sum((f.signed_quantity for f in fills), Decimal(0))
    if position:
        side: Side = "SELL" if position > 0 else "BUY"
        last = T0 + timedelta(days=1)
        fills = [*fills, Fill("Z", 1, side, abs(position), close_price, close_fees, last, "USD")]
    fifo = replay(fills, CostMethod.FIFO)
    average = replay(fills, CostMethod.AVERAGE)
    assert fifo.quantity == average.quantity == 0
    assert fifo.realized == average.realized == cash_flow(fills)


FIGURES = ("market_value", "cost_basis", "realized", "unrealized", "fees", "net_realized", "total")


@settings(deadline=None)
@given(
    fills=fill_lists(),
    mark=prices,
    rate=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(200), places=10),
    method=methods,
)
def test_booked_snapshot_foots_and_stays_within_rounding_of_exact(fills, mark, rate, method):
    state = replay(fills, method)
    figures = valuation(state, mark, rate, "JPY")
    for prefix, ccy, scale in (("", "USD", Decimal(1)), ("base_", "JPY", rate)):
        mv, cb, rz, ur, fe, net, total = (getattr(figures, prefix + name) for name in FIGURES)
        assert total == rz + ur - fe
        assert net == rz - fe
        assert ur == mv - cb
        with localcontext(prec=80):
            exact_total = (state.realized + unrealized_pnl(state, mark) - state.fees) * scale
            assert rz == quantize_money(state.realized * scale, ccy)
            assert mv == quantize_money(state.quantity * mark * scale, ccy)
        unit = Decimal(1).scaleb(-minor_units(ccy))
        assert abs(total - exact_total) <= Decimal("1.5") * unit
