"""The live position book, pure: what a batch of trade versions does to which positions.

No Django and no I/O. ``consume_reporting`` turns messages into :class:`TradeVersion` and
:class:`PriceTick`, asks :func:`plan` which positions can take their new fills incrementally and
which must be restated from their current trade versions, and stores the exact
:class:`reporting.pnl.PositionState` with :func:`state_to_json`. Both paths fold the same fills in
the same order, so they give the same position (docs/pnl.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, cast

from backoffice.money import RATE_PLACES, quantize_places
from reporting.pnl import CostMethod, Fill, Lot, PositionState, Side, fold

Key = tuple[str, str]  # (account, instrument)
ReplayKey = tuple[datetime, str, int]  # the order fills are folded in (reporting.pnl.replay)


@dataclass(frozen=True)
class TradeVersion:
    """One ``trades.validated`` event: the version of ``trade_id`` now in force, or its cancel."""

    trade_id: str
    version: int
    action: Literal["NEW", "AMEND", "CANCEL"]
    account: str
    book: str
    base_currency: str
    pnl_method: CostMethod
    instrument: str
    asset_class: str
    currency: str
    side: Side
    quantity: Decimal
    price: Decimal
    fees: Decimal
    trade_date: date
    trade_time: datetime

    @property
    def live(self) -> bool:
        return self.action != "CANCEL"

    @property
    def key(self) -> Key:
        return (self.account, self.instrument)

    @property
    def replay_key(self) -> ReplayKey:
        return (self.trade_time, self.trade_id, self.version)

    def fill(self) -> Fill:
        return Fill(
            trade_id=self.trade_id,
            trade_version=self.version,
            side=self.side,
            quantity=self.quantity,
            price=self.price,
            fees=self.fees,
            trade_time=self.trade_time,
            currency=self.currency,
        )


@dataclass(frozen=True)
class PriceTick:
    """One ``marketdata.prices`` event."""

    isin: str
    price: Decimal
    currency: str
    as_of: datetime
    business_date: date
    source: str


def trade_version(payload: Mapping[str, Any]) -> TradeVersion:
    """A schema-valid ``trades.validated`` payload as a :class:`TradeVersion`."""
    return TradeVersion(
        trade_id=payload["trade_id"],
        version=int(payload["trade_version"]),
        action=payload["action"],
        account=payload["account"],
        book=payload["book"],
        base_currency=payload["book_base_currency"],
        pnl_method=CostMethod(payload["pnl_method"]),
        instrument=payload["instrument"],
        asset_class=payload["asset_class"],
        currency=payload["currency"],
        side=cast(Side, payload["side"]),
        quantity=Decimal(payload["quantity"]),
        price=Decimal(payload["price"]),
        fees=Decimal(payload["fees"]),
        trade_date=date.fromisoformat(payload["trade_date"]),
        trade_time=_utc(payload["trade_time"]),
    )


def price_tick(payload: Mapping[str, Any]) -> PriceTick:
    """A schema-valid ``marketdata.prices`` payload as a :class:`PriceTick`."""
    return PriceTick(
        isin=payload["isin"],
        price=Decimal(payload["price"]),
        currency=payload["currency"],
        as_of=_utc(payload["as_of"]),
        business_date=date.fromisoformat(payload["business_date"]),
        source=payload["source"],
    )


def _utc(text: str) -> datetime:
    # The contracts allow only UTC ("Z" or "+00:00"); fromisoformat reads both in Python 3.11.
    return datetime.fromisoformat(text)


def newest_versions(trades: Iterable[TradeVersion]) -> list[TradeVersion]:
    """The highest version of each trade in a batch; lower ones are already superseded."""
    newest: dict[str, TradeVersion] = {}
    for trade in trades:
        held = newest.get(trade.trade_id)
        if held is None or trade.version > held.version:
            newest[trade.trade_id] = trade
    return list(newest.values())


@dataclass(frozen=True)
class StoredTrade:
    """What the book holds for a trade: its version, whether live, its position and replay key."""

    version: int
    live: bool
    key: Key
    replay_key: ReplayKey


@dataclass(frozen=True)
class Head:
    """What a stored position needs for the incremental test: its last fill and its method."""

    last: ReplayKey
    pnl_method: CostMethod


@dataclass(frozen=True)
class Plan:
    """Positions that append fills (in replay order) and positions that must be restated.

    ``restate`` maps each restated position to the earliest replay key the batch changes in it:
    every live fill before that key is as it was, so the position can be folded on from its
    latest checkpoint before it. None means from flat (a change of cost method).
    """

    append: dict[Key, list[TradeVersion]] = field(default_factory=dict)
    restate: dict[Key, ReplayKey | None] = field(default_factory=dict)


def accepted(
    trades: Iterable[TradeVersion], stored: Mapping[str, StoredTrade]
) -> list[TradeVersion]:
    """The versions newer than the one held: a stale or repeated version changes nothing."""
    return [
        t
        for t in newest_versions(trades)
        if t.trade_id not in stored or t.version > stored[t.trade_id].version
    ]


def _restate_from(restate: dict[Key, ReplayKey | None], key: Key, point: ReplayKey | None) -> None:
    """Move ``key``'s restatement point back to ``point`` (None, from flat, is the earliest)."""
    if key in restate:
        held = restate[key]
        restate[key] = None if held is None or point is None else min(held, point)
    else:
        restate[key] = point


