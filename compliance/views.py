"""The exception queue in the UI: the list, one exception, and the four-eyes actions.

Anyone with the viewer role reads. Proposing and withdrawing need the operations role,
confirming the approver role; every action is a POST that calls ``compliance.services`` (which
checks again, audits and, on confirmation, writes the decision's event to the outbox) and shows
the service's own sentence when it refuses. Each action confirms on a page of its own first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.db import connection
from django.db.models import Count, Min, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from backoffice.audit.models import AuditEntry
from backoffice.roles import APPROVER, OPERATIONS, VIEWER
from backoffice.ui import (
    DashboardCard,
    configure_table,
    export_format,
    export_table,
    not_allowed,
    role_required,
    user_roles,
)
from compliance import errors, selectors, services
from compliance.filters import ExceptionFilter
from compliance.models import ComplianceException, ExceptionProposal, VersionVerdict
from compliance.tables import ExceptionTable, age, shown_net
from core import clock
from trades.selectors_timeline import BAD, INFO, OK, WARN, TimelineItem
from trades.tables import display_number

PROPOSED = "Proposed to {action} exception {id}: a different approver must confirm it."
CONFIRMED = "Exception {id} is {status}."
WITHDRAWN = "Your proposal on exception {id} was withdrawn; the exception is open again."
STATUS_CODES: dict[type[errors.ComplianceError], int] = {
    errors.Forbidden: 403,
    errors.Conflict: 409,
    errors.NotFound: 404,
    errors.Invalid: 400,
}
ACTIVE = ExceptionProposal.Status.ACTIVE
OPEN = ComplianceException.Status.OPEN


def exception_queue_rows() -> QuerySet[ComplianceException]:
    """Exceptions newest first, each with its awaiting proposal (one prefetch for a page)."""
    active = ExceptionProposal.objects.filter(status=ACTIVE)
    return selectors.exception_list().prefetch_related(
        Prefetch("proposals", queryset=active, to_attr="active")
    )


@role_required(VIEWER)
def exception_queue(request: HttpRequest) -> HttpResponseBase:
    data = request.GET.copy()
    data.setdefault("status", OPEN)  # open work first; "Any status" shows every exception
    filters = ExceptionFilter(data, queryset=exception_queue_rows())
    rows = filters.qs if filters.is_valid() else ComplianceException.objects.none()
    table = ExceptionTable(rows)
    fmt = export_format(request)
    if fmt is not None:
        configure_table(request, table, paginate=False)
        return export_table(table, fmt=fmt, filename=f"exceptions-{clock.now():%Y%m%d-%H%M%S}")
    configure_table(request, table)
    return render(request, "compliance/queue.html", {"filters": filters, "table": table})


@dataclass(frozen=True)
class Permissions:
    """What the signed-in user may do on one exception, and why not."""

    propose: bool
    confirm: bool
    withdraw: bool
    is_maker: bool


def permissions(request: HttpRequest, active: ExceptionProposal | None) -> Permissions:
    roles = user_roles(request.user)
    is_maker = active is not None and active.proposed_by_id == request.user.pk
    return Permissions(
        propose=OPERATIONS in roles,
        confirm=APPROVER in roles and not is_maker,
        withdraw=is_maker,
        is_maker=is_maker,
    )


@role_required(VIEWER)
def exception_detail(request: HttpRequest, pk: int) -> HttpResponseBase:
    exception = get_object_or_404(ComplianceException, pk=pk)
    proposals = list(selectors.exception_proposals(exception))
    active = next((p for p in proposals if p.status == ACTIVE), None)
    history = AuditEntry.objects.filter(object_type=services.EXCEPTION, object_id=str(pk))
    return render(
        request,
        "compliance/detail.html",
        {
            "exception": exception,
            "trade": exception.payload,
            "net": shown_net(exception),
            "quantity": _number(exception.payload.get("quantity")),
            "price": _number(exception.payload.get("price"), min_places=2),
            "age": age(exception.created_at, exception.resolved_at),
            "evaluations": selectors.exception_evaluations(exception),
            "proposals": proposals,
            "active": active,
            "history": history.order_by("at", "id"),
            "can": permissions(request, active),
            "maker_cannot_confirm": errors.MAKER_CANNOT_CONFIRM,
        },
    )


def _number(value: Any, *, min_places: int = 0) -> str:
    """A payload number (a string, exact) with thousands separators."""
    try:
        return display_number(Decimal(str(value)), min_places=min_places)
    except InvalidOperation:
        return str(value)


def refused(
    request: HttpRequest, exception: ComplianceException, error: errors.ComplianceError
) -> HttpResponse:
    """The refusal page with the service's sentence, as 403/409/404/400 by its kind."""
    return render(
        request,
        "compliance/refused.html",
        {"exception": exception, "message": error.message},
        status=STATUS_CODES.get(type(error), 409),
    )


