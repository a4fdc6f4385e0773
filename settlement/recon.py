"""Custodian reconciliation: internal books vs the custodian statement for one as-of date (pure).

Each (account, instrument) position and (account, currency) cash balance yields at most one
finding, classified in this order (``difference = internal - custodian``, a missing line counts
as zero; a side with no line at all is *missing*, a line with zero is not):

1. ``|difference| <= tolerance``: quantities agree. For positions, then VALUATION if both
   values are known and ``|internal_value - custodian_value| > valuation_rel x
   |custodian_value|``; otherwise no finding.
2. TIMING: the difference is explained — to within the same tolerance — by movements pending
   settlement for that key with ``settle_date <= as_of + timing_lag_days`` (calendar days; late
   instructions whose settle date has passed still count). Internal books are trade-date, the
   custodian is settle-date, so ``internal - custodian == sum(pending)`` when nothing is wrong.
3. MISSING_INTERNAL / MISSING_CUSTODIAN when that side has no line at all.
4. QUANTITY (positions) or CASH (cash balances).

Tolerances are per asset class (``InstrumentRef.asset_class``; cash lines use the class
``"CASH"``), absolute for quantities and cash, relative for valuation, and inclusive: a
difference exactly at the tolerance is not a break. A finding's ``amount`` is its difference in
currency (x the reference price for positions; omitted when no price is known), booked with
``quantize_money``.

Identity: ``(as_of, account, instrument_or_currency, category)`` — at most one finding per key
per run, and the same inputs always give the same findings, so re-running an as-of date is an
idempotent upsert for the database layer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from backoffice.money import quantize_money
from settlement.netting import Instruction

ZERO = Decimal(0)
CASH_ASSET_CLASS = "CASH"
_L = TypeVar("_L")


class BreakCategory(StrEnum):
    QUANTITY = "QUANTITY"
    CASH = "CASH"
    MISSING_INTERNAL = "MISSING_INTERNAL"
    MISSING_CUSTODIAN = "MISSING_CUSTODIAN"
    VALUATION = "VALUATION"
    TIMING = "TIMING"


@dataclass(frozen=True)
class InstrumentRef:
    instrument: str
    asset_class: str
    currency: str
    price: Decimal | None = None  # as-of price in ``currency``; None when unpriced


@dataclass(frozen=True)
class PositionLine:
    account: str
    instrument: str
    quantity: Decimal
    # Custodian: its reported market value. Internal: optional; quantity x price when None.
    market_value: Decimal | None = None


@dataclass(frozen=True)
class CashLine:
    account: str
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class Holdings:
    """One side of the reconciliation (internal books or custodian statement) for a date."""

    as_of: date
    positions: Sequence[PositionLine] = ()
    cash: Sequence[CashLine] = ()


@dataclass(frozen=True)
class PendingMovement:
    """A not-yet-settled movement: its signed effect on the custodian holding once settled."""

    account: str
    asset: str  # instrument id, or currency code for cash
    settle_date: date
    amount: Decimal  # + arrives (receive), - leaves (deliver / pay)


@dataclass(frozen=True)
class Tolerance:
    quantity_abs: Decimal = ZERO
    cash_abs: Decimal = ZERO
    valuation_rel: Decimal = ZERO


@dataclass(frozen=True)
class Tolerances:
    by_asset_class: Mapping[str, Tolerance] = field(default_factory=dict)
    default: Tolerance = Tolerance()

    def for_class(self, asset_class: str | None) -> Tolerance:
        """The class's tolerance, or ``default`` for an unknown or unconfigured class."""
        if asset_class is None:
            return self.default
        return self.by_asset_class.get(asset_class, self.default)


@dataclass(frozen=True, order=True)
class BreakKey:
    as_of: date
    account: str
    instrument_or_currency: str
    category: BreakCategory


@dataclass(frozen=True)
class BreakFinding:
    as_of: date
    account: str
    instrument_or_currency: str
    category: BreakCategory
    internal_value: Decimal | None  # None: no internal line
    custodian_value: Decimal | None  # None: no custodian line
    difference: Decimal  # internal - custodian (a missing side counts as zero)
    amount: Decimal | None  # currency value of the difference; None when unpriced
    amount_currency: str | None

    @property
    def key(self) -> BreakKey:
        return BreakKey(self.as_of, self.account, self.instrument_or_currency, self.category)


