"""The custodian simulator's decisions (pure: no Django, no I/O).

Every random choice is a draw from ``sha256(seed | purpose | identity)``, so the same seed gives
the same matching, settlement outcomes and statement discrepancies whatever order or how many
times the simulator sees its inputs — a restart answers exactly as before.

Outcomes on a business date ``day`` for an instruction due (settle date on or before ``day``):

* never matched (SSI mismatch) -> FAILED ``SSI_MISMATCH`` the first time it is due, then nothing
  until it is replaced;
* first attempt -> FAILED (``INSUFFICIENT_SECURITIES`` when the account delivers, else
  ``INSUFFICIENT_CASH``) with probability ``fail``, PARTIALLY_SETTLED with ``partial`` (a whole
  ``partial_fraction`` of the quantity, cash pro rata, booked half-even), else SETTLED;
* a later day for a FAILED or PARTIALLY_SETTLED one -> SETTLED (the remainder) with probability
  ``recovery``, else nothing new.

Statements: per account, the custodian's settled holdings as of the date, with discrepancies
injected at the configured share. A discrepancy is only injected where nothing pending could
explain it (no unsettled instruction touches that account and asset within the timing window),
so each one produces exactly one break of a known category:

=================  ====================================  =================
kind               what the statement shows               break category
=================  ====================================  =================
QUANTITY           a position off by 10 % (at least 1)    QUANTITY
DROPPED_POSITION   a held position left out               MISSING_CUSTODIAN
PRICE              a position valued 5 % too high         VALUATION
CASH               a cash balance off by 100 units        CASH
EXTRA_POSITION     100 of a security the books lack       MISSING_INTERNAL
EARLY_SETTLEMENT   a pending instruction already settled  TIMING (both legs)
=================  ====================================  =================
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from backoffice.money import quantize_money
from settlement.policy import SimulatorRates

ZERO = Decimal(0)
_SCALE = 16**15
PRICE_ERROR = Decimal("1.05")
QUANTITY_ERROR = Decimal("0.10")
CASH_ERROR = Decimal(100)
EXTRA_QUANTITY = Decimal(100)
NEAR = Decimal(1)  # margin kept between an injected difference and a pending explanation


class Outcome(StrEnum):
    SETTLED = "SETTLED"
    PARTIALLY_SETTLED = "PARTIALLY_SETTLED"
    FAILED = "FAILED"


class Reason(StrEnum):
    INSUFFICIENT_SECURITIES = "INSUFFICIENT_SECURITIES"
    INSUFFICIENT_CASH = "INSUFFICIENT_CASH"
    SSI_MISMATCH = "SSI_MISMATCH"


REASON_TEXT = {
    Reason.INSUFFICIENT_SECURITIES: "insufficient securities",
    Reason.INSUFFICIENT_CASH: "insufficient cash",
    Reason.SSI_MISMATCH: "SSI mismatch: the counterparty's instruction does not match",
}


def draw(seed: int, purpose: str, *identity: object) -> Decimal:
    """A uniform value in [0, 1) fixed by the seed, the purpose and the identity."""
    text = "|".join([str(seed), purpose, *map(str, identity)])
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Decimal(int(digest[:15], 16)) / Decimal(_SCALE)


def matches(seed: int, instruction_id: str, rates: SimulatorRates) -> bool:
    """Whether the counterparty's side matches the instruction (else: SSI mismatch)."""
    return draw(seed, "match", instruction_id) >= rates.ssi_mismatch


@dataclass(frozen=True)
class Held:
    """An instruction as the custodian holds it (signed amounts, account side)."""

    instruction_id: str
    account: str
    instrument: str
    currency: str
    settle_date: date
    net_quantity: Decimal
    net_cash: Decimal
    settled_quantity: Decimal = ZERO
    settled_cash: Decimal = ZERO
    matched: bool = True
    failed_before: bool = False  # a FAILED or PARTIALLY_SETTLED answer was already sent

    @property
    def remaining_quantity(self) -> Decimal:
        return self.net_quantity - self.settled_quantity

    @property
    def remaining_cash(self) -> Decimal:
        return self.net_cash - self.settled_cash


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    settled_quantity: Decimal  # cumulative, signed
    settled_cash: Decimal  # cumulative, signed
    reason: Reason | None = None


def decide(seed: int, held: Held, day: date, rates: SimulatorRates) -> Decision | None:
    """What happens to ``held`` on business date ``day``; ``None`` when nothing new happens."""
    if held.settle_date > day:
        return None
    if not held.matched:
        if held.failed_before:
            return None
        return Decision(
            Outcome.FAILED, held.settled_quantity, held.settled_cash, Reason.SSI_MISMATCH
        )
    full = Decision(Outcome.SETTLED, held.net_quantity, held.net_cash)
    if held.failed_before:
        return full if draw(seed, "recover", held.instruction_id, day) < rates.recovery else None
    roll = draw(seed, "settle", held.instruction_id)
    if roll < rates.fail:
        reason = (
            Reason.INSUFFICIENT_SECURITIES
            if held.net_quantity < ZERO
            else Reason.INSUFFICIENT_CASH
            if held.net_cash < ZERO
            else Reason.INSUFFICIENT_SECURITIES
        )
        return Decision(Outcome.FAILED, ZERO, ZERO, reason)
    if roll < rates.fail + rates.partial:
        return _partial(held, rates) or full
    return full


