"""Position keeping and P&L: pure functions over frozen dataclasses, no Django, no I/O.

A position per (account, instrument) is rebuilt by folding its fills in (trade_time, trade_id)
order. Money stays at full ``Decimal`` precision inside the state; only :func:`valuation`, the
booking point for a P&L snapshot, rounds, through :func:`backoffice.money.quantize_money`.
The method is described in docs/pnl-method.md.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from itertools import chain
from typing import Literal, Protocol

from backoffice.money import minor_units, quantize_money

Side = Literal["BUY", "SELL"]

ZERO = Decimal(0)

# NUMERIC(20, 6) quantities times NUMERIC(20, 8) prices need at most 40 significant digits;
# 60 leaves room for sums, and trapping Inexact turns any silent rounding into an error.
_PRECISION = 60
# The cost released by a partial close is the one division in the fold (cost * part / whole);
# it is carried to this many places so every later addition stays exact. The lot keeps the
# exact complement, so released amounts always add up to the cost that went in and the places
# only decide how realized P&L is split between successive partial closes.
_COST_PLACES = 18


class CostMethod(StrEnum):
    FIFO = "FIFO"
    AVERAGE = "AVERAGE"


@contextmanager
def _exact() -> Iterator[None]:
    with decimal.localcontext() as ctx:
        ctx.prec = _PRECISION
        ctx.rounding = ROUND_HALF_EVEN
        ctx.traps[decimal.Inexact] = True
        yield


@dataclass(frozen=True)
class Fill:
    """One trade's current version as it affects a position; validated on construction."""

    trade_id: str
    trade_version: int
    side: Side
    quantity: Decimal
    price: Decimal
    fees: Decimal
    trade_time: datetime
    currency: str

    def __post_init__(self) -> None:
        if self.side not in ("BUY", "SELL"):
            raise ValueError(f"side must be BUY or SELL, not {self.side!r}")
        for name in ("quantity", "price", "fees"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise TypeError(f"{name} must be a finite Decimal, got {value!r}")
        if self.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {self.quantity}")
        if self.fees < 0:
            raise ValueError(f"fees must not be negative, got {self.fees}")
        if self.trade_time.tzinfo is None:
            # Naive and aware datetimes cannot be ordered against each other during replay.
            raise ValueError("trade_time must be timezone-aware")
        minor_units(self.currency)

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass(frozen=True)
class Lot:
    """An open lot: a positive quantity and the total cost paid (long) or received (short)."""

    quantity: Decimal
    cost: Decimal

    @property
    def price(self) -> Decimal:
        return self.cost / self.quantity


@dataclass(frozen=True)
class PositionState:
    """Signed quantity, open lots oldest first, and cumulative realized P&L and fees.

    All lots share the position's direction; their quantities sum to ``abs(quantity)``. Under
    AVERAGE there is at most one lot, priced at the running average cost.
    """

    currency: str | None = None
    quantity: Decimal = ZERO
    lots: tuple[Lot, ...] = field(default=())
    realized: Decimal = ZERO
    fees: Decimal = ZERO

    def __post_init__(self) -> None:
        if any(lot.quantity <= 0 for lot in self.lots):
            raise ValueError("lot quantities must be positive")
        if sum((lot.quantity for lot in self.lots), ZERO) != abs(self.quantity):
            raise ValueError("open lots do not add up to the position quantity")

    @property
    def cost_basis(self) -> Decimal:
        """Signed cost of the open position: positive for a long, negative for a short."""
        total = sum((lot.cost for lot in self.lots), ZERO)
        return total if self.quantity >= 0 else -total

    @property
    def average_cost(self) -> Decimal | None:
        if self.quantity == 0:
            return None
        return abs(self.cost_basis) / abs(self.quantity)


def _release(lots: tuple[Lot, ...], quantity: Decimal) -> tuple[tuple[Lot, ...], Decimal]:
    """Take ``quantity`` off the front of ``lots``; return the remaining lots and released cost."""
    remaining = list(lots)
    released = ZERO
    left = quantity
    while left > 0:
        lot = remaining[0]
        if lot.quantity <= left:
            released += lot.cost
            left -= lot.quantity
            remaining.pop(0)
            continue
        with decimal.localcontext() as ctx:
            ctx.traps[decimal.Inexact] = False
            part = (lot.cost * left / lot.quantity).quantize(Decimal(1).scaleb(-_COST_PLACES))
        remaining[0] = Lot(lot.quantity - left, lot.cost - part)
        released += part
        left = ZERO
    return tuple(remaining), released


def _add_lot(lots: tuple[Lot, ...], lot: Lot, method: CostMethod) -> tuple[Lot, ...]:
    if method is CostMethod.FIFO:
        return (*lots, lot)
    # AVERAGE pools everything into one lot, so a close releases cost pro rata.
    pooled = sum((x.quantity for x in lots), lot.quantity)
    return (Lot(pooled, sum((x.cost for x in lots), lot.cost)),)


def _pool(lots: tuple[Lot, ...], method: CostMethod) -> tuple[Lot, ...]:
    if method is CostMethod.FIFO or len(lots) <= 1:
        return lots
    return _add_lot(lots[1:], lots[0], method)


def apply_fill(state: PositionState, fill: Fill, method: CostMethod) -> PositionState:
    """Return the position after ``fill``; ``state`` is not modified.

    The part of the fill that reduces the position realizes P&L against the open lots (oldest
    first under FIFO, at the average cost under AVERAGE); any remainder opens a lot in the
    fill's direction, so one fill can flip a long into a short or back. Realized P&L is gross
    of fees; the fill's fees are accumulated separately. Arithmetic is exact (an operation that
    would round raises ``decimal.Inexact``) except the cost released by a partial close, carried
    to 18 places, whose complement stays in the lot. A fill in a different currency from the
    position raises ``ValueError``.
    """
    if state.currency is not None and fill.currency != state.currency:
        raise ValueError(
            f"fill {fill.trade_id} is in {fill.currency}, position in {state.currency}"
        )
    with _exact():
        lots = _pool(state.lots, method)
        signed = fill.signed_quantity
        closing = ZERO
        if state.quantity * signed < 0:
            closing = min(abs(signed), abs(state.quantity))
        realized = state.realized
        if closing:
            lots, released = _release(lots, closing)
            # A long is closed by selling (proceeds minus cost), a short by buying back.
            direction = 1 if state.quantity > 0 else -1
            realized += direction * (closing * fill.price - released)
        opening = abs(signed) - closing
        if opening:
            lots = _add_lot(lots, Lot(opening, opening * fill.price), method)
        return PositionState(
            currency=fill.currency,
            quantity=state.quantity + signed,
            lots=lots,
            realized=realized,
            fees=state.fees + fill.fees,
        )


class FillLike(Protocol):
    """What :func:`fold` reads of a fill: a :class:`Fill`, or a trade version that has these."""

    @property
    def trade_id(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def fees(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...


_COST_QUANTUM = Decimal(1).scaleb(-_COST_PLACES)


def fold(state: PositionState, fills: Iterable[FillLike], method: CostMethod) -> PositionState:
    """The position after ``fills`` in the order given: exactly ``apply_fill`` over each in turn.

    One exact context and one :class:`PositionState` for the whole run instead of one per fill,
    and the lots kept as two lists with a moving front, so a FIFO close no longer copies every
    open lot. The same operations in the same contexts, so the result is equal digit for digit
    (``tests/reporting/test_fold.py``). A fill with no quantity, negative fees, an unknown side
    or another currency raises ``ValueError``, as :class:`Fill` and :func:`apply_fill` would.
    """
    pending = iter(fills)
    first = next(pending, None)
    if first is None:
        return state  # no fill: not even AVERAGE's pooling, as with no apply_fill at all
    currency = state.currency
    quantity, realized, fees = state.quantity, state.realized, state.fees
    average = method is CostMethod.AVERAGE
    with _exact():
        lots = _pool(state.lots, method)
        sizes = [lot.quantity for lot in lots]
        costs = [lot.cost for lot in lots]
        front = 0  # lots before it are closed; popping the head of a list would be O(lots)
        loose = decimal.getcontext().copy()
        loose.traps[decimal.Inexact] = False
        for fill in chain((first,), pending):
            if currency is not None and fill.currency != currency:
                raise ValueError(
                    f"fill {fill.trade_id} is in {fill.currency}, position in {currency}"
                )
            currency = fill.currency
            size, price = fill.quantity, fill.price
            if not size > 0 or not fill.fees >= 0 or fill.side not in ("BUY", "SELL"):
                raise ValueError(f"fill {fill.trade_id} has no quantity, negative fees or no side")
            buy = fill.side == "BUY"
            closing = ZERO
            if (quantity > 0 and not buy) or (quantity < 0 and buy):
                closing = min(size, abs(quantity))
            if closing:
                released = ZERO
                left = closing
                while left > 0:
                    lot_size, lot_cost = sizes[front], costs[front]
                    if lot_size <= left:
                        released += lot_cost
                        left -= lot_size
                        front += 1
                        continue
                    # As _release: the one inexact step, in the same context and to 18 places.
                    part = loose.divide(loose.multiply(lot_cost, left), lot_size).quantize(
                        _COST_QUANTUM, context=loose
                    )
                    sizes[front], costs[front] = lot_size - left, lot_cost - part
                    released += part
                    left = ZERO
                gain = closing * price - released
                realized += gain if quantity > 0 else -gain
            opening = size - closing
            if opening:
                if average and front < len(sizes):
                    sizes[front], costs[front] = (
                        opening + sizes[front],
                        opening * price + costs[front],
                    )
                else:
                    sizes.append(opening)
                    costs.append(opening * price)
            quantity += size if buy else -size
            fees += fill.fees
        return PositionState(
            currency=currency,
            quantity=quantity,
            lots=tuple(Lot(q, c) for q, c in zip(sizes[front:], costs[front:], strict=True)),
            realized=realized,
            fees=fees,
        )


def _replay_key(fill: Fill) -> tuple[datetime, str, int]:
    return (fill.trade_time, fill.trade_id, fill.trade_version)


def replay(fills: Iterable[Fill], method: CostMethod, currency: str | None = None) -> PositionState:
    """Fold ``fills`` into a position from flat, in (trade_time, trade_id) order.

    The result depends only on the set of fills, never on the order they are passed in.
    ``currency`` pins the position's currency (useful when ``fills`` may be empty); fills in any
    other currency raise ``ValueError``.
    """
    ordered = sorted(fills, key=_replay_key)
    return fold(PositionState(currency=currency), ordered, method)


def restate(
    current_fills: Mapping[str, Fill], method: CostMethod, currency: str | None = None
) -> PositionState:
    """Rebuild a position from the current version of every live trade, keyed by trade_id.

    An AMEND is the new version replacing the old one in ``current_fills``; a CANCEL is the
    trade's absence. Because the position is a replay of exactly those fills, restating after
    a cancel equals never having had the trade. A key that disagrees with its fill's trade_id
    raises ``ValueError``.
    """
    for trade_id, fill in current_fills.items():
        if fill.trade_id != trade_id:
            raise ValueError(f"key {trade_id!r} holds a fill for trade {fill.trade_id!r}")
    return replay(current_fills.values(), method, currency)


def unrealized_pnl(state: PositionState, mark_price: Decimal) -> Decimal:
    """Exact unrealized P&L of the open position at ``mark_price``: market value minus cost."""
    with _exact():
        return state.quantity * mark_price - state.cost_basis


@dataclass(frozen=True)
class PnlFigures:
    """A booked P&L snapshot in the instrument currency and translated to the base currency.

    ``total = realized + unrealized - fees`` and ``net_realized = realized - fees``; realized is
    gross of fees. ``cost_basis`` and ``market_value`` are signed (negative for a short) so that
    ``unrealized = market_value - cost_basis``. The same identities hold for the ``base_`` set.
    """

    quantity: Decimal
    currency: str
    cost_basis: Decimal
    market_value: Decimal
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    net_realized: Decimal
    total: Decimal
    base_currency: str
    fx_rate_to_base: Decimal
    base_cost_basis: Decimal
    base_market_value: Decimal
    base_realized: Decimal
    base_unrealized: Decimal
    base_fees: Decimal
    base_net_realized: Decimal
    base_total: Decimal


def _booked(
    market_value: Decimal, unrealized: Decimal, realized: Decimal, fees: Decimal, currency: str
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]:
    # The P&L components and the market value (which risk consumes) are each rounded once from
    # full precision; cost basis, net realized and total are derived from the rounded figures
    # so a booked snapshot always foots, the derived ones absorbing the rounding.
    mv, ur, rz, fe = (
        quantize_money(x, currency) for x in (market_value, unrealized, realized, fees)
    )
    return mv - ur, mv, rz, ur, fe, rz - fe, rz + ur - fe


def valuation(
    state: PositionState, mark_price: Decimal, fx_rate_to_base: Decimal, base_currency: str
) -> PnlFigures:
    """Value ``state`` at ``mark_price`` and translate at ``fx_rate_to_base`` (instrument→base).

    Market value, realized, unrealized and fees are each rounded once, half-even to the
    currency's minor units, from the exact amount (translation multiplies before rounding);
    cost basis, net realized and total are derived from those, so each set satisfies the
    identities on :class:`PnlFigures` exactly and each figure is within 1.5 minor units of exact.
    A flat position with no fills is valued in ``base_currency``. ``fx_rate_to_base`` must be
    positive.
    """
    if fx_rate_to_base <= 0:
        raise ValueError(f"fx_rate_to_base must be positive, got {fx_rate_to_base}")
    currency = state.currency or base_currency
    with _exact():
        market_value = state.quantity * mark_price
        unrealized = market_value - state.cost_basis
        realized, fees = state.realized, state.fees
        base = [x * fx_rate_to_base for x in (market_value, unrealized, realized, fees)]
    cb, mv, rz, ur, fe, nr, tot = _booked(market_value, unrealized, realized, fees, currency)
    bcb, bmv, brz, bur, bfe, bnr, btot = _booked(base[0], base[1], base[2], base[3], base_currency)
    return PnlFigures(
        quantity=state.quantity,
        currency=currency,
        cost_basis=cb,
        market_value=mv,
        realized=rz,
        unrealized=ur,
        fees=fe,
        net_realized=nr,
        total=tot,
        base_currency=base_currency,
        fx_rate_to_base=fx_rate_to_base,
        base_cost_basis=bcb,
        base_market_value=bmv,
        base_realized=brz,
        base_unrealized=bur,
        base_fees=bfe,
        base_net_realized=bnr,
        base_total=btot,
    )
