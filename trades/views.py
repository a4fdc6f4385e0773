"""The trade blotter (search, filters, sorting, CSV/XLSX export) and the trade page."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import render

from backoffice.roles import VIEWER
from backoffice.ui import configure_table, export_format, export_table, role_required
from core import clock
from trades.filters import TradeFilter
from trades.models import Trade
from trades.selectors_blotter import trade_detail, trade_list, version_changes
from trades.selectors_timeline import trade_timeline
from trades.tables import BlotterData, TradeTable, shown_version

TRADE_NOT_FOUND = "No trade {trade_id!r}: it may not have been captured yet."


@role_required(VIEWER)
def blotter(request: HttpRequest) -> HttpResponseBase:
    filters = TradeFilter(request.GET, queryset=trade_list())
    # An invalid filter (a typo in a bookmarked URL) shows its error and no rows, not every trade.
    table = TradeTable(BlotterData(filters.qs if filters.is_valid() else Trade.objects.none()))
    fmt = export_format(request)
    if fmt is not None:
        configure_table(request, table, paginate=False)
        return export_table(table, fmt=fmt, filename=f"trades-{clock.now():%Y%m%d-%H%M%S}")
    configure_table(request, table)
    return render(
        request,
        "trades/blotter.html",
        {"filters": filters, "table": table},
    )


@role_required(VIEWER)
def trade_page(request: HttpRequest, trade_id: str) -> HttpResponseBase:
    detail = trade_detail(trade_id)
    if detail is None:
        raise Http404(TRADE_NOT_FOUND.format(trade_id=trade_id))
    changes = version_changes(detail.versions)
    return render(
        request,
        "trades/detail.html",
        {
            "detail": detail,
            "trade": detail.trade,
            "current": detail.current,
            "shown": shown_version(detail.current) if detail.current else {},
            "versions": [
                (v, changes.get(v.version, []), shown_version(v)) for v in reversed(detail.versions)
            ],
            "timeline": trade_timeline(trade_id),
        },
    )
