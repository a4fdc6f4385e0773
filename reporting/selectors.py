"""Reads shared by the reporting stage, end of day, the API and the CSV download.

Bulk by design: each function is one query (or one per date for FX) whatever the number of
positions it serves, so the stage never reads per message.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Max, Min, QuerySet, Sum

from reporting.models import (
    CollateralBalance,
    DailyClose,
    EodRun,
    LatestPrice,
    MarginCall,
    MarginSnapshot,
    PnlSnapshot,
    Position,
    PositionTrade,
)
from reporting.pnl import CostMethod, PositionState
from reporting.positions import (
    Checkpoint,
    Key,
    PositionMeta,
    PriceTick,
    ReplayKey,
    StoredTrade,
    TradeVersion,
    rate_to_base,
    state_from_json,
)
from trades.models import Instrument
from trades.selectors import fx_rates_on

# One year of business days: 251 closes give 250 one-day VaR scenarios.
VAR_WINDOW = 250


class FxTable:
    """FX rates by date, each date read once (``fx_rates_on``) and kept for the caller's batch."""

    def __init__(self) -> None:
        self._by_date: dict[date, Mapping[tuple[str, str], Decimal]] = {}

    def rate(self, currency: str, base: str, on: date) -> Decimal | None:
        """Units of ``base`` per unit of ``currency`` on or before ``on``; None when unknown."""
        if currency == base:
            return Decimal(1)
        if on not in self._by_date:
            self._by_date[on] = fx_rates_on(on)
        return rate_to_base(self._by_date[on], currency, base)


def instrument_currencies(isins: Iterable[str]) -> dict[str, str]:
    """The currency of each ISIN the reference data knows."""
    return dict(Instrument.objects.filter(isin__in=set(isins)).values_list("isin", "currency"))


def stored_trades(trade_ids: Iterable[str]) -> dict[str, StoredTrade]:
    rows = PositionTrade.objects.filter(trade_id__in=set(trade_ids)).values_list(
        "trade_id", "version", "status", "account", "instrument", "trade_time"
    )
    return {
        trade_id: StoredTrade(
            version,
            status == PositionTrade.Status.LIVE,
            (account, instrument),
            (trade_time, trade_id, version),
        )
        for trade_id, version, status, account, instrument, trade_time in rows
    }


_VERSION_COLUMNS = (
    "trade_id",
    "version",
    "account",
    "book",
    "base_currency",
    "pnl_method",
    "instrument",
    "asset_class",
    "currency",
    "side",
    "quantity",
    "price",
    "fees",
    "trade_date",
    "trade_time",
)
_METHODS = {m.value: m for m in CostMethod}


def _as_version(row: Sequence[Any]) -> TradeVersion:
    (trade_id, version, account, book, base, method, instrument, asset_class, currency) = row[:9]
    side, quantity, price, fees, trade_date, trade_time = row[9:]
    return TradeVersion(
        trade_id=trade_id,
        version=version,
        # Only live versions are read back, and a live version is the first or an amendment.
        action="NEW" if version == 1 else "AMEND",
        account=account,
        book=book,
        base_currency=base,
        pnl_method=_METHODS[method],
        instrument=instrument,
        asset_class=asset_class,
        currency=currency,
        side="BUY" if side == "BUY" else "SELL",
        quantity=quantity,
        price=price,
        fees=fees,
        trade_date=trade_date,
        trade_time=trade_time,
    )


def _grouped(rows: Iterable[Sequence[Any]]) -> dict[Key, list[TradeVersion]]:
    grouped: defaultdict[Key, list[TradeVersion]] = defaultdict(list)
    for row in rows:
        version = _as_version(row)
        grouped[(version.account, version.instrument)].append(version)
    return dict(grouped)


# Before every trade: the lower bound of a position read from flat.
_FLAT: ReplayKey = (datetime(1, 1, 1, tzinfo=UTC), "", 0)


