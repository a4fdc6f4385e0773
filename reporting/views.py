"""The reporting UI: positions, P&L (live and per business date, with a chart), margin.

Every page is read-only (viewer role) and costs a fixed number of queries whatever the number
of rows: choice lists, one page of rows, one query per totals table or chart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase
from django.shortcuts import render
from django.utils.safestring import SafeString

from backoffice.charts import line_chart
from backoffice.roles import VIEWER
from backoffice.ui import (
    CSV,
    DashboardCard,
    configure_table,
    export_format,
    export_rows,
    export_table,
    role_required,
    user_roles,
)
from reporting import selectors
from reporting.api import BOOKED
from reporting.filters import MarginFilter, PnlFilter, PositionFilter
from reporting.models import MarginCall, MarginSnapshot, PnlSnapshot, Position, PositionTrade
from reporting.tables import BookedTable, MarginCallTable, MarginTable, PositionTable, signed
from trades.selectors_timeline import OK, WARN, TimelineItem
from trades.tables import display_money, display_number

BAD_DATE = "date must be a business date as YYYY-MM-DD, got {value!r}"
LIVE = "live"
TOTALS_SHOWN = (
    ("base_market_value", "Market value"),
    ("base_realized", "Realized"),
    ("base_unrealized", "Unrealized"),
    ("base_fees", "Fees"),
    ("base_net_realized", "Net realized"),
    ("base_total", "Total"),
)


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def booked_rows(rows: QuerySet[Any], label: str) -> Iterator[list[Any]]:
    """The P&L download: a header, then each row's booked figures after its date (or "live")."""
    yield ["business_date", *BOOKED]
    for row in rows.iterator():
        yield [label, *(getattr(row, name) for name in BOOKED)]


@role_required(VIEWER)
def pnl_csv(request: HttpRequest) -> HttpResponseBase:
    """``pnl.csv?date=&book=&account=``: the snapshot of ``date``, or the live P&L without one."""
    try:
        day = _date(request.GET.get("date"))
    except ValueError:
        return HttpResponseBadRequest(BAD_DATE.format(value=request.GET.get("date")))
    filters = {k: request.GET.get(k) or None for k in ("book", "account")}
    rows: Any = (
        selectors.positions(**filters)
        if day is None
        else selectors.pnl_snapshots(business_date=day, **filters)
    )
    label = day.isoformat() if day else LIVE
    return export_rows(rows=booked_rows(rows, label), fmt=CSV, filename=f"pnl-{label}")


@role_required(VIEWER)
def positions(request: HttpRequest) -> HttpResponseBase:
    """Live positions with their P&L, filtered by account, book and instrument."""
    filters = PositionFilter(request.GET, queryset=selectors.positions())
    table = PositionTable(filters.qs if filters.is_valid() else Position.objects.none())
    if (fmt := export_format(request)) is not None:
        configure_table(request, table, paginate=False)
        return export_table(table, fmt=fmt, filename="positions")
    configure_table(request, table)
    return render(request, "reporting/positions.html", {"filters": filters, "table": table})


@role_required(VIEWER)
def pnl(request: HttpRequest) -> HttpResponseBase:
    """P&L rows of a business date's snapshot (or live), totals by a grouping, a chart by book."""
    filters = PnlFilter(request.GET, queryset=PnlSnapshot.objects.none())
    valid = filters.is_valid()
    data = filters.form.cleaned_data if valid else {}
    day: date | None = data.get("date")
    picked = {k: data.get(k) or None for k in ("account", "book")}
    filters.queryset = (
        selectors.positions(**picked)
        if day is None
        else selectors.pnl_snapshots(business_date=day, **picked)
    )
    rows: QuerySet[Any] = filters.qs if valid else PnlSnapshot.objects.none()
    label = day.isoformat() if day else LIVE
    if (fmt := export_format(request)) is not None:
        return export_rows(rows=booked_rows(rows, label), fmt=fmt, filename=f"pnl-{label}")
    table = BookedTable(rows, attrs={"class": "grid", "data-testid": "pnl"})
    configure_table(request, table)
    group = data.get("group") or "book"
    history = selectors.pnl_history(by="book", until=day, **picked)
    context = {
        "filters": filters,
        "table": table,
        "day": day,
        "label": label,
        "group": dict(_GROUP_LABELS)[group],
        "totals": _shown_totals(selectors.pnl_totals(rows, by=group)),
        "chart": _book_chart(history),
        "dates": _snapshot_dates(history),
    }
    return render(request, "reporting/pnl.html", context)


_GROUP_LABELS = (("book", "Book"), ("account", "Account"), ("instrument", "Instrument"))


def _shown_totals(totals: Iterable[selectors.PnlTotal]) -> list[dict[str, Any]]:
    return [
        {
            "group": t.group,
            "currency": t.base_currency,
            "figures": [signed(getattr(t, name), t.base_currency) for name, _ in TOTALS_SHOWN],
        }
        for t in totals
    ]


