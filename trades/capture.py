"""Capture's domain logic, pure: normalise and enrich an inbound trade, and decide its version.

No Django and no I/O: reference data comes in as plain dataclasses (``CaptureReference``), the
decision about a version comes from the trade's current head (``Head``).

Versioning rule (documented in docs/capture.md): the highest version wins. Amendments and
cancels carry the whole trade, so an AMEND that overtakes its NEW is captured, and the NEW that
arrives later is refused as stale. A version equal to the current one is a DUPLICATE when its
content is identical and a CONFLICT otherwise. Nothing follows a CANCEL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from backoffice.money import quantize_money
from trades.calendar import CalendarNotCoveredError, MarketCalendar

UNKNOWN_INSTRUMENT = "UnknownInstrument"
UNKNOWN_ACCOUNT = "UnknownAccount"
UNKNOWN_COUNTERPARTY = "UnknownCounterparty"
CURRENCY_MISMATCH = "CurrencyMismatch"
INACTIVE_ACCOUNT = "InactiveAccount"
BAD_DATES = "InvalidDates"
UNCOVERED_DATE = "CalendarNotCovered"  # reason: trades.calendar.CALENDAR_NOT_COVERED


class CaptureRejected(Exception):
    """The trade cannot be captured at all; it goes to the dead-letter topic with this reason."""

    def __init__(self, error_class: str, reason: str):
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


@dataclass(frozen=True)
class InstrumentRef:
    isin: str
    symbol: str
    currency: str
    asset_class: str
    csdr_class: str
    market: str
    status: str


@dataclass(frozen=True)
class AccountRef:
    code: str
    book: str
    book_base_currency: str
    pnl_method: str
    status: str


@dataclass(frozen=True)
class SsiRef:
    payment_type: str
    custodian_bic: str
    safekeeping_account: str
    cash_account: str


@dataclass(frozen=True)
class CaptureReference:
    instruments: Mapping[str, InstrumentRef]
    accounts: Mapping[str, AccountRef]
    counterparties: frozenset[str]
    ssis: Mapping[tuple[str, str, str], SsiRef]  # (counterparty, market MIC, currency)
    calendars: Mapping[str, MarketCalendar]  # by market MIC


@dataclass(frozen=True)
class EnrichedTrade:
    trade_id: str
    trade_version: int
    action: str
    account: str
    book: str
    book_base_currency: str
    pnl_method: str
    counterparty: str
    instrument: str
    symbol: str
    asset_class: str
    csdr_class: str
    market: str
    side: str
    quantity: Decimal
    price: Decimal
    currency: str
    gross_amount: Decimal
    fees: Decimal
    net_amount: Decimal
    trade_date: date
    trade_time: datetime
    settle_date: date
    settle_date_computed: bool
    venue: str
    trader: str
    payment_type: str
    ssi: SsiRef | None
    input_hash: str


def input_hash(payload: Mapping[str, Any]) -> str:
    """A fingerprint of the inbound content: equal for an exact redelivery of a version."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def enrich(payload: Mapping[str, Any], ref: CaptureReference) -> EnrichedTrade:
    """Normalise and enrich a schema-valid ``trades.executed`` payload, or raise CaptureRejected.

    Consideration: gross = quantity x price in the trade currency (bond prices are per 100
    nominal and quantities in units of 100, so the same formula holds); net = gross + fees for a
    buy (the buyer pays them) and gross - fees for a sell. Amounts are quantised to the currency's
    minor units here, where they become booked figures.
    """
    instrument = ref.instruments.get(payload["instrument"])
    if instrument is None:
        raise CaptureRejected(UNKNOWN_INSTRUMENT, f"unknown instrument {payload['instrument']!r}")
    account = ref.accounts.get(payload["account"])
    if account is None:
        raise CaptureRejected(UNKNOWN_ACCOUNT, f"unknown account {payload['account']!r}")
    if account.status == "CLOSED":
        raise CaptureRejected(INACTIVE_ACCOUNT, f"account {account.code} is closed")
    if payload["counterparty"] not in ref.counterparties:
        raise CaptureRejected(
            UNKNOWN_COUNTERPARTY, f"unknown counterparty {payload['counterparty']!r}"
        )
    currency = payload["currency"]
    if currency != instrument.currency:
        raise CaptureRejected(
            CURRENCY_MISMATCH,
            f"trade currency {currency} differs from {instrument.isin}'s currency {instrument.currency}",
        )
    trade_date, trade_time = _dates(payload)
    settle_date, computed = _settle_date(payload, instrument, trade_date, ref)
    quantity, price = Decimal(payload["quantity"]), Decimal(payload["price"])
    fees = quantize_money(Decimal(payload.get("fees", "0")), currency)
    gross = quantize_money(quantity * price, currency)
    net = gross + fees if payload["side"] == "BUY" else gross - fees
    ssi = ref.ssis.get((payload["counterparty"], instrument.market, currency))
    return EnrichedTrade(
        trade_id=payload["trade_id"],
        trade_version=payload["trade_version"],
        action=payload["action"],
        account=account.code,
        book=account.book,
        book_base_currency=account.book_base_currency,
        pnl_method=account.pnl_method,
        counterparty=payload["counterparty"],
        instrument=instrument.isin,
        symbol=instrument.symbol,
        asset_class=instrument.asset_class,
        csdr_class=instrument.csdr_class,
        market=instrument.market,
        side=payload["side"],
        quantity=quantity,
        price=price,
        currency=currency,
        gross_amount=gross,
        fees=fees,
        net_amount=net,
        trade_date=trade_date,
        trade_time=trade_time,
        settle_date=settle_date,
        settle_date_computed=computed,
        venue=payload["venue"],
        trader=payload["trader"],
        payment_type=ssi.payment_type if ssi else "DVP",
        ssi=ssi,
        input_hash=input_hash(payload),
    )