def movements_from_instructions(instructions: Iterable[Instruction]) -> list[PendingMovement]:
    """Pending movements implied by unsettled instructions (pass only pending ones).

    Guarantee: one securities movement (``+net_quantity`` on the instrument) and one cash
    movement (``+net_cash`` on the currency) per instruction, each only when non-zero — the
    netting sign convention is already the custodian-holding effect.
    """
    out = []
    for ins in instructions:
        key = ins.key
        if ins.net_quantity:
            out.append(
                PendingMovement(key.account, key.instrument, key.settle_date, ins.net_quantity)
            )
        if ins.net_cash:
            out.append(PendingMovement(key.account, key.currency, key.settle_date, ins.net_cash))
    return out


def _index(lines: Iterable[_L], key: Callable[[_L], tuple[str, str]]) -> dict[tuple[str, str], _L]:
    out: dict[tuple[str, str], _L] = {}
    for line in lines:
        k = key(line)
        if k in out:
            raise ValueError(f"duplicate line for {k}: aggregate the statement first")
        out[k] = line
    return out


def _position_key(line: PositionLine) -> tuple[str, str]:
    return line.account, line.instrument


def _cash_key(line: CashLine) -> tuple[str, str]:
    return line.account, line.currency


def _classify(
    internal: Decimal | None, custodian: Decimal | None, tolerance: Decimal, pending: Decimal
) -> BreakCategory | None:
    """Category of a quantity/cash difference, or None when it is within tolerance."""
    difference = (internal or ZERO) - (custodian or ZERO)
    if abs(difference) <= tolerance:
        return None
    if pending != ZERO and abs(difference - pending) <= tolerance:
        return BreakCategory.TIMING
    if internal is None:
        return BreakCategory.MISSING_INTERNAL
    if custodian is None:
        return BreakCategory.MISSING_CUSTODIAN
    return BreakCategory.QUANTITY


def _valuation_break(
    internal: PositionLine, custodian: PositionLine, ref: InstrumentRef | None, rel: Decimal
) -> tuple[Decimal, Decimal] | None:
    """(internal value, custodian value) when they differ by more than ``rel``, else None."""
    internal_value = internal.market_value
    if internal_value is None and ref is not None and ref.price is not None:
        internal_value = quantize_money(internal.quantity * ref.price, ref.currency)
    custodian_value = custodian.market_value
    if internal_value is None or custodian_value is None:
        return None
    if abs(internal_value - custodian_value) <= rel * abs(custodian_value):
        return None
    return internal_value, custodian_value


def _position_finding(
    as_of: date,
    account: str,
    instrument: str,
    lines: tuple[PositionLine | None, PositionLine | None],
    ref: InstrumentRef | None,
    tolerance: Tolerance,
    pending: Decimal,
) -> BreakFinding | None:
    internal, custodian = lines
    iq = internal.quantity if internal is not None else None
    cq = custodian.quantity if custodian is not None else None
    category = _classify(iq, cq, tolerance.quantity_abs, pending)
    currency = ref.currency if ref is not None else None
    if category is None:
        if internal is None or custodian is None:
            return None
        values = _valuation_break(internal, custodian, ref, tolerance.valuation_rel)
        if values is None:
            return None
        iv, cv = values
        diff = iv - cv
        amount = quantize_money(diff, currency) if currency is not None else None
        return BreakFinding(
            as_of, account, instrument, BreakCategory.VALUATION, iv, cv, diff, amount, currency
        )
    diff = (iq or ZERO) - (cq or ZERO)
    amount = None
    if ref is not None and ref.price is not None:
        amount = quantize_money(diff * ref.price, ref.currency)
    return BreakFinding(
        as_of,
        account,
        instrument,
        category,
        iq,
        cq,
        diff,
        amount,
        currency if amount is not None else None,
    )