def _partial(held: Held, rates: SimulatorRates) -> Decision | None:
    whole = (abs(held.net_quantity) * rates.partial_fraction).to_integral_value(ROUND_FLOOR)
    if whole <= ZERO or whole >= abs(held.net_quantity):
        return None  # too small to split: it settles in full
    quantity = whole if held.net_quantity > ZERO else -whole
    cash = quantize_money(held.net_cash * quantity / held.net_quantity, held.currency)
    reason = (
        Reason.INSUFFICIENT_SECURITIES if held.net_quantity < ZERO else Reason.INSUFFICIENT_CASH
    )
    return Decision(Outcome.PARTIALLY_SETTLED, quantity, cash, reason)


# --- statements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecurityRef:
    currency: str
    unit_price: Decimal  # value of one unit of quantity
    asset_class: str


@dataclass(frozen=True)
class PositionLine:
    instrument: str
    quantity: Decimal
    unit_price: Decimal
    market_value: Decimal
    currency: str


@dataclass(frozen=True)
class CashLine:
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class Statement:
    as_of: date
    account: str
    positions: tuple[PositionLine, ...]
    cash: tuple[CashLine, ...]


@dataclass(frozen=True)
class Injection:
    account: str
    asset_type: str  # SECURITY or CASH
    asset: str
    kind: str
    expected_category: str
    detail: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pending:
    """An unsettled instruction's remainder, as the custodian holds it."""

    instruction_id: str
    account: str
    instrument: str
    currency: str
    settle_date: date
    quantity: Decimal  # signed remainder
    cash: Decimal  # signed remainder


Holdings = Mapping[tuple[str, str, str], Decimal]  # (account, SECURITY|CASH, asset) -> amount


@dataclass
class _Account:
    positions: dict[str, Decimal]
    cash: dict[str, Decimal]
    # Per (asset type, asset): the remainders of unsettled instructions due within the timing
    # window, and how many there are. An injected difference equal to that sum would read as
    # TIMING (the instructions settling early would explain it), so injections avoid it.
    pending: dict[tuple[str, str], Decimal]
    counts: dict[tuple[str, str], int]
    injections: list[Injection]
    prices: dict[str, Decimal] = field(default_factory=dict)

    def taken(self, asset: str) -> bool:
        return any(i.asset == asset for i in self.injections)

    def explains(self, kind: str, asset: str, difference: Decimal) -> bool:
        """Whether pending instructions could explain ``custodian - internal == difference``."""
        return abs(difference - self.pending.get((kind, asset), ZERO)) <= NEAR


def build_statements(
    *,
    as_of: date,
    accounts: Iterable[str],
    holdings: Holdings,
    pending: Sequence[Pending],
    securities: Mapping[str, SecurityRef],
    seed: int,
    rate: Decimal,
    timing_lag_days: int,
) -> tuple[list[Statement], list[Injection]]:
    """Statements for ``accounts`` as of ``as_of`` and the discrepancies injected into them.

    Guarantee: a pure function of its inputs (the same seed, date and holdings give the same
    statements and injections); at most one injection per (account, asset); each injection's
    ``expected_category`` is the only break its line can produce against books that agree
    with this ledger and hold the same pending instructions, as the module docstring says.
    """
    horizon = as_of + timedelta(days=timing_lag_days)
    in_window = [p for p in pending if p.settle_date <= horizon]
    books = {a: _Account({}, {}, defaultdict(Decimal), defaultdict(int), []) for a in set(accounts)}
    for (account, kind, asset), amount in holdings.items():
        if account in books and amount != ZERO:
            side = books[account].positions if kind == "SECURITY" else books[account].cash
            side[asset] = amount
    for move in in_window:
        book = books.get(move.account)
        if book is not None:
            for key, amount in (
                (("SECURITY", move.instrument), move.quantity),
                (
                    ("CASH", move.currency),
                    move.cash,
                ),
            ):
                book.pending[key] += amount
                book.counts[key] += 1
    statements, injections = [], []
    for account in sorted(books):
        book = books[account]
        _inject_lines(book, account, as_of, securities, seed, rate)
        if draw(seed, "extra", as_of, account) < rate:
            _extra_position(book, account, as_of, securities, seed)
        if draw(seed, "early", as_of, account) < rate:
            _early_settlement(book, account, as_of, in_window, seed)
        statements.append(_statement(as_of, account, book, securities))
        injections.extend(book.injections)
    return statements, injections