def _exception(pk: int) -> ComplianceException:
    return get_object_or_404(ComplianceException, pk=pk)


@role_required(OPERATIONS)
def exception_propose(request: HttpRequest, pk: int) -> HttpResponseBase:
    """GET: the form (APPROVE or REJECT, a required reason); POST: the maker's proposal."""
    exception = _exception(pk)
    action = request.POST.get("action") or request.GET.get("action") or "APPROVE"
    reason = request.POST.get("reason", "")
    if request.method == "POST":
        user: Any = request.user
        try:
            services.exception_propose(
                exception_id=pk, actor=user, action=action, reason=reason, now=clock.now()
            )
        except errors.Invalid as error:  # blank reason: show the form again with the sentence
            return _propose_form(request, exception, action, reason, error.message, status=400)
        except errors.ComplianceError as error:
            return refused(request, exception, error)
        messages.success(request, PROPOSED.format(action=action.lower(), id=pk))
        return redirect("compliance-exception-detail", pk=pk)
    pending = selectors.active_proposal(pk)
    if exception.status != OPEN:
        return refused(
            request, exception, errors.Conflict(errors.NOT_OPEN.format(status=exception.status))
        )
    if pending is not None:
        message = errors.PROPOSAL_PENDING.format(
            action=pending.action, maker=pending.proposed_by_name
        )
        return refused(request, exception, errors.Conflict(message))
    return _propose_form(request, exception, action, reason, "")


def _propose_form(
    request: HttpRequest,
    exception: ComplianceException,
    action: str,
    reason: str,
    error: str,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "compliance/propose.html",
        {
            "exception": exception,
            "action": action.upper(),
            "actions": ExceptionProposal.Action.choices,
            "reason": reason,
            "error": error,
        },
        status=status,
    )


@role_required(VIEWER)
def exception_confirm(request: HttpRequest, pk: int) -> HttpResponseBase:
    """GET: what will be decided; POST: the checker's confirmation.

    The maker is told first that a different approver must confirm (the service's sentence),
    whatever their roles: that, not a missing role, is why they cannot.
    """
    exception = _exception(pk)
    active = selectors.active_proposal(pk)
    if active is not None and active.proposed_by_id == request.user.pk:
        return refused(request, exception, errors.Forbidden(errors.MAKER_CANNOT_CONFIRM))
    if APPROVER not in user_roles(request.user):
        return not_allowed(request, APPROVER)
    if request.method == "POST":
        user: Any = request.user
        try:
            decided = services.exception_confirm(exception_id=pk, actor=user, now=clock.now())
        except errors.ComplianceError as error:
            return refused(request, exception, error)
        status = decided.get_status_display().lower()
        messages.success(request, CONFIRMED.format(id=pk, status=status))
        return redirect("compliance-exception-detail", pk=pk)
    if active is None:
        return refused(request, exception, errors.Conflict(errors.NO_ACTIVE_PROPOSAL))
    return render(
        request,
        "compliance/confirm.html",
        {"exception": exception, "proposal": active, "action": "confirm"},
    )


@role_required(OPERATIONS)
def exception_withdraw(request: HttpRequest, pk: int) -> HttpResponseBase:
    """GET: the maker's own proposal to withdraw; POST: withdraw it."""
    exception = _exception(pk)
    if request.method == "POST":
        user: Any = request.user
        try:
            services.exception_withdraw(exception_id=pk, actor=user, now=clock.now())
        except errors.ComplianceError as error:
            return refused(request, exception, error)
        messages.success(request, WITHDRAWN.format(id=pk))
        return redirect("compliance-exception-detail", pk=pk)
    active = selectors.active_proposal(pk)
    if active is None:
        return refused(request, exception, errors.Conflict(errors.NO_ACTIVE_PROPOSAL))
    if active.proposed_by_id != request.user.pk:
        message = errors.ONLY_MAKER_WITHDRAWS.format(maker=active.proposed_by_name)
        return refused(request, exception, errors.Forbidden(message))
    return render(
        request,
        "compliance/confirm.html",
        {"exception": exception, "proposal": active, "action": "withdraw"},
    )


# -- the dashboard card and the trade timeline -------------------------------------------------


