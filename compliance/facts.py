"""From a captured trade payload to the rules' ``TradeFacts`` (pure: no Django, no I/O).

The stage loads reference data once per batch into a :class:`Reference` and calls
:func:`trade_facts` per message. Notional is the captured gross amount (quantity x price as
capture booked it, unsigned) in the trade currency; ``notional_base`` converts it into
:data:`BASE_CURRENCY` with the latest FX rate on or before the trade date, at full precision
(it is compared with limits, never booked, so it is not rounded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from backoffice.money import RATE_PLACES, quantize_places
from compliance.rules import TradeFacts
from trades.calendar import CalendarNotCoveredError, MarketCalendar

# Every limit, daily total, credit limit and exposure is in this currency: counterparty credit
# limits are on file in USD, so USD is the one currency they can all be compared in.
BASE_CURRENCY = "USD"

UNKNOWN_INSTRUMENT = "UnknownInstrument"
UNKNOWN_MARKET = "UnknownMarket"
FX_RATE_MISSING = "FxRateMissing"
UNCOVERED_DATE = "CalendarNotCovered"  # reason: trades.calendar.CALENDAR_NOT_COVERED

UNKNOWN_INSTRUMENT_REASON = "instrument {isin} is not in the reference data"
UNKNOWN_MARKET_REASON = "market {mic} of instrument {isin} has no settlement calendar"
FX_RATE_MISSING_REASON = (
    "no FX rate {currency}/{base} (or {base}/{currency}) on or before {as_of} to convert "
    "the notional into {base}"
)


class FactsError(Exception):
    """The payload names reference data the stage cannot resolve; the message is dead-lettered."""

    def __init__(self, error_class: str, reason: str):
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


@dataclass(frozen=True)
class Reference:
    """The reference data one batch needs, as plain lookups.

    ``fx`` maps each trade date of the batch to every pair's latest rate on or before it,
    keyed ``(base, quote)``; ``credit_limits`` are in :data:`BASE_CURRENCY`.
    """

    instrument_status: Mapping[str, str]
    calendars: Mapping[str, MarketCalendar]
    credit_limits: Mapping[str, Decimal]
    fx: Mapping[date, Mapping[tuple[str, str], Decimal]]


def base_rate(
    rates: Mapping[tuple[str, str], Decimal], currency: str, as_of: date, base: str = BASE_CURRENCY
) -> Decimal:
    """Units of ``base`` per unit of ``currency``: the direct pair, else the reverse pair's
    reciprocal rounded to the rate scale (as ``trades.selectors.fx_rate`` does)."""
    if currency == base:
        return Decimal(1)
    direct = rates.get((currency, base))
    if direct is not None:
        return direct
    inverse = rates.get((base, currency))
    if inverse is not None and inverse > 0:
        return quantize_places(Decimal(1) / inverse, RATE_PLACES)
    raise FactsError(
        FX_RATE_MISSING,
        FX_RATE_MISSING_REASON.format(currency=currency, base=base, as_of=as_of.isoformat()),
    )


def parse_time(text: str) -> datetime:
    """An ISO-8601 UTC timestamp from the wire (``Z`` or ``+00:00``), timezone-aware."""
    return datetime.fromisoformat(text)


def notional(payload: Mapping[str, Any]) -> Decimal:
    """The trade's gross notional in its own currency, unsigned."""
    return abs(Decimal(payload["gross_amount"]))


def notional_base(payload: Mapping[str, Any], reference: Reference) -> Decimal:
    """The gross notional converted into :data:`BASE_CURRENCY`; raises ``FactsError``."""
    trade_date = date.fromisoformat(payload["trade_date"])
    rates = reference.fx.get(trade_date, {})
    return notional(payload) * base_rate(rates, payload["currency"], trade_date)


def trade_facts(payload: Mapping[str, Any], reference: Reference) -> TradeFacts:
    """Everything the rules need about one captured version; raises ``FactsError`` when the
    instrument, its market's calendar or the FX rate is unknown, or when the settle date is
    outside the holidays loaded for that calendar."""
    isin = payload["instrument"]
    status = reference.instrument_status.get(isin)
    if status is None:
        raise FactsError(UNKNOWN_INSTRUMENT, UNKNOWN_INSTRUMENT_REASON.format(isin=isin))
    calendar = reference.calendars.get(payload["market"])
    if calendar is None:
        raise FactsError(
            UNKNOWN_MARKET, UNKNOWN_MARKET_REASON.format(mic=payload["market"], isin=isin)
        )
    settle_date = date.fromisoformat(payload["settle_date"])
    try:
        settle_date_is_business_day = calendar.is_business_day(settle_date)
    except CalendarNotCoveredError as error:
        # Refused like unknown reference data: the fix is loading holidays, not a retry.
        raise FactsError(UNCOVERED_DATE, str(error)) from None
    return TradeFacts(
        trade_id=payload["trade_id"],
        trade_version=payload["trade_version"],
        action=payload["action"],
        account=payload["account"],
        book=payload["book"],
        counterparty=payload["counterparty"],
        instrument=isin,
        instrument_status=status,
        side=payload["side"],
        quantity=Decimal(payload["quantity"]),
        price=Decimal(payload["price"]),
        currency=payload["currency"],
        notional=notional(payload),
        base_currency=BASE_CURRENCY,
        notional_base=notional_base(payload, reference),
        trade_time=parse_time(payload["trade_time"]),
        trade_date=date.fromisoformat(payload["trade_date"]),
        settle_date=settle_date,
        settle_date_is_business_day=settle_date_is_business_day,
    )