def live_versions(
    keys: Iterable[Key], after: Mapping[Key, ReplayKey] | None = None
) -> dict[Key, list[TradeVersion]]:
    """The live trade versions of each position in ``keys`` after its replay key in ``after``,
    in replay order.

    One query: a position without a bound in ``after`` is read whole. The bound's trade_time
    serves the index range and the row comparison decides ties, in byte order as Python sorts.
    """
    bounds = after or {}
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    lower = [bounds.get(key, _FLAT) for key in wanted]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(f't.{c}' for c in _VERSION_COLUMNS)} FROM reporting_positiontrade t"
            " JOIN unnest(%s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::int[])"
            " AS k(account, instrument, trade_time, trade_id, version)"
            " ON t.account = k.account AND t.instrument = k.instrument"
            " AND t.trade_time >= k.trade_time"
            ' AND (t.trade_time, t.trade_id COLLATE "C", t.version)'
            ' > (k.trade_time, k.trade_id COLLATE "C", k.version)'
            " WHERE t.status = 'LIVE'"
            ' ORDER BY t.trade_time, t.trade_id COLLATE "C", t.version',
            [
                [a for a, _ in wanted],
                [i for _, i in wanted],
                *([b[n] for b in lower] for n in range(3)),
            ],
        )
        return _grouped(cursor.fetchall())


# A checkpoint row after its key (account, instrument), in the order _checkpoint reads it.
CHECKPOINT_COLUMNS = (
    "trade_time",
    "trade_id",
    "trade_version",
    "trade_count",
    "fold_method",
    "state",
    "book",
    "base_currency",
    "pnl_method",
    "asset_class",
    "currency",
    "last_trade_date",
    "last_fill_price",
)


def checkpoints_before(points: Mapping[Key, ReplayKey]) -> dict[Key, Checkpoint]:
    """Each position's latest checkpoint strictly before its replay key in ``points``.

    One query, one index probe per position (``position_checkpoint_key_idx``, whose trade_id
    is in byte order); positions with no checkpoint before their point are left out.
    """
    wanted = sorted(points.items())
    if not wanted:
        return {}
    columns = ", ".join(f"c.{c}" for c in CHECKPOINT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT k.account, k.instrument, {columns}"
            " FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::int[])"
            " AS k(account, instrument, trade_time, trade_id, version)"
            " CROSS JOIN LATERAL (SELECT * FROM reporting_positioncheckpoint c"
            "  WHERE c.account = k.account AND c.instrument = k.instrument"
            "  AND (c.trade_time, c.trade_id, c.trade_version)"
            "   < (k.trade_time, k.trade_id, k.version)"
            "  ORDER BY c.trade_time DESC, c.trade_id DESC, c.trade_version DESC LIMIT 1) c",
            [
                [key[0] for key, _ in wanted],
                [key[1] for key, _ in wanted],
                *([point[n] for _, point in wanted] for n in range(3)),
            ],
        )
        return dict(_checkpoint(row) for row in cursor.fetchall())


def _checkpoint(row: Sequence[Any]) -> tuple[Key, Checkpoint]:
    account, instrument, trade_time, trade_id, version, count, fold_method, state = row[:8]
    book, base, method, asset_class, currency, last_date, last_price = row[8:]
    meta = stored_meta(
        book, base, method, asset_class, currency, (trade_time, trade_id, version), last_date,
        last_price, count,
    )  # fmt: skip
    return (account, instrument), Checkpoint(stored_state(state), meta, _METHODS[fold_method])


def stored_meta(
    book: str,
    base_currency: str,
    pnl_method: str,
    asset_class: str,
    currency: str,
    last: ReplayKey,
    last_trade_date: date,
    last_fill_price: Decimal,
    trade_count: int,
) -> PositionMeta:
    """A position's or a checkpoint's meta from its stored columns."""
    return PositionMeta(
        book=book,
        base_currency=base_currency,
        pnl_method=_METHODS[pnl_method],
        asset_class=asset_class,
        currency=currency,
        last=last,
        last_trade_date=last_trade_date,
        last_fill_price=last_fill_price,
        trade_count=trade_count,
    )


