"""The settlement pages: instructions (with the netting ratio), fails, payments and breaks.

Anyone with the viewer role reads. The break workflow (assign, comment, resolve with a
correcting entry, accept with a reason) needs the operations role: each is a POST that calls the
app's service (``settlement.services.breaks``), which compares-and-swaps and audits; the
service's own message tells the user why an action was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Min, Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse

from backoffice.charts import bar_chart
from backoffice.roles import OPERATIONS, VIEWER
from backoffice.ui import (
    DashboardCard,
    configure_table,
    export_format,
    export_table,
    role_required,
    user_roles,
)
from core import clock
from settlement import fails as pure_fails
from settlement import selectors
from settlement.fails import FailsReport
from settlement.filters import BreakFilter, FailFilter, InstructionFilter, PaymentFilter
from settlement.models import (
    Break,
    BreakCorrection,
    Fail,
    Instruction,
    Obligation,
    Payment,
)
from settlement.models.breaks import OPEN_STATUSES
from settlement.policy import PENALTY_RATES
from settlement.services import (
    BreakActionError,
    break_accept,
    break_assign,
    break_comment,
    break_resolve,
)
from settlement.services.breaks import BREAK_NOT_FOUND, CORRECTABLE
from settlement.tables import BreakTable, FailTable, InstructionTable, PaymentTable
from trades.calendar import CalendarNotCoveredError
from trades.selectors import business_date
from trades.selectors_timeline import BAD, INFO, OK, WARN, TimelineItem
from trades.tables import display_money, display_number

ASSIGNED = "Break {id} is assigned to {owner}."
COMMENTED = "Your comment is on break {id}."
RESOLVED = "Break {id} is resolved: correcting entry {reference} books {amount} {asset}."
ACCEPTED = "Break {id} is accepted."
AMOUNT_INVALID = "The correcting amount must be a number, like -10 or 1250.50."
_BUCKET_LABELS = (("1", "1 day"), ("2-3", "2-3 days"), ("4-5", "4-5 days"), (">5", "> 5 days"))
RATIO_DAYS = 7  # the netting-ratio panel shows settle dates this many days either side of today


def _stamp() -> str:
    return f"{clock.now():%Y%m%d-%H%M%S}"


@role_required(VIEWER)
def instructions(request: HttpRequest) -> HttpResponseBase:
    filters = InstructionFilter(request.GET, queryset=Instruction.objects.all())
    table = InstructionTable(filters.qs if filters.is_valid() else Instruction.objects.none())
    if (fmt := export_format(request)) is not None:
        configure_table(request, table, paginate=False)
        return export_table(table, fmt=fmt, filename=f"instructions-{_stamp()}")
    configure_table(request, table)
    day = filters.form.cleaned_data.get("settle_date") if filters.is_valid() else None
    centre = day or business_date()
    ratios = selectors.netting_ratios(
        date_from=day or centre - timedelta(days=RATIO_DAYS),
        date_to=day or centre + timedelta(days=RATIO_DAYS),
    )
    return render(
        request,
        "settlement/instructions.html",
        {"filters": filters, "table": table, "ratios": ratios},
    )


@role_required(VIEWER)
def fails(request: HttpRequest) -> HttpResponseBase:
    form = FailFilter(request.GET or None)
    as_of = form.day()
    wanted = form.cleaned_data if form.is_valid() else {}
    try:
        rows = selectors.fails_list(
            as_of=as_of, account=wanted.get("account") or None, status=wanted.get("status") or None
        )
    except CalendarNotCoveredError as error:
        return _fails_not_covered(request, form, as_of, error)
    if bucket := wanted.get("bucket"):
        rows = [r for r in rows if r.bucket is not None and str(r.bucket) == bucket]
    rows.sort(key=lambda r: (-r.age, r.fail.intended_settle_date, r.fail.instruction_id))
    table = FailTable(rows)
    if (fmt := export_format(request)) is not None:
        configure_table(request, table, paginate=False)
        return export_table(table, fmt=fmt, filename=f"fails-{as_of:%Y%m%d}")
    configure_table(request, table)
    try:
        report = selectors.fails_report(as_of=as_of)
    except CalendarNotCoveredError as error:
        return _fails_not_covered(request, form, as_of, error)
    return _fails_page(request, form, table, report)


def _fails_not_covered(
    request: HttpRequest, form: FailFilter, as_of: date, error: CalendarNotCoveredError
) -> HttpResponseBase:
    """The fails page when ``as_of`` ages a fail past its calendar's loaded holidays.

    Ages and penalties there would be guesses, so the page shows none: the filter bar keeps the
    date with the calendar's message (what to load) on it, and stays usable to pick another one.
    An export gets the message instead of a file that looks like "no fails".
    """
    if export_format(request) is not None:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    if not form.is_bound:  # the default date: bind it so the bar shows it with its error
        form = FailFilter({"as_of": as_of.isoformat()})
        form.is_valid()
    form.add_error("as_of", str(error))
    table = FailTable([])
    configure_table(request, table)
    empty = pure_fails.fails_report([], as_of, {}, PENALTY_RATES)
    return _fails_page(request, form, table, empty)


def _fails_page(
    request: HttpRequest, form: FailFilter, table: FailTable, report: FailsReport
) -> HttpResponseBase:
    by_bucket: dict[str, int] = {}
    for line in report.buckets:
        by_bucket[str(line.bucket)] = by_bucket.get(str(line.bucket), 0) + line.count
    buckets = [(label, by_bucket.get(code, 0)) for code, label in _BUCKET_LABELS]
    return render(
        request,
        "settlement/fails.html",
        {
            "filters": form,
            "table": table,
            "as_of": report.as_of,
            "report": report,
            "buckets": buckets,
            "bucket_lines": [
                (line, display_money(line.failed_value, line.currency))
                for line in report.buckets
                if line.count
            ],
            "penalties": [
                (ccy, display_money(total, ccy))
                for ccy, total in sorted(report.penalties_to_date.items())
            ],
            "chart": bar_chart(buckets, title="Open fails by age (business days)"),
        },
    )


@role_required(VIEWER)
def payments(request: HttpRequest) -> HttpResponseBase:
    filters = PaymentFilter(request.GET, queryset=Payment.objects.all())
    table = PaymentTable(filters.qs if filters.is_valid() else Payment.objects.none())
    if (fmt := export_format(request)) is not None:
        configure_table(request, table, paginate=False)
        return export_table(table, fmt=fmt, filename=f"payments-{_stamp()}")
    configure_table(request, table)
    return render(request, "settlement/payments.html", {"filters": filters, "table": table})


@role_required(VIEWER)
def breaks(request: HttpRequest) -> HttpResponseBase:
    data = request.GET.copy()
    data.setdefault("status", "open")  # open work first; "Any status" shows every break
    as_of = business_date()
    filters = BreakFilter(data, queryset=Break.objects.all(), as_of=as_of)
    table = BreakTable(filters.qs if filters.is_valid() else Break.objects.none(), as_of=as_of)
    if (fmt := export_format(request)) is not None:
        configure_table(request, table, paginate=False)
        return export_table(table, fmt=fmt, filename=f"breaks-{_stamp()}")
    configure_table(request, table)
    return render(
        request, "settlement/breaks.html", {"filters": filters, "table": table, "as_of": as_of}
    )


def _break_or_404(break_id: int) -> Break:
    b = Break.objects.filter(pk=break_id).first()
    if b is None:
        raise Http404(BREAK_NOT_FOUND.format(break_id=break_id))
    return b


@role_required(VIEWER)
def break_detail(request: HttpRequest, break_id: int) -> HttpResponseBase:
    b = _break_or_404(break_id)
    correction = BreakCorrection.objects.filter(break_record=b).first()
    can_act = OPERATIONS in user_roles(request.user)
    users = (
        list(
            get_user_model()
            .objects.filter(is_active=True)
            .order_by("username")
            .values_list("username", flat=True)
        )
        if can_act and b.is_open
        else []
    )
    return render(
        request,
        "settlement/break_detail.html",
        {
            "break": b,
            "age": selectors.break_age(b, business_date()),
            "shown": {
                "internal": display_number(b.internal_value),
                "custodian": display_number(b.custodian_value),
                "difference": display_number(b.difference),
                "amount": display_money(b.amount, b.amount_currency) if b.amount else "—",
                "default_correction": display_number(-b.difference),
            },
            "comments": b.comments.all(),
            "correction": correction,
            "correction_amount": display_number(correction.amount) if correction else "",
            "history": selectors.break_history(b.pk),
            "can_act": can_act,
            "correctable": b.category in CORRECTABLE,
            "users": users,
            "me": request.user.get_username(),
        },
    )


def _done(request: HttpRequest, break_id: int, run: Any) -> HttpResponseBase:
    """Run the service; its refusal message (a constant) is shown to the user as it stands."""
    try:
        messages.success(request, run())
    except BreakActionError as error:
        messages.error(request, str(error))
    return redirect("settlement-ui-break", break_id=break_id)


def _post_only(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Actions change state only on POST; a GET (a followed link) shows the break instead."""

    @wraps(view)
    def wrapper(request: HttpRequest, break_id: int) -> HttpResponseBase:
        if request.method != "POST":
            return redirect("settlement-ui-break", break_id=break_id)
        return view(request, break_id)

    return wrapper


