"""Shared pieces of the ops UI: role checks, table exports and the dashboard's card registry.

Every page goes through ``role_required`` (or ``RoleRequiredMixin``): an anonymous visitor is sent
to the login page, a signed-in user without the role gets the not-allowed page with HTTP 403 and
the sentence saying which role the action needs. Exports stream the rows a django-tables2 table
would show, as CSV or XLSX, with raw values (Decimal amounts, ISO dates) rather than the
formatted text of the page. Charts are drawn server-side (``backoffice.charts``), so the UI needs
no third-party asset and works offline.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import update_wrapper
from typing import Any, Concatenate, ParamSpec

from django.contrib.auth.views import redirect_to_login
from django.core.paginator import EmptyPage
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.views import View

from backoffice.roles import NOT_ALLOWED, OPERATIONS, VIEWER, roles_of

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSV = "csv"
XLSX = "xlsx"
EXPORT_FORMATS = (CSV, XLSX)
EXPORT_PARAM = "export"
XLSX_MAX_ROWS = 1_048_576  # Excel's own limit, header included
XLSX_TRUNCATED = "Truncated at Excel's row limit: download CSV for every row."
# Excel keeps 15 significant digits: a longer amount is written as text so it is never rounded.
XLSX_EXACT_DIGITS = 15

P = ParamSpec("P")
ViewFunction = Callable[Concatenate[HttpRequest, P], HttpResponseBase]


def user_roles(user: Any) -> frozenset[str]:
    """``roles.roles_of``, cached on the user object for the rest of the request."""
    cached: frozenset[str] | None = getattr(user, "_ui_roles", None)
    if cached is None:
        cached = roles_of(user)
        if getattr(user, "is_authenticated", False):
            user._ui_roles = cached
    return cached


def not_allowed(request: HttpRequest, role: str) -> HttpResponse:
    """The not-allowed page (HTTP 403) naming the role the action needs."""
    return render(
        request,
        "403.html",
        {"message": NOT_ALLOWED.format(role=role), "role": role},
        status=403,
    )


def _role_for(request: HttpRequest, role: str, write_role: str | None) -> str:
    if write_role is not None and request.method not in READ_METHODS:
        return write_role
    return role


def _check(request: HttpRequest, role: str) -> HttpResponse | None:
    """The not-allowed page when the user lacks ``role``; else None, with the user's roles
    left on the request (``request.user_roles``) for the page's navigation."""
    roles = user_roles(request.user)
    setattr(request, "user_roles", roles)  # noqa: B010 - HttpRequest has no such declared field
    return None if role in roles else not_allowed(request, role)