def stored_state(state: Any) -> PositionState:
    """A stored exact state: JSONB arrives decoded, or as text from a raw cursor that has not
    registered the type."""
    return state_from_json(state if isinstance(state, dict) else json.loads(state))


def versions_as_of(business_date: date) -> dict[Key, list[TradeVersion]]:
    """Every position's live trade versions traded on or before ``business_date``."""
    rows = (
        PositionTrade.objects.filter(
            status=PositionTrade.Status.LIVE, trade_date__lte=business_date
        )
        .values_list(*_VERSION_COLUMNS)
        .iterator(chunk_size=5000)
    )
    return _grouped(rows)


def _tick(isin: str, price: Decimal, currency: str, as_of: Any, business_date: date) -> PriceTick:
    return PriceTick(isin, price, currency, as_of, business_date, "")


def latest_prices(isins: Iterable[str]) -> dict[str, PriceTick]:
    rows = LatestPrice.objects.filter(isin__in=set(isins)).values_list(
        "isin", "price", "currency", "as_of", "business_date"
    )
    return {row[0]: _tick(*row) for row in rows}


def closes_as_of(business_date: date) -> dict[str, PriceTick]:
    """Each instrument's close on ``business_date``, or on the latest date before it."""
    rows = (
        DailyClose.objects.filter(business_date__lte=business_date)
        .order_by("isin", "-business_date")
        .distinct("isin")
        .values_list("isin", "price", "currency", "as_of", "business_date")
    )
    return {row[0]: _tick(*row) for row in rows}


def close_history(
    isins: Iterable[str], business_date: date, window: int = VAR_WINDOW
) -> dict[str, list[tuple[date, Decimal]]]:
    """Up to ``window + 1`` daily closes per instrument up to ``business_date``, oldest first."""
    wanted = sorted(set(isins))
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT isin, business_date, price FROM ("
            " SELECT isin, business_date, price, row_number() OVER"
            "  (PARTITION BY isin ORDER BY business_date DESC) AS n"
            " FROM reporting_dailyclose WHERE isin = ANY(%s) AND business_date <= %s) AS c"
            " WHERE n <= %s ORDER BY isin, business_date",
            [wanted, business_date, window + 1],
        )
        history: defaultdict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for isin, day, price in cursor.fetchall():
            history[isin].append((day, price))
    return dict(history)


def collateral_by_account() -> dict[str, tuple[Decimal, str]]:
    return {c.account: (c.amount, c.currency) for c in CollateralBalance.objects.all()}


def latest_business_date() -> date | None:
    """The latest business date the data speaks of: a trade date or a price's date."""
    trade = PositionTrade.objects.aggregate(d=Max("trade_date"))["d"]
    close = DailyClose.objects.aggregate(d=Max("business_date"))["d"]
    dates = [d for d in (trade, close) if d is not None]
    return max(dates) if dates else None


def eod_pending_dates() -> list[date]:
    """Business dates end of day should (re)build, oldest first.

    Every date with data (a trade or a close) from the last date already built, which is
    built again because its data may have grown since, to the latest. Dates before the first
    trade have no positions and are skipped.
    """
    latest = latest_business_date()
    first = PositionTrade.objects.aggregate(d=Min("trade_date"))["d"]
    if latest is None or first is None:
        return []
    floor = EodRun.objects.aggregate(d=Max("business_date"))["d"]
    start = max(first, floor) if floor is not None else first
    trade_dates = PositionTrade.objects.filter(trade_date__gte=start).values_list(
        "trade_date", flat=True
    )
    close_dates = DailyClose.objects.filter(business_date__gte=start).values_list(
        "business_date", flat=True
    )
    return sorted(set(trade_dates.distinct()) | set(close_dates.distinct()))


# -- the API, the CSV download and the UI ---------------------------------------------------