def _actor(request: HttpRequest) -> Any:
    return request.user


@role_required(OPERATIONS)
@_post_only
def break_assign_view(request: HttpRequest, break_id: int) -> HttpResponseBase:
    owner = request.POST.get("owner", "").strip()

    def run() -> str:
        b = break_assign(break_id=break_id, owner=owner, actor=_actor(request), now=clock.now())
        return ASSIGNED.format(id=b.pk, owner=b.owner)

    return _done(request, break_id, run)


@role_required(OPERATIONS)
@_post_only
def break_comment_view(request: HttpRequest, break_id: int) -> HttpResponseBase:
    text = request.POST.get("text", "")[:4000]

    def run() -> str:
        break_comment(break_id=break_id, text=text, actor=_actor(request), now=clock.now())
        return COMMENTED.format(id=break_id)

    return _done(request, break_id, run)


@role_required(OPERATIONS)
@_post_only
def break_resolve_view(request: HttpRequest, break_id: int) -> HttpResponseBase:
    reason = request.POST.get("reason", "")[:2000]
    raw = request.POST.get("amount", "").replace(",", "").strip()
    try:
        amount = Decimal(raw) if raw else None
    except InvalidOperation:
        messages.error(request, AMOUNT_INVALID)
        return redirect("settlement-ui-break", break_id=break_id)
    if amount is not None and not amount.is_finite():
        messages.error(request, AMOUNT_INVALID)
        return redirect("settlement-ui-break", break_id=break_id)

    def run() -> str:
        correction = break_resolve(
            break_id=break_id,
            reason=reason,
            amount=amount,
            actor=_actor(request),
            now=clock.now(),
        )
        return RESOLVED.format(
            id=break_id,
            reference=correction.reference,
            amount=display_number(correction.amount),
            asset=correction.asset,
        )

    return _done(request, break_id, run)


