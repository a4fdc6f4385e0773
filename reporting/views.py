"""The reporting UI's plain views: the P&L table as CSV (the UI pages build on it)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase

from backoffice.roles import VIEWER
from backoffice.ui import CSV, DashboardCard, export_rows, role_required, user_roles
from reporting import selectors
from reporting.api import BOOKED

BAD_DATE = "date must be a business date as YYYY-MM-DD, got {value!r}"


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


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
    label = day.isoformat() if day else "live"
    header = ["business_date", *BOOKED]
    body = ([label, *(getattr(row, name) for name in BOOKED)] for row in rows.iterator())
    return export_rows(rows=_chain(header, body), fmt=CSV, filename=f"pnl-{label}")


def _chain(header: list[str], body: Any) -> Any:
    yield header
    yield from body


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
        link="/reporting/pnl.csv",
        tone="ok" if all(t.base_total >= 0 for t in totals) else "warn",
    )