def open_exceptions_card(request: HttpRequest) -> DashboardCard:
    """How many exceptions wait for a decision and how long the oldest has waited (one query)."""
    found = ComplianceException.objects.filter(status=OPEN).aggregate(
        count=Count("id", distinct=True),
        awaiting=Count("proposals", filter=Q(proposals__status=ACTIVE)),
        oldest=Min("created_at"),
    )
    count, oldest = found["count"], found["oldest"]
    if not count:
        return DashboardCard(
            "Open exceptions", "0", "Nothing waits for a decision.", "/compliance/", "ok"
        )
    detail = f"{found['awaiting']} awaiting confirmation · oldest {age(oldest)}"
    return DashboardCard("Open exceptions", f"{count:,}", detail, "/compliance/", "warn")


# One query for the whole timeline source: verdicts, exceptions and proposals, tagged by kind.
_TIMELINE_SQL = f"""
SELECT 'verdict', v.evaluated_at, v.trade_version, '', v.passed::text, v.results::text, '', NULL
  FROM {VersionVerdict._meta.db_table} v WHERE v.trade_id = %(t)s
UNION ALL
SELECT 'raised', x.created_at, x.trade_version, array_to_string(x.failed_rules, ', '),
       x.status, '', '', x.id
  FROM {ComplianceException._meta.db_table} x WHERE x.trade_id = %(t)s
UNION ALL
SELECT 'closed', x.resolved_at, x.trade_version, '', x.status, '', '', x.id
  FROM {ComplianceException._meta.db_table} x
 WHERE x.trade_id = %(t)s AND x.resolved_at IS NOT NULL
UNION ALL
SELECT 'proposed', p.proposed_at, x.trade_version, p.action, p.status, p.reason,
       p.proposed_by_name, x.id
  FROM {ExceptionProposal._meta.db_table} p
  JOIN {ComplianceException._meta.db_table} x ON x.id = p.exception_id
 WHERE x.trade_id = %(t)s
UNION ALL
SELECT 'resolved', p.resolved_at, x.trade_version, p.action, p.status, p.reason,
       p.resolved_by_name, x.id
  FROM {ExceptionProposal._meta.db_table} p
  JOIN {ComplianceException._meta.db_table} x ON x.id = p.exception_id
 WHERE x.trade_id = %(t)s AND p.resolved_at IS NOT NULL
"""
_CLOSED_TONES = {"APPROVED": OK, "REJECTED": BAD, "SUPERSEDED": INFO, "CANCELLED": INFO}


def compliance_timeline(trade_id: str) -> list[TimelineItem]:
    """The trade's rule evaluations (one item per version), exceptions and four-eyes steps."""
    with connection.cursor() as cursor:
        cursor.execute(_TIMELINE_SQL, {"t": trade_id})
        rows = cursor.fetchall()
    items: list[TimelineItem] = []
    verdicts: list[TimelineItem] = []  # last, so a tie on time keeps them after the exception
    for kind, at, version, code, state, detail, who, exception_id in rows:
        link = reverse("compliance-exception-detail", args=[exception_id]) if exception_id else ""
        if kind == "verdict":
            results = json.loads(detail)
            if results:  # no rule applied to the version: nothing to show
                verdicts.append(_verdict_item(at, version, results))
        elif kind == "raised":
            what = f"Exception {exception_id} raised on v{version}"
            items.append(
                TimelineItem(at, "compliance", what, f"failed: {code}", WARN, link, version)
            )
        elif kind == "closed":
            what = f"Exception {exception_id} {state.lower()}"
            tone = _CLOSED_TONES.get(state, INFO)
            items.append(TimelineItem(at, "compliance", what, "", tone, link, version))
        elif kind == "proposed":
            what = f"{code.capitalize()} proposed by {who}"
            items.append(TimelineItem(at, "four-eyes", what, detail, INFO, link, version))
        else:
            what = f"{code.capitalize()} {state.lower()} by {who}"
            tone = OK if state == ExceptionProposal.Status.CONFIRMED else INFO
            items.append(TimelineItem(at, "four-eyes", what, detail, tone, link, version))
    return items + verdicts


def _verdict_item(at: datetime, version: int, results: list[dict[str, Any]]) -> TimelineItem:
    failed = [f"{r['code']}: {r['detail']}" for r in results if not r["passed"]]
    what = f"Compliance on v{version}: {len(results) - len(failed)}/{len(results)} rules passed"
    return TimelineItem(
        at=at,
        stage="compliance",
        what=what,
        detail="; ".join(failed),
        tone=BAD if failed else OK,
        version=version,
    )