def positions(
    *, account: str | None = None, book: str | None = None, instrument: str | None = None
) -> QuerySet[Position]:
    rows = Position.objects.all()
    if account:
        rows = rows.filter(account=account)
    if book:
        rows = rows.filter(book=book)
    if instrument:
        rows = rows.filter(instrument=instrument)
    return rows.order_by("book", "account", "instrument")


def pnl_snapshots(
    *, business_date: date, account: str | None = None, book: str | None = None
) -> QuerySet[PnlSnapshot]:
    rows = PnlSnapshot.objects.filter(business_date=business_date)
    if account:
        rows = rows.filter(account=account)
    if book:
        rows = rows.filter(book=book)
    return rows.order_by("book", "account", "instrument")


TOTALS = (
    "base_market_value",
    "base_realized",
    "base_unrealized",
    "base_fees",
    "base_net_realized",
    "base_total",
)


@dataclass(frozen=True)
class PnlTotal:
    """P&L of a group of positions in its base currency (a book's or an account's)."""

    group: str
    base_currency: str
    base_market_value: Decimal
    base_realized: Decimal
    base_unrealized: Decimal
    base_fees: Decimal
    base_net_realized: Decimal
    base_total: Decimal


def pnl_totals(rows: QuerySet[Any], *, by: str) -> list[PnlTotal]:
    """Sum the base-currency figures of ``rows`` per ``by`` (``book`` or ``account``)."""
    sums = (
        rows.order_by()
        .values(by, "base_currency")
        .annotate(**{f"sum_{name}": Sum(name) for name in TOTALS})
        .order_by(by, "base_currency")
    )
    return [
        PnlTotal(
            group=row[by],
            base_currency=row["base_currency"],
            **{name: row[f"sum_{name}"] for name in TOTALS},
        )
        for row in sums
    ]


@dataclass(frozen=True)
class PnlHistoryRow:
    business_date: date
    group: str
    base_currency: str
    base_total: Decimal
    base_realized: Decimal
    base_unrealized: Decimal
    base_fees: Decimal
    day_change: Decimal | None  # base_total minus the group's previous snapshot date's


def pnl_history(
    *,
    by: str,
    book: str | None = None,
    account: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[PnlHistoryRow]:
    """Cumulative P&L per business date and ``by`` group, with the change since the last date."""
    rows = PnlSnapshot.objects.all()
    if book:
        rows = rows.filter(book=book)
    if account:
        rows = rows.filter(account=account)
    if until:
        rows = rows.filter(business_date__lte=until)
    sums = (
        rows.values("business_date", by, "base_currency")
        .annotate(
            total=Sum("base_total"),
            realized=Sum("base_realized"),
            unrealized=Sum("base_unrealized"),
            fees=Sum("base_fees"),
        )
        .order_by(by, "base_currency", "business_date")
    )
    history: list[PnlHistoryRow] = []
    previous: dict[tuple[str, str], Decimal] = {}
    for row in sums:
        group = (row[by], row["base_currency"])
        before = previous.get(group)
        previous[group] = row["total"]
        if since and row["business_date"] < since:
            continue
        history.append(
            PnlHistoryRow(
                business_date=row["business_date"],
                group=row[by],
                base_currency=row["base_currency"],
                base_total=row["total"],
                base_realized=row["realized"],
                base_unrealized=row["unrealized"],
                base_fees=row["fees"],
                day_change=None if before is None else row["total"] - before,
            )
        )
    return history


def margin_snapshots(
    *, account: str | None = None, business_date: date | None = None
) -> Sequence[MarginSnapshot]:
    """Margin per account on ``business_date``, or each account's latest when none is given."""
    rows = MarginSnapshot.objects.all()
    if account:
        rows = rows.filter(account=account)
    if business_date:
        return list(rows.filter(business_date=business_date).order_by("account"))
    return list(rows.order_by("account", "-business_date").distinct("account"))


def margin_calls(*, account: str | None = None) -> QuerySet[MarginCall]:
    rows = MarginCall.objects.all()
    if account:
        rows = rows.filter(account=account)
    return rows.order_by("-business_date", "account")