def plan(
    trades: Sequence[TradeVersion], stored: Mapping[str, StoredTrade], heads: Mapping[Key, Head]
) -> Plan:
    """Decide, per position, between appending fills and restating from the current versions.

    ``trades`` are accepted versions (:func:`accepted`). A version that replaces a live one (an
    amend, a cancel, a move to another account or instrument) restates the positions it leaves
    and enters, from the earlier of the old and the new version's replay key. A first live
    version only appends when every new fill of its position sorts after the position's last
    fill and the cost method is unchanged; a late trade restates from its replay key, and a
    changed method from flat. A cancel of a trade never seen has no effect.
    """
    restate: dict[Key, ReplayKey | None] = {}
    additions: dict[Key, list[TradeVersion]] = {}
    for trade in trades:
        held = stored.get(trade.trade_id)
        if held is not None and held.live:
            _restate_from(restate, held.key, held.replay_key)
            if trade.live:
                head = heads.get(trade.key)
                # A new last fill under another method refolds every fill under that method.
                changes_method = (
                    head is not None
                    and trade.replay_key > head.last
                    and trade.pnl_method != head.pnl_method
                )
                _restate_from(restate, trade.key, None if changes_method else trade.replay_key)
        elif trade.live:
            additions.setdefault(trade.key, []).append(trade)
    append: dict[Key, list[TradeVersion]] = {}
    for key, new in additions.items():
        new.sort(key=lambda t: t.replay_key)
        head = heads.get(key)
        methods = {t.pnl_method for t in new}
        in_order = head is None or new[0].replay_key > head.last
        same_method = len(methods) == 1 and (head is None or head.pnl_method in methods)
        if not same_method:
            _restate_from(restate, key, None)
        elif key in restate or not in_order:
            _restate_from(restate, key, new[0].replay_key)
        else:
            append[key] = new
    return Plan(append=append, restate=restate)


def _digits(value: Decimal) -> str:
    """The shortest exact decimal string: one state has one text however it was reached.

    (Not ``normalize()``: it rounds to the context's 28 digits, and a state can carry more.)
    """
    if value == 0:
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def state_to_json(state: PositionState) -> dict[str, Any]:
    """The exact state as canonical decimal strings (JSON numbers would go through float)."""
    return {
        "currency": state.currency,
        "quantity": _digits(state.quantity),
        "lots": [[_digits(lot.quantity), _digits(lot.cost)] for lot in state.lots],
        "realized": _digits(state.realized),
        "fees": _digits(state.fees),
    }


def state_from_json(data: Mapping[str, Any]) -> PositionState:
    """Inverse of :func:`state_to_json`, digit for digit."""
    return PositionState(
        currency=data["currency"],
        quantity=Decimal(data["quantity"]),
        lots=tuple(Lot(Decimal(q), Decimal(c)) for q, c in data["lots"]),
        realized=Decimal(data["realized"]),
        fees=Decimal(data["fees"]),
    )


def rate_to_base(
    rates: Mapping[tuple[str, str], Decimal], currency: str, base: str
) -> Decimal | None:
    """Units of ``base`` per unit of ``currency`` from one date's rates, or None if unknown.

    The same rule as ``trades.selectors.fx_rate``: 1 for the same currency, the stored pair,
    or the reciprocal of the reverse pair rounded half-even to the rate scale (10 places).
    """
    if currency == base:
        return Decimal(1)
    direct = rates.get((currency, base))
    if direct is not None:
        return direct
    inverse = rates.get((base, currency))
    if inverse is not None:
        return quantize_places(Decimal(1) / inverse, RATE_PLACES)
    return None


@dataclass(frozen=True)
class PositionMeta:
    """Everything about a position besides its state, taken from its fills (the last one wins).

    Book, base currency, cost method and asset class come with each trade version, so the last
    fill in replay order decides them: a book that changes method restates under the new one.
    """

    book: str
    base_currency: str
    pnl_method: CostMethod
    asset_class: str
    currency: str
    last: ReplayKey
    last_trade_date: date
    last_fill_price: Decimal
    trade_count: int


