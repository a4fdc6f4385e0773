"""The cross-trade figures the rules need, kept current through a batch (pure: no Django).

The stage loads, in one query each, the totals of every trade NOT in the batch (account day
notional, counterparty exposure, recent trades per account and instrument) and the rows of the
trades that ARE in the batch. The :class:`Ledger` adds the latter's contributions and then, as
each message changes a trade's state, swaps the old contribution for the new one. So a trade
sees the effect of every trade before it, in the database or earlier in the same batch, and the
verdicts do not depend on where batch boundaries fall.

Definitions (``docs/compliance.md`` has the reasoning):

* **account day notional** of (account, trade date): the base-currency notional of the
  account's WAITING and VALIDATED trades of that date at their latest version, plus the in-force
  version of REJECTED amendments of validated trades; the trade being checked is left out with
  all its versions.
* **counterparty exposure**: the base-currency notional of the versions in force downstream
  (validated and not cancelled) with that counterparty that settle on or after the trade date of
  the trade being checked, i.e. are still unsettled, excluding that trade.
* **recent trades**: WAITING and VALIDATED trades of the same account and instrument at their
  latest version.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from compliance.rules import RecentTrade

WAITING = "WAITING"
VALIDATED = "VALIDATED"
REJECTED = "REJECTED"
CANCELLED = "CANCELLED"
STATUSES = (WAITING, VALIDATED, REJECTED, CANCELLED)
LIVE = frozenset({WAITING, VALIDATED})

ZERO = Decimal(0)
DayKey = tuple[str, date]  # (account, trade date)
PairKey = tuple[str, str]  # (account, instrument)


@dataclass(frozen=True)
class TradeState:
    """One ``ComplianceTrade`` row as plain data."""

    trade_id: str
    version: int
    action: str
    account: str
    book: str
    counterparty: str
    instrument: str
    side: str
    quantity: Decimal
    price: Decimal
    currency: str
    notional_base: Decimal
    trade_time: datetime
    trade_date: date
    settle_date: date
    status: str
    validated_version: int | None = None
    validated_counterparty: str = ""
    validated_notional_base: Decimal | None = None
    validated_settle_date: date | None = None

    @property
    def in_force(self) -> bool:
        """A version of this trade is live downstream."""
        return self.validated_version is not None and self.status != CANCELLED


def day_contribution(state: TradeState) -> tuple[DayKey, Decimal] | None:
    if state.status in LIVE:
        return (state.account, state.trade_date), state.notional_base
    if state.status == REJECTED and state.in_force and state.validated_notional_base is not None:
        return (state.account, state.trade_date), state.validated_notional_base
    return None


def exposure_contribution(state: TradeState) -> tuple[str, date, Decimal] | None:
    if (
        state.in_force
        and state.validated_settle_date is not None
        and state.validated_notional_base is not None
    ):
        return (
            state.validated_counterparty,
            state.validated_settle_date,
            state.validated_notional_base,
        )
    return None


def recent_entry(state: TradeState) -> tuple[PairKey, RecentTrade] | None:
    if state.status not in LIVE:
        return None
    trade = RecentTrade(
        trade_id=state.trade_id,
        side=state.side,
        quantity=state.quantity,
        price=state.price,
        trade_time=state.trade_time,
    )
    return (state.account, state.instrument), trade


@dataclass(frozen=True)
class LastPrice:
    price: Decimal
    currency: str
    as_of: datetime


class _TimeIndex:
    """Recent trades of one account and instrument, sorted by time, for window look-ups."""

    def __init__(self) -> None:
        self._keys: list[tuple[datetime, str]] = []
        self._trades: dict[tuple[datetime, str], RecentTrade] = {}

    def add(self, trade: RecentTrade) -> None:
        key = (trade.trade_time, trade.trade_id)
        if key not in self._trades:
            bisect.insort(self._keys, key)
        self._trades[key] = trade

    def discard(self, trade: RecentTrade) -> None:
        key = (trade.trade_time, trade.trade_id)
        if self._trades.pop(key, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, key)]

    def between(self, start: datetime, end: datetime) -> list[RecentTrade]:
        """Trades with ``start <= trade_time <= end``, in time order."""
        low = bisect.bisect_left(self._keys, (start, ""))
        found = []
        for key in self._keys[low:]:
            if key[0] > end:
                break
            found.append(self._trades[key])
        return found


class Ledger:
    """Running figures for one batch; ``put`` every state change in message order."""

    def __init__(
        self,
        *,
        states: Iterable[TradeState] = (),
        day_totals: Mapping[DayKey, Decimal] | None = None,
        exposures: Iterable[tuple[str, date, Decimal]] = (),
        recent: Iterable[tuple[str, str, RecentTrade]] = (),
        last_prices: Mapping[str, LastPrice] | None = None,
    ):
        self._states: dict[str, TradeState] = {}
        self._day: defaultdict[DayKey, Decimal] = defaultdict(Decimal)
        self._day.update(day_totals or {})
        self._exposure: defaultdict[str, defaultdict[date, Decimal]] = defaultdict(
            lambda: defaultdict(Decimal)
        )
        for counterparty, settle_date, amount in exposures:
            self._exposure[counterparty][settle_date] += amount
        self._recent: defaultdict[PairKey, _TimeIndex] = defaultdict(_TimeIndex)
        for account, instrument, trade in recent:
            self._recent[(account, instrument)].add(trade)
        self.last_prices: dict[str, LastPrice] = dict(last_prices or {})
        for state in states:
            self.put(state)

    def state(self, trade_id: str) -> TradeState | None:
        return self._states.get(trade_id)

    def put(self, state: TradeState) -> None:
        """Make ``state`` the trade's current state, replacing its previous contributions."""
        old = self._states.get(state.trade_id)
        if old is not None:
            self._apply(old, sign=-1)
        self._states[state.trade_id] = state
        self._apply(state, sign=1)

    def _apply(self, state: TradeState, *, sign: int) -> None:
        day = day_contribution(state)
        if day is not None:
            self._day[day[0]] += sign * day[1]
        exposure = exposure_contribution(state)
        if exposure is not None:
            counterparty, settle_date, amount = exposure
            self._exposure[counterparty][settle_date] += sign * amount
        entry = recent_entry(state)
        if entry is not None:
            pair = self._recent[entry[0]]
            if sign > 0:
                pair.add(entry[1])
            else:
                pair.discard(entry[1])

    def day_notional(self, trade_id: str, account: str, trade_date: date) -> Decimal:
        """The account's day notional on ``trade_date`` without any version of ``trade_id``."""
        total = self._day.get((account, trade_date), ZERO)
        own = self._states.get(trade_id)
        contribution = day_contribution(own) if own is not None else None
        if contribution is not None and contribution[0] == (account, trade_date):
            total -= contribution[1]
        return total

    def exposure(self, trade_id: str, counterparty: str, trade_date: date) -> Decimal:
        """The counterparty's unsettled in-force notional as of ``trade_date``, less ``trade_id``."""
        by_date: Mapping[date, Decimal] = self._exposure.get(counterparty, {})
        total = sum((v for d, v in by_date.items() if d >= trade_date), ZERO)
        own = self._states.get(trade_id)
        contribution = exposure_contribution(own) if own is not None else None
        if (
            contribution is not None
            and contribution[0] == counterparty
            and contribution[1] >= trade_date
        ):
            total -= contribution[2]
        return total

    def recent(
        self, trade_id: str, account: str, instrument: str, around: datetime, window: timedelta
    ) -> tuple[RecentTrade, ...]:
        """Other trades of the account and instrument within ``window`` of ``around``."""
        index = self._recent.get((account, instrument))
        if index is None:
            return ()
        found = index.between(around - window, around + window)
        return tuple(t for t in found if t.trade_id != trade_id)

    def last_price(self, instrument: str, currency: str) -> Decimal | None:
        """The reference price, when it is quoted in the trade's currency."""
        last = self.last_prices.get(instrument)
        return last.price if last is not None and last.currency == currency else None

    def price_seen(self, instrument: str, price: LastPrice) -> bool:
        """Record a passed trade's price if it is at least as recent as the one held."""
        held = self.last_prices.get(instrument)
        if held is not None and held.as_of > price.as_of:
            return False
        self.last_prices[instrument] = price
        return True