def _book_chart(history: list[selectors.PnlHistoryRow]) -> SafeString:
    series: defaultdict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    for row in history:
        series[f"{row.group} ({row.base_currency})"].append((row.business_date, row.base_total))
    return line_chart(sorted(series.items()), title="Total P&L by book, end of each day")


def _snapshot_dates(history: list[selectors.PnlHistoryRow]) -> list[str]:
    """The latest few snapshot dates (quick links next to the date picker)."""
    return sorted({row.business_date.isoformat() for row in history}, reverse=True)[:5]


@role_required(VIEWER)
def margin(request: HttpRequest) -> HttpResponseBase:
    """Margin per account (each account's latest, or a business date's) and the margin calls."""
    filters = MarginFilter(request.GET, queryset=MarginSnapshot.objects.none())
    valid = filters.is_valid()
    data = filters.form.cleaned_data if valid else {}
    account, day = data.get("account") or None, data.get("date")
    snapshots = selectors.margin_snapshots(account=account, business_date=day) if valid else []
    calls = selectors.margin_calls(account=account) if valid else MarginCall.objects.none()
    table, calls_table = MarginTable(snapshots), MarginCallTable(calls)
    if (fmt := export_format(request)) is not None:
        wanted = calls_table if request.GET.get("table") == "calls" else table
        configure_table(request, wanted, paginate=False)
        name = "margin-calls" if wanted is calls_table else "margin"
        return export_table(wanted, fmt=fmt, filename=name)
    configure_table(request, table)
    configure_table(request, calls_table)
    deficits = [s for s in snapshots if s.excess < 0]
    context = {
        "filters": filters,
        "table": table,
        "calls_table": calls_table,
        "accounts": len(snapshots),
        "deficits": len(deficits),
        "called": [display_money(s.margin_call, s.base_currency) for s in deficits],
    }
    return render(request, "reporting/margin.html", context)


def pnl_card(request: HttpRequest) -> DashboardCard | None:
    """The dashboard's "P&L by book" card: live total P&L per book in its base currency."""
    if VIEWER not in user_roles(request.user):
        return None
    totals = selectors.pnl_totals(selectors.positions(), by="book")
    if not totals:
        return DashboardCard(title="P&L by book", value="—", detail="no positions yet")
    return DashboardCard(
        title="P&L by book",
        value=f"{len(totals)} books",
        detail=" · ".join(f"{t.group} {t.base_total:,.2f} {t.base_currency}" for t in totals),
        link="/reporting/pnl/",
        tone="ok" if all(t.base_total >= 0 for t in totals) else "warn",
    )


# -- the trade page's timeline: the trade's effect on positions --------------------------------

IN_POSITION = "In position {account} · {instrument} ({book}, {method})"
OUT_OF_POSITION = "Removed from position {account} · {instrument} (cancelled)"


def position_items(trade_id: str) -> list[TimelineItem]:
    """Which position the trade's version in force sits in, and whether that restated it.

    One query: the trade's row for positions with its position's figures alongside. A first
    version that sorts after the position's last fill was applied incrementally; an amendment or
    a cancel always replays the position's live trades from flat (``docs/pnl.md``).
    """
    position = Position.objects.filter(
        account=OuterRef("account"), instrument=OuterRef("instrument")
    )
    row = (
        PositionTrade.objects.filter(trade_id=trade_id)
        .annotate(
            position_quantity=Subquery(position.values("quantity")[:1]),
            position_total=Subquery(position.values("total")[:1]),
            position_trades=Subquery(position.values("trade_count")[:1]),
        )
        .first()
    )
    if row is None:
        return []
    names = {"account": row.account, "instrument": row.instrument, "book": row.book}
    if row.status == PositionTrade.Status.CANCELLED:
        return [
            TimelineItem(
                at=row.updated_at,
                stage="positions",
                what=OUT_OF_POSITION.format(**names),
                detail=f"v{row.version} cancelled: the position was restated without it",
                tone=WARN,
                link=f"/reporting/?account={row.account}&instrument={row.instrument}",
                version=row.version,
            )
        ]
    restated = row.version > 1
    held = (
        "position closed"
        if row.position_quantity is None
        else f"position now {display_number(row.position_quantity)} held, total P&L "
        f"{display_money(row.position_total, row.currency)} {row.currency} "
        f"over {row.position_trades} trades"
    )
    return [
        TimelineItem(
            at=row.updated_at,
            stage="positions",
            what=IN_POSITION.format(**names, method=row.pnl_method),
            detail=(
                f"v{row.version} {'restated the position (amendment)' if restated else 'booked'}"
                f"; {held}"
            ),
            tone=WARN if restated else OK,
            link=f"/reporting/?account={row.account}&instrument={row.instrument}",
            version=row.version,
        )
    ]