def meta_after(meta: PositionMeta | None, fills: Sequence[TradeVersion]) -> PositionMeta:
    """``meta`` once ``fills`` (non-empty, in replay order, all after it) are added."""
    last = fills[-1]
    first_date = meta.last_trade_date if meta is not None else last.trade_date
    return PositionMeta(
        book=last.book,
        base_currency=last.base_currency,
        pnl_method=last.pnl_method,
        asset_class=last.asset_class,
        currency=last.currency,
        last=last.replay_key,
        last_trade_date=max([first_date, *(f.trade_date for f in fills)]),
        last_fill_price=last.price,
        trade_count=(meta.trade_count if meta is not None else 0) + len(fills),
    )


def rebuild(versions: Iterable[TradeVersion]) -> tuple[PositionState, PositionMeta] | None:
    """The position of exactly these live versions, from flat; None when there are none."""
    ordered = sorted(versions, key=lambda v: v.replay_key)
    if not ordered:
        return None
    meta = meta_after(None, ordered)
    return fold(PositionState(currency=meta.currency), ordered, meta.pnl_method), meta


# A restatement refolds up to K - 1 fills before the change besides those after it, and costs a
# checkpoint row (the state as JSON) per K fills appended. At 64 the first is under 40 µs of
# fold (pnl.fold, ~1.3-1.8 µs a fill) and a page of the range read, below the fixed cost of a
# restatement's queries, while checkpoints add under 2 % to the rows PositionTrade takes; a
# smaller K buys little and writes more, a larger one starts to show in every restatement.
CHECKPOINT_EVERY = 64


@dataclass(frozen=True)
class Checkpoint:
    """A position's exact state and meta after its ``meta.trade_count``-th live fill.

    ``method`` is the cost method the state was folded under: the method of the position's last
    fill when it was written, which may differ from ``meta.pnl_method`` (the method of the fill
    it is after) once a book has changed method. It is only good for a restatement that ends
    under the same method.
    """

    state: PositionState
    meta: PositionMeta
    method: CostMethod


def fold_on(
    state: PositionState,
    meta: PositionMeta | None,
    fills: Sequence[TradeVersion],
    method: CostMethod,
    every: int = CHECKPOINT_EVERY,
) -> tuple[PositionState, PositionMeta | None, list[Checkpoint]]:
    """Fold ``fills`` (replay order, after ``meta.last``) onto ``state`` under ``method``.

    Returns the new state and meta and a checkpoint after each fill whose count (the position's
    live fills up to it) is a multiple of ``every``, so checkpoints sit at the same counts
    however the position was reached: appended, or restated from any earlier checkpoint.
    """
    count = meta.trade_count if meta is not None else 0
    checkpoints: list[Checkpoint] = []
    start = 0
    while start < len(fills):
        stop = min(len(fills), start + every - count % every)
        chunk = fills[start:stop]
        state, meta = fold(state, chunk, method), meta_after(meta, chunk)
        count = meta.trade_count
        if count % every == 0:
            checkpoints.append(Checkpoint(state, meta, method))
        start = stop
    return state, meta, checkpoints


def resumable(base: Checkpoint, after: Sequence[TradeVersion]) -> bool:
    """Whether folding ``after`` (replay order) on from ``base`` is the fold from flat.

    It is when the position ends under the method ``base`` was folded with: the method of the
    last fill after it, or of the fill it is after when nothing follows.
    """
    last = after[-1].pnl_method if after else base.meta.pnl_method
    return last is base.method


def refold(
    base: Checkpoint | None, ordered: Sequence[TradeVersion], every: int = CHECKPOINT_EVERY
) -> tuple[tuple[PositionState, PositionMeta] | None, list[Checkpoint]]:
    """Restate a position from ``base`` (None: from flat) and its live versions after it, in
    replay order.

    The result is :func:`rebuild` of every live version, digit for digit, when ``base`` is a
    checkpoint of the same live fills and :func:`resumable`; the checkpoints are those a fold
    from flat would write after ``base``. None when the position has no live fill left.
    """
    if base is None:
        if not ordered:
            return None, []
        start, meta, method = PositionState(ordered[-1].currency), None, ordered[-1].pnl_method
    else:
        start, meta, method = base.state, base.meta, base.method
    state, new_meta, checkpoints = fold_on(start, meta, ordered, method, every)
    assert new_meta is not None  # a base or at least one fill
    return (state, new_meta), checkpoints


@dataclass(frozen=True)
class Mark:
    """The price a position is valued at and where it came from."""

    price: Decimal
    source: Literal["MARKET", "TRADE"]
    as_of: datetime | None
    business_date: date | None


def mark_for(price: PriceTick | None, meta: PositionMeta) -> Mark:
    """The market price when one has been published, else the position's last fill price."""
    if price is None:
        return Mark(meta.last_fill_price, "TRADE", None, None)
    return Mark(price.price, "MARKET", price.as_of, price.business_date)


def live_valuation_date(meta: PositionMeta, mark: Mark) -> date:
    """The latest business date the position's data speaks of: its FX rate is taken on it."""
    if mark.business_date is None:
        return meta.last_trade_date
    return max(meta.last_trade_date, mark.business_date)