@role_required(OPERATIONS)
@_post_only
def break_accept_view(request: HttpRequest, break_id: int) -> HttpResponseBase:
    reason = request.POST.get("reason", "")[:2000]

    def run() -> str:
        break_accept(break_id=break_id, reason=reason, actor=_actor(request), now=clock.now())
        return ACCEPTED.format(id=break_id)

    return _done(request, break_id, run)


# --- dashboard cards ---------------------------------------------------------------------------


def fails_card(request: HttpRequest) -> DashboardCard | None:
    """Open settlement fails: how many, and the oldest intended settle date (one query)."""
    if VIEWER not in user_roles(request.user):
        return None
    # The fails page lists fails as of a date; the card counts them as of the same business date
    # and links there, so the number on the card is the number on the page it opens.
    as_of = business_date()
    stats = Fail.objects.filter(status=Fail.Status.OPEN, intended_settle_date__lte=as_of).aggregate(
        n=Count("id"), oldest=Min("intended_settle_date")
    )
    oldest = stats["oldest"]
    return DashboardCard(
        title="Settlement fails",
        value=f"{stats['n']:,}",
        detail=f"oldest due {oldest.isoformat()}" if oldest else "no open fails",
        link=f"{reverse('settlement-ui-fails')}?as_of={as_of.isoformat()}&status=OPEN",
        tone="bad" if stats["n"] else "ok",
    )