def _inject_lines(
    book: _Account,
    account: str,
    as_of: date,
    securities: Mapping[str, SecurityRef],
    seed: int,
    rate: Decimal,
) -> None:
    for isin in sorted(book.positions):
        if draw(seed, "line", as_of, account, isin) >= rate:
            continue
        choice = draw(seed, "kind", as_of, account, isin)
        if choice < Decimal(1) / 3:
            _misquantity(book, account, isin)
        elif choice < Decimal(2) / 3:
            if not book.explains("SECURITY", isin, -book.positions[isin]):
                book.injections.append(
                    _injection(account, isin, "DROPPED_POSITION", "MISSING_CUSTODIAN")
                )
                book.positions.pop(isin)
        else:
            # Quantities still agree, so nothing pending can explain it: always a VALUATION.
            book.prices[isin] = securities[isin].unit_price * PRICE_ERROR
            book.injections.append(_injection(account, isin, "PRICE", "VALUATION"))
    for ccy in sorted(book.cash):
        if draw(seed, "line", as_of, account, ccy) >= rate:
            continue
        delta = CASH_ERROR
        while book.explains("CASH", ccy, delta):
            delta += CASH_ERROR
        book.cash[ccy] += delta
        book.injections.append(
            Injection(account, "CASH", ccy, "CASH", "CASH", {"delta": str(delta)})
        )


def _injection(account: str, isin: str, kind: str, category: str, **detail: str) -> Injection:
    return Injection(account, "SECURITY", isin, kind, category, detail)


def _misquantity(book: _Account, account: str, isin: str) -> None:
    held = book.positions[isin]
    step = Decimal(1) if held > ZERO else Decimal(-1)  # away from zero: the line stays a holding
    delta = step * max(Decimal(1), (abs(held) * QUANTITY_ERROR).to_integral_value(ROUND_FLOOR))
    while book.explains("SECURITY", isin, delta):
        delta += step
    book.positions[isin] = held + delta
    book.injections.append(_injection(account, isin, "QUANTITY", "QUANTITY", delta=str(delta)))


def _extra_position(
    book: _Account, account: str, as_of: date, securities: Mapping[str, SecurityRef], seed: int
) -> None:
    free = [
        i
        for i in sorted(securities)
        if i not in book.positions
        and not book.taken(i)
        and not book.explains("SECURITY", i, EXTRA_QUANTITY)
    ]
    if not free:
        return
    isin = min(free, key=lambda i: draw(seed, "extra-pick", as_of, account, i))
    book.positions[isin] = EXTRA_QUANTITY
    book.injections.append(
        _injection(account, isin, "EXTRA_POSITION", "MISSING_INTERNAL", quantity="100")
    )


def _early_settlement(
    book: _Account, account: str, as_of: date, pending: Sequence[Pending], seed: int
) -> None:
    """Show one instruction due after ``as_of`` as already settled, where it alone explains it.

    Its securities leg always (it must be the only instruction pending on that instrument);
    its cash leg too when it is also the only one pending in that currency, since otherwise
    the cash difference would not be explained exactly and would read as a CASH break.
    """
    candidates = [
        p
        for p in pending
        if p.account == account
        and p.settle_date > as_of
        and p.quantity != ZERO
        and book.counts["SECURITY", p.instrument] == 1
        and not book.taken(p.instrument)
    ]
    if not candidates:
        return
    early = min(candidates, key=lambda p: draw(seed, "early-pick", as_of, p.instruction_id))
    detail = {"instruction_id": early.instruction_id}
    book.positions[early.instrument] = book.positions.get(early.instrument, ZERO) + early.quantity
    book.injections.append(
        _injection(account, early.instrument, "EARLY_SETTLEMENT", "TIMING", **detail)
    )
    ccy = early.currency
    if early.cash != ZERO and book.counts["CASH", ccy] == 1 and not book.taken(ccy):
        book.cash[ccy] = book.cash.get(ccy, ZERO) + early.cash
        book.injections.append(
            Injection(account, "CASH", ccy, "EARLY_SETTLEMENT", "TIMING", detail)
        )


def _statement(
    as_of: date, account: str, book: _Account, securities: Mapping[str, SecurityRef]
) -> Statement:
    positions = []
    for isin, quantity in sorted(book.positions.items()):
        if quantity == ZERO:
            continue
        ref = securities[isin]
        price = book.prices.get(isin, ref.unit_price)
        value = quantize_money(quantity * price, ref.currency)
        positions.append(PositionLine(isin, quantity, price, value, ref.currency))
    # The ledger sums at quantity scale; a statement states cash at the currency's minor units.
    cash = tuple(
        CashLine(c, quantize_money(a, c)) for c, a in sorted(book.cash.items()) if a != ZERO
    )
    return Statement(as_of, account, tuple(positions), cash)


def settle_increment(held: Held, decision: Decision) -> tuple[Decimal, Decimal]:
    """The signed (quantity, cash) this decision settles beyond what had settled before."""
    return (
        decision.settled_quantity - held.settled_quantity,
        decision.settled_cash - held.settled_cash,
    )


def after(held: Held, decision: Decision) -> Held:
    """``held`` once ``decision`` is applied."""
    return replace(
        held,
        settled_quantity=decision.settled_quantity,
        settled_cash=decision.settled_cash,
        failed_before=held.failed_before or decision.outcome is not Outcome.SETTLED,
    )