def role_required(
    role: str, *, write_role: str | None = None
) -> Callable[[ViewFunction[P]], ViewFunction[P]]:
    """Decorate a view: ``role`` to read it, ``write_role`` (default ``role``) to POST to it."""

    def decorator(view: ViewFunction[P]) -> ViewFunction[P]:
        def wrapped(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            denied = _check(request, _role_for(request, role, write_role))
            return denied if denied is not None else view(request, *args, **kwargs)

        update_wrapper(wrapped, view)
        return wrapped

    return decorator


class RoleRequiredMixin(View):
    """Class-based views: ``required_role`` to read, ``write_role`` for other methods."""

    required_role = VIEWER
    write_role = OPERATIONS

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        denied = _check(request, _role_for(request, self.required_role, self.write_role))
        return denied if denied is not None else super().dispatch(request, *args, **kwargs)


# --- tables ----------------------------------------------------------------------------------

PER_PAGE = 50
PER_PAGE_CHOICES = (25, 50, 100, 250)


def configure_table(request: HttpRequest, table: Any, *, paginate: bool = True) -> Any:
    """Sort ``table`` as the request asks and show one page of it without counting the rows.

    Pages come from ``LazyPaginator`` (no COUNT over millions of rows: it reads one row past the
    page to know whether there is a next one); ``per_page`` is limited to ``PER_PAGE_CHOICES``.
    """
    from django_tables2 import LazyPaginator, RequestConfig

    RequestConfig(request, paginate=False).configure(table)
    if not paginate:
        return table
    try:
        per_page = int(request.GET.get("per_page", PER_PAGE))
        page = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        per_page, page = PER_PAGE, 1
    if per_page not in PER_PAGE_CHOICES:
        per_page = PER_PAGE
    table.per_page_choices = PER_PAGE_CHOICES
    try:
        table.paginate(paginator_class=LazyPaginator, per_page=per_page, page=page)
    except EmptyPage:  # past the end (the data changed under a bookmark): show the first page
        table.paginate(paginator_class=LazyPaginator, per_page=per_page, page=1)
    return table


# --- exports ---------------------------------------------------------------------------------


def export_format(request: HttpRequest) -> str | None:
    """``csv`` or ``xlsx`` when the request asks for a download (``?export=csv``), else None."""
    wanted = request.GET.get(EXPORT_PARAM)
    return wanted if wanted in EXPORT_FORMATS else None


def export_table(table: Any, *, fmt: str, filename: str) -> HttpResponseBase:
    """Download what ``table`` (a django-tables2 table) shows: every row, not just one page.

    Columns with ``exclude_from_export=True`` are left out; cells come from each column's
    ``value``/``value_<name>``, so amounts stay exact Decimals and dates ISO.
    """
    return export_rows(rows=table.as_values(), fmt=fmt, filename=filename)


def export_rows(*, rows: Iterable[Sequence[Any]], fmt: str, filename: str) -> HttpResponseBase:
    """A CSV (streamed) or XLSX download of ``rows``; the first row is the header."""
    if fmt == CSV:
        response: HttpResponseBase = StreamingHttpResponse(
            _csv_lines(rows), content_type="text/csv; charset=utf-8"
        )
    elif fmt == XLSX:
        response = HttpResponse(
            _xlsx_bytes(rows),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        raise ValueError(f"unknown export format {fmt!r}: use one of {EXPORT_FORMATS}")
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


class _Line:
    """A file-like sink that hands back what csv.writer wrote, for streaming."""

    def write(self, value: str) -> str:
        return value


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _csv_lines(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    for row in rows:
        yield writer.writerow([_csv_text(v) for v in row])


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        digits = len(value.as_tuple().digits)
        return value if digits <= XLSX_EXACT_DIGITS else format(value, "f")
    if isinstance(value, datetime):
        # Excel has no time zones: write UTC wall-clock time.
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if value is None or isinstance(value, int | float | date | str):
        return value
    return str(value)


def _xlsx_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("export")
    sheet.freeze_panes = "A2"
    for count, row in enumerate(rows, start=1):
        if count == XLSX_MAX_ROWS:
            sheet.append([XLSX_TRUNCATED])
            break
        sheet.append([_xlsx_cell(v) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- dashboard cards -------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardCard:
    """One tile on the dashboard. ``tone`` is neutral, ok, warn or bad; ``chart`` is SVG markup."""

    title: str
    value: str
    detail: str = ""
    link: str = ""
    tone: str = "neutral"
    chart: str = ""
    placeholder: bool = False


CardProvider = Callable[[HttpRequest], DashboardCard | None]


@dataclass(frozen=True)
class CardSlot:
    key: str
    title: str
    owner: str
    order: int


# Slots the other apps fill; until one registers a provider its placeholder says who will.
_SLOTS: dict[str, CardSlot] = {
    slot.key: slot
    for slot in (
        CardSlot("exceptions", "Open exceptions", "compliance", 10),
        CardSlot("fails", "Settlement fails", "settlement", 20),
        CardSlot("breaks", "Reconciliation breaks", "settlement", 30),
        CardSlot("pnl", "P&L by book", "reporting", 40),
    )
}
_PROVIDERS: dict[str, CardProvider] = {}


def register_dashboard_card(
    key: str, provider: CardProvider, *, title: str = "", order: int = 100
) -> None:
    """Put ``provider``'s card in slot ``key`` (call it from your AppConfig.ready()).

    Registering the same key again replaces the provider, so re-imports are harmless. A provider
    returns None to hide its card for this request (e.g. the user lacks the role).
    """
    if key not in _SLOTS:
        _SLOTS[key] = CardSlot(key, title or key, "", order)
    _PROVIDERS[key] = provider


def dashboard_cards(request: HttpRequest) -> list[DashboardCard]:
    """Every slot's card in order: the registered provider's, or a placeholder naming its app."""
    cards: list[DashboardCard] = []
    for slot in sorted(_SLOTS.values(), key=lambda s: (s.order, s.key)):
        provider = _PROVIDERS.get(slot.key)
        if provider is None:
            cards.append(
                DashboardCard(
                    title=slot.title,
                    value="—",
                    detail=f"Arrives with the {slot.owner} app.",
                    link=f"/{slot.owner}/",
                    placeholder=True,
                )
            )
            continue
        card = provider(request)
        if card is not None:
            cards.append(card)
    return cards