def breaks_card(request: HttpRequest) -> DashboardCard | None:
    """Open reconciliation breaks and how many nobody owns yet (one query)."""
    if VIEWER not in user_roles(request.user):
        return None
    stats = Break.objects.filter(status__in=OPEN_STATUSES).aggregate(
        n=Count("id"), unassigned=Count("id", filter=Q(status=Break.Status.OPEN))
    )
    return DashboardCard(
        title="Reconciliation breaks",
        value=f"{stats['n']:,}",
        detail=f"{stats['unassigned']:,} unassigned" if stats["n"] else "no open breaks",
        link=reverse("settlement-ui-breaks"),
        tone="warn" if stats["n"] else "ok",
    )


# --- the trade timeline ------------------------------------------------------------------------
# Instructions net many trades: the chain's membership intervals say which versions net the
# trade's obligation (``selectors.instructions_netting``); the trade's obligation rides along as
# subqueries on each instruction row.


def settlement_items(trade_id: str) -> list[TimelineItem]:
    """The trade's obligation, each instruction version netting it, and each one's last status."""
    obligation = Obligation.objects.filter(trade_id=trade_id)
    rows = list(
        selectors.instructions_netting(trade_id)
        .annotate(
            obligation_count=selectors.obligations_netted(),
            ob_at=Subquery(obligation.values("updated_at")[:1]),
            ob_version=Subquery(obligation.values("trade_version")[:1]),
            ob_status=Subquery(obligation.values("status")[:1]),
        )
        .order_by("version")
    )
    items: list[TimelineItem] = []
    if rows and rows[0].ob_at is not None:
        cancelled = rows[0].ob_status == Obligation.Status.CANCELLED
        items.append(
            TimelineItem(
                at=rows[0].ob_at,
                stage="settlement",
                what=f"Obligation {'cancelled' if cancelled else 'in force'} (v{rows[0].ob_version})",
                detail=f"netted in chain {rows[0].chain_id}",
                tone=WARN if cancelled else INFO,
                version=rows[0].ob_version,
            )
        )
    link = reverse("settlement-ui-instructions")
    for ins in rows:
        items.extend(_instruction_items(ins, ins.obligation_count, link))
    return items


def _instruction_items(ins: Instruction, obligations: int, link: str) -> list[TimelineItem]:
    detail = (
        f"{ins.instruction_id}: net {display_number(ins.net_quantity)} {ins.instrument}, "
        f"{display_money(ins.net_cash, ins.currency)} {ins.currency}, "
        f"settles {ins.settle_date.isoformat()} "
        f"({obligations} obligation{'' if obligations == 1 else 's'})"
    )
    items = [
        TimelineItem(
            at=ins.instructed_at or ins.created_at,
            stage="settlement",
            what=f"Instruction v{ins.version} ({ins.get_kind_display().lower()})",
            detail=detail,
            link=f"{link}?account={ins.account}&settle_date={ins.settle_date.isoformat()}",
        )
    ]
    if ins.status not in (Instruction.Status.PENDING, Instruction.Status.INSTRUCTED):
        parts = (
            ins.instruction_id,
            ins.reason_code,
            f"settled {display_number(ins.settled_quantity)} / "
            f"{display_money(ins.settled_cash, ins.currency)} {ins.currency}"
            if ins.settled_quantity or ins.settled_cash
            else "",
            f"on {ins.settled_on.isoformat()}" if ins.settled_on else "",
        )
        items.append(
            TimelineItem(
                at=ins.status_changed_at,
                stage="settlement",
                what=f"Instruction v{ins.version} {ins.get_status_display().lower()}",
                detail=" · ".join(p for p in parts if p),
                tone=_INSTRUCTION_TONES.get(ins.status, INFO),
            )
        )
    return items


_INSTRUCTION_TONES: dict[str, str] = {
    Instruction.Status.SETTLED: OK,
    Instruction.Status.PARTIALLY_SETTLED: WARN,
    Instruction.Status.FAILED: BAD,
    Instruction.Status.CANCELLED: WARN,
}
