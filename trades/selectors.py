"""Reads of reference data that every stage shares, built for speed.

A stage loads a ``ReferenceSnapshot`` once (a handful of queries) and then resolves ISINs, account
codes and SSIs from plain dicts, so per-trade work never touches the database for reference data.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import TypeVar, cast

from django.conf import settings
from django.db import connection
from django.db.models import Subquery

from backoffice.money import RATE_PLACES, quantize_places
from core import clock
from trades.calendar import NO_COVERAGE, CalendarNotCoveredError, Coverage, MarketCalendar
from trades.capture import AccountRef, CaptureReference, Head, InstrumentRef, SsiRef
from trades.models import (
    Account,
    CalendarCoverage,
    Counterparty,
    FxRate,
    Holiday,
    Instrument,
    Market,
    StandingSettlementInstruction,
    TradeVersion,
)

UNKNOWN_CALENDAR = "unknown calendar {code!r}: no market uses it"
AMBIGUOUS_CALENDAR = (
    "calendar {code!r} is used by markets with different settlement cycles {cycles}"
)
BUSINESS_DATE_WITHOUT_HOLIDAYS = "the business date counts weekends only: %s"
FX_RATE_MISSING = "no FX rate for {base}/{quote} (or {quote}/{base}) on or before {as_of}"

log = logging.getLogger(__name__)

SsiKey = tuple[str, str, str]  # (counterparty code, market MIC, currency)


class UnknownCalendarError(LookupError):
    """No market settles on the requested calendar code."""


class FxRateMissingError(LookupError):
    """Neither the pair nor its inverse has a rate on or before the requested date."""


@dataclass(frozen=True)
class ReferenceSnapshot:
    """Reference data at one moment, as read-only dicts of model instances.

    Instruments come with their market, accounts with their book and SSIs with their counterparty
    and market already joined, so reading an attribute never issues a query. ``calendars`` holds
    each market's settlement calendar by MIC.
    """

    markets: Mapping[str, Market]
    instruments: Mapping[str, Instrument]
    accounts: Mapping[str, Account]
    counterparties: Mapping[str, Counterparty]
    ssis: Mapping[SsiKey, StandingSettlementInstruction]
    calendars: Mapping[str, MarketCalendar]


_cache: dict[str, tuple[tuple[object, ...], object]] = {}
T = TypeVar("T")


def reference_cached(name: str, build: Callable[[], T]) -> T:
    """``build()``, kept per process until reference data changes (one query to check).

    Keyed by the database and its committed reference version (``trades_reference_version``,
    set anew by every statement that writes a reference table; see migration 0005). The version
    is read before ``build`` reads the data, so a cached value is never older than its key says.
    """
    db = connection.settings_dict
    with connection.cursor() as cursor:
        cursor.execute("SELECT version FROM trades_reference_version")
        row = cursor.fetchone()
    key = (db["NAME"], db["HOST"], db["PORT"], row[0] if row else None)
    held = _cache.get(name)
    if held is not None and held[0] == key and row is not None:
        return cast(T, held[1])
    value = build()
    _cache[name] = (key, value)
    return value


def reference_cache_clear() -> None:
    _cache.clear()


def reference_snapshot() -> ReferenceSnapshot:
    """All reference data indexed by natural key: read-only, shared by every caller in the
    process until the data changes (``reference_cached``)."""
    return reference_cached("snapshot", _load_snapshot)


def _load_snapshot() -> ReferenceSnapshot:
    """Load all reference data in seven queries and index it by natural key.

    Each calendar carries its loaded coverage, so a date past its holidays is refused
    (``CalendarNotCoveredError``) instead of treated as open; a calendar with no coverage row
    refuses every date.
    """
    markets = {m.mic: m for m in Market.objects.all()}
    instruments = {i.isin: i for i in Instrument.objects.select_related("market")}
    accounts = {a.code: a for a in Account.objects.select_related("book")}
    counterparties = {c.code: c for c in Counterparty.objects.all()}
    ssis = {
        (s.counterparty.code, s.market.mic, s.currency): s
        for s in StandingSettlementInstruction.objects.select_related("counterparty", "market")
    }
    holidays = _holidays_by_calendar()
    coverage = _coverage_by_calendar()
    calendars = {
        mic: MarketCalendar(
            market.calendar_code,
            holidays.get(market.calendar_code, frozenset()),
            settlement_cycle=market.settlement_cycle,
            covers=coverage.get(market.calendar_code, NO_COVERAGE),
        )
        for mic, market in markets.items()
    }
    return ReferenceSnapshot(
        markets=MappingProxyType(markets),
        instruments=MappingProxyType(instruments),
        accounts=MappingProxyType(accounts),
        counterparties=MappingProxyType(counterparties),
        ssis=MappingProxyType(ssis),
        calendars=MappingProxyType(calendars),
    )


def _holidays_by_calendar() -> dict[str, frozenset[date]]:
    found: defaultdict[str, set[date]] = defaultdict(set)
    for code, day in Holiday.objects.values_list("calendar_code", "date"):
        found[code].add(day)
    return {code: frozenset(days) for code, days in found.items()}


def _coverage_by_calendar() -> dict[str, Coverage]:
    return {
        code: (first, last)
        for code, first, last in CalendarCoverage.objects.values_list(
            "calendar_code", "first_day", "last_day"
        )
    }


def market_calendar(calendar_code: str) -> MarketCalendar:
    """The settlement calendar ``calendar_code`` with its holidays and its markets' T+N cycle.

    Raises ``UnknownCalendarError`` when no market uses the code, or when the markets that share
    it disagree on the settlement cycle (the calendar alone could not say which T+N applies).
    The calendar refuses dates outside its loaded coverage (``CalendarNotCoveredError``), and
    every date when it has none.
    """
    # The coverage rides on the markets query (still two queries): every page asks for the
    # business calendar through here.
    window = CalendarCoverage.objects.filter(calendar_code=calendar_code)
    rows = set(
        Market.objects.filter(calendar_code=calendar_code)
        .annotate(
            first_day=Subquery(window.values("first_day")),
            last_day=Subquery(window.values("last_day")),
        )
        .values_list("settlement_cycle", "first_day", "last_day")
    )
    cycles = sorted({cycle for cycle, _, _ in rows})
    if not cycles:
        raise UnknownCalendarError(UNKNOWN_CALENDAR.format(code=calendar_code))
    if len(cycles) > 1:
        raise UnknownCalendarError(AMBIGUOUS_CALENDAR.format(code=calendar_code, cycles=cycles))
    holidays = frozenset(
        Holiday.objects.filter(calendar_code=calendar_code).values_list("date", flat=True)
    )
    _, first, last = next(iter(rows))
    covers: Coverage | tuple[()] = NO_COVERAGE if first is None else (first, last)
    return MarketCalendar(calendar_code, holidays, settlement_cycle=cycles[0], covers=covers)


def fx_rate(base: str, quote: str, as_of: date) -> Decimal:
    """Units of ``quote`` per unit of ``base``: the latest rate on or before ``as_of``.

    Same currency is exactly 1. When only the reverse pair is stored, its reciprocal is returned,
    rounded to the rate scale (10 places, half even). Raises ``FxRateMissingError`` when neither
    direction has a rate on or before ``as_of``; rates are never extrapolated backwards.
    """
    if base == quote:
        return Decimal(1)
    direct = _latest(base, quote, as_of)
    if direct is not None:
        return direct
    inverse = _latest(quote, base, as_of)
    if inverse is not None:
        return quantize_places(Decimal(1) / inverse, RATE_PLACES)
    raise FxRateMissingError(FX_RATE_MISSING.format(base=base, quote=quote, as_of=as_of))


def _latest(base: str, quote: str, as_of: date) -> Decimal | None:
    return (
        FxRate.objects.filter(base_currency=base, quote_currency=quote, as_of__lte=as_of)
        .order_by("-as_of")
        .values_list("rate", flat=True)
        .first()
    )


def fx_rates_on(as_of: date) -> Mapping[tuple[str, str], Decimal]:
    """Every stored pair's latest rate on or before ``as_of`` (one query), keyed (base, quote).

    For batch conversion: look a pair up directly, or take ``1 / rate`` of the reverse pair.
    """
    rows = (
        FxRate.objects.filter(as_of__lte=as_of)
        .order_by("base_currency", "quote_currency", "-as_of")
        .distinct("base_currency", "quote_currency")
        .values_list("base_currency", "quote_currency", "rate")
    )
    return MappingProxyType({(base, quote): rate for base, quote, rate in rows})


def capture_reference() -> CaptureReference:
    """Reference data as capture's plain dataclasses (built from one ``reference_snapshot``;
    cached like it)."""
    return reference_cached("capture", _capture_reference)


def _capture_reference() -> CaptureReference:
    snapshot = reference_snapshot()
    return CaptureReference(
        instruments={
            isin: InstrumentRef(
                isin=isin,
                symbol=i.symbol,
                currency=i.currency,
                asset_class=i.asset_class,
                csdr_class=i.csdr_class,
                market=i.market.mic,
                status=i.status,
            )
            for isin, i in snapshot.instruments.items()
        },
        accounts={
            code: AccountRef(
                code=code,
                book=a.book.code,
                book_base_currency=a.book.base_currency,
                pnl_method=a.book.pnl_method,
                status=a.status,
            )
            for code, a in snapshot.accounts.items()
        },
        counterparties=frozenset(snapshot.counterparties),
        ssis={
            key: SsiRef(
                payment_type=s.payment_type,
                custodian_bic=s.custodian_bic,
                safekeeping_account=s.safekeeping_account,
                cash_account=s.cash_account,
            )
            for key, s in snapshot.ssis.items()
        },
        calendars=snapshot.calendars,
    )


def trade_heads(trade_ids: Iterable[str]) -> dict[str, Head]:
    """The current head of each known trade among ``trade_ids`` (one query)."""
    heads: dict[str, Head] = {}
    ids = list(set(trade_ids))
    if not ids:
        return heads
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.trade_id, t.current_version, t.status, v.input_hash FROM trades_trade t"
            " JOIN trades_tradeversion v ON v.trade_id = t.trade_id AND v.version = t.current_version"
            " WHERE t.trade_id = ANY(%s)",
            [ids],
        )
        for trade_id, version, status, digest in cursor.fetchall():
            heads[trade_id] = Head(
                version=version, cancelled=status == "CANCELLED", current_hash=digest
            )
    return heads


def version_hashes(trade_ids: Iterable[str]) -> dict[str, dict[int, str]]:
    """Every captured version's input hash, per trade (one query)."""
    found: dict[str, dict[int, str]] = {}
    # = ANY(array): one parameter, where trade_id__in spells a placeholder per id for the
    # client to parse and fill (about 5 ms a batch).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT trade_id, version, input_hash FROM {TradeVersion._meta.db_table}"
            " WHERE trade_id = ANY(%s)",
            [list(set(trade_ids))],
        )
        for trade_id, version, digest in cursor.fetchall():
            found.setdefault(trade_id, {})[version] = digest
    return found


def business_date(*, today: date | None = None) -> date:
    """The date the back office is working on: the latest business day of the business calendar
    (``settings.BUSINESS_CALENDAR``, NYSE by default) on or before the clock's today.

    This is the one rule for "today" in the product: the dashboard counts its trades, fails and
    breaks as of it, and every page that filters by date defaults to it and shows it. On a
    weekend or a holiday it is the last day the markets were open, so Saturday's pages show
    Friday's work.

    Pages must open whatever the reference data holds, so this never raises: when the calendar
    is not loaded (a fresh database), or today is past the holidays it has, weekends alone decide
    and a warning says what to load. Settlement dates are never guessed like this: computing one
    past the holidays is refused (``CalendarNotCoveredError``).
    """
    day = clock.today() if today is None else today
    try:
        return market_calendar(settings.BUSINESS_CALENDAR).business_day_on_or_before(day)
    except (UnknownCalendarError, CalendarNotCoveredError) as error:
        log.warning(BUSINESS_DATE_WITHOUT_HOLIDAYS, error)
    weekends = MarketCalendar(settings.BUSINESS_CALENDAR, frozenset(), settlement_cycle=0)
    return weekends.business_day_on_or_before(day)
