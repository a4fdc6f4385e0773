"""``reporting.pnl.fold`` is ``apply_fill`` over each fill in turn, digit for digit (hypothesis)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.pnl import CostMethod, Fill, PositionState, apply_fill, fold
from reporting.positions import state_to_json

# Storage scales, and prices with many places so partial closes hit the 18-place division.
from tests.reporting.test_pnl_properties import T0, fees, methods, prices, quantities, sides


@st.composite
def fill_lists(draw: st.DrawFn, max_size: int = 40) -> list[Fill]:
    rows = draw(
        st.lists(
            st.tuples(
                sides,
                # Small whole quantities as often as not, so positions close exactly and flip.
                st.one_of(quantities, st.integers(1, 5).map(Decimal)),
                prices,
                fees,
            ),
            max_size=max_size,
        )
    )
    return [
        Fill(f"T{i:03d}", 1, side, qty, price, fee, T0 + timedelta(seconds=i), "USD")
        for i, (side, qty, price, fee) in enumerate(rows)
    ]


def one_by_one(state: PositionState, fills: list[Fill], method: CostMethod) -> PositionState:
    for fill in fills:
        state = apply_fill(state, fill, method)
    return state


@settings(deadline=None, max_examples=300)
@given(before=fill_lists(max_size=15), fills=fill_lists(), first=methods, method=methods)
def test_fold_equals_apply_fill_one_fill_at_a_time(before, fills, first, method):
    # The start may have been built under another method (FIFO lots folded on under AVERAGE).
    start = one_by_one(PositionState(currency="USD"), before, first)
    later = [
        Fill(f"U{f.trade_id}", 1, f.side, f.quantity, f.price, f.fees, f.trade_time, "USD")
        for f in fills
    ]

    folded = fold(start, later, method)

    expected = one_by_one(start, later, method)
    assert folded == expected
    assert state_to_json(folded) == state_to_json(expected)
    assert [(lot.quantity, lot.cost) for lot in folded.lots] == [
        (lot.quantity, lot.cost) for lot in expected.lots
    ]


def test_fold_of_no_fills_leaves_the_state_as_it_is_even_unpooled():
    buys = [
        Fill(f"T{i}", 1, "BUY", Decimal(1), Decimal(10 + i), Decimal(0), T0, "USD")
        for i in range(2)
    ]
    two_lots = one_by_one(PositionState(currency="USD"), buys, CostMethod.FIFO)

    assert fold(two_lots, [], CostMethod.AVERAGE) is two_lots
    assert len(two_lots.lots) == 2


def test_fold_refuses_a_fill_in_another_currency_as_apply_fill_does():
    state = PositionState(currency="EUR")
    fill = Fill("T1", 1, "BUY", Decimal(1), Decimal(10), Decimal(0), T0, "USD")

    for fold_or_apply in (lambda: fold(state, [fill], CostMethod.FIFO),
                          lambda: apply_fill(state, fill, CostMethod.FIFO)):  # fmt: skip
        with pytest.raises(ValueError, match=r"^fill T1 is in USD, position in EUR$"):
            fold_or_apply()