def _dates(payload: Mapping[str, Any]) -> tuple[date, datetime]:
    try:
        trade_date = date.fromisoformat(payload["trade_date"])
        trade_time = datetime.fromisoformat(payload["trade_time"].replace("Z", "+00:00"))
    except ValueError as error:
        raise CaptureRejected(BAD_DATES, f"invalid trade date or time: {error}") from None
    if trade_time.date() != trade_date:
        raise CaptureRejected(
            BAD_DATES,
            f"trade_time {payload['trade_time']} is not on trade_date {payload['trade_date']}",
        )
    return trade_date, trade_time


def _settle_date(
    payload: Mapping[str, Any], instrument: InstrumentRef, trade_date: date, ref: CaptureReference
) -> tuple[date, bool]:
    given = payload.get("settle_date")
    if given is not None:
        try:
            settle = date.fromisoformat(given)
        except ValueError as error:
            raise CaptureRejected(BAD_DATES, f"invalid settle_date: {error}") from None
        if settle < trade_date:
            raise CaptureRejected(
                BAD_DATES, f"settle_date {given} is before trade_date {trade_date}"
            )
        return settle, False
    calendar = ref.calendars.get(instrument.market)
    if calendar is None:
        raise CaptureRejected(BAD_DATES, f"no settlement calendar for market {instrument.market}")
    try:
        return calendar.settlement_date(trade_date), True
    except CalendarNotCoveredError as error:
        # Past the loaded holidays T+N is unknown; a guessed date would settle on a holiday.
        raise CaptureRejected(UNCOVERED_DATE, str(error)) from None


class Decision(StrEnum):
    APPLY = "APPLY"
    DUPLICATE = "DUPLICATE"
    STALE = "STALE"
    CONFLICT = "CONFLICT"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Head:
    """What capture holds for a trade: its current version, status and that version's hash."""

    version: int
    cancelled: bool
    current_hash: str


def decide(
    head: Head | None, trade: EnrichedTrade, known_hashes: Mapping[int, str]
) -> tuple[Decision, str]:
    """Whether ``trade`` becomes the trade's current version, and if not, why (a sentence).

    ``known_hashes`` maps versions already captured for this trade to their input hashes, so an
    exact redelivery of an older version is told apart from a stale one.
    """
    version = trade.trade_version
    if head is None:
        return Decision.APPLY, ""
    if version <= head.version and known_hashes.get(version) == trade.input_hash:
        return Decision.DUPLICATE, f"version {version} was already captured with identical content"
    if version == head.version:
        return Decision.CONFLICT, f"version {version} was already captured with different content"
    if version < head.version:
        return Decision.STALE, f"version {version} is older than the current version {head.version}"
    if head.cancelled:
        return Decision.CANCELLED, f"the trade was cancelled at version {head.version}"
    return Decision.APPLY, ""