def _cash_finding(
    as_of: date,
    account: str,
    currency: str,
    lines: tuple[CashLine | None, CashLine | None],
    tolerance: Tolerance,
    pending: Decimal,
) -> BreakFinding | None:
    internal, custodian = lines
    ia = internal.amount if internal is not None else None
    ca = custodian.amount if custodian is not None else None
    category = _classify(ia, ca, tolerance.cash_abs, pending)
    if category is None:
        return None
    if category is BreakCategory.QUANTITY:
        category = BreakCategory.CASH
    diff = (ia or ZERO) - (ca or ZERO)
    amount = quantize_money(diff, currency)
    return BreakFinding(as_of, account, currency, category, ia, ca, diff, amount, currency)


def _pending_by_key(
    pending: Iterable[PendingMovement], as_of: date, lag_days: int
) -> dict[tuple[str, str], Decimal]:
    horizon = as_of + timedelta(days=lag_days)
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for move in pending:
        if move.settle_date <= horizon:
            totals[move.account, move.asset] += move.amount
    return totals


def reconcile(
    internal: Holdings,
    custodian: Holdings,
    instruments: Mapping[str, InstrumentRef],
    tolerances: Tolerances,
    pending: Iterable[PendingMovement] = (),
    timing_lag_days: int = 3,
) -> list[BreakFinding]:
    """Compare internal holdings with the custodian statement for one as-of date.

    Guarantee: at most one finding per (account, instrument) and per (account, currency),
    classified as in the module docstring; output sorted by ``BreakKey`` and a pure function of
    the inputs, so re-running is idempotent. Both sides must be for the same date; duplicate
    lines on one side are refused. An instrument without reference data uses the default
    tolerance and gets no ``amount``.
    """
    if internal.as_of != custodian.as_of:
        raise ValueError(f"as-of mismatch: internal {internal.as_of}, custodian {custodian.as_of}")
    as_of = internal.as_of
    moves = _pending_by_key(pending, as_of, timing_lag_days)
    findings: list[BreakFinding] = []
    ip = _index(internal.positions, _position_key)
    cp = _index(custodian.positions, _position_key)
    for account, instrument in sorted(ip.keys() | cp.keys()):
        ref = instruments.get(instrument)
        tol = tolerances.for_class(ref.asset_class if ref is not None else None)
        pair = (ip.get((account, instrument)), cp.get((account, instrument)))
        move = moves.get((account, instrument), ZERO)
        finding = _position_finding(as_of, account, instrument, pair, ref, tol, move)
        findings.extend([finding] if finding is not None else [])
    ic = _index(internal.cash, _cash_key)
    cc = _index(custodian.cash, _cash_key)
    cash_tol = tolerances.for_class(CASH_ASSET_CLASS)
    for account, currency in sorted(ic.keys() | cc.keys()):
        pair_c = (ic.get((account, currency)), cc.get((account, currency)))
        move = moves.get((account, currency), ZERO)
        finding = _cash_finding(as_of, account, currency, pair_c, cash_tol, move)
        findings.extend([finding] if finding is not None else [])
    return sorted(findings, key=lambda f: f.key)


def auto_resolved(
    previous_open_keys: Iterable[BreakKey],
    new_findings: Iterable[BreakFinding],
    as_of: date | None = None,
) -> list[BreakKey]:
    """Open break keys that the new run no longer reports: they resolve themselves.

    A break is identified across days by (account, instrument_or_currency, category), so a
    break open since yesterday that today's run still finds stays open, and one that changed
    category (e.g. QUANTITY to TIMING) resolves while the new one opens. Guarantee: returns the
    previous keys (sorted) with no matching new finding; when ``as_of`` is given, keys dated
    after it are never resolved (re-running an old date leaves newer breaks alone). Pass only
    keys within the run's scope (the accounts this statement covers).
    """
    still_open = {(f.account, f.instrument_or_currency, f.category) for f in new_findings}
    return sorted(
        k
        for k in set(previous_open_keys)
        if (as_of is None or k.as_of <= as_of)
        and (k.account, k.instrument_or_currency, k.category) not in still_open
    )
