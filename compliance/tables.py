"""The exception queue table: what the page shows and what CSV/XLSX exports contain.

Sortable only on the exception's own columns (id, raised, trade, account, book, status); the
awaiting proposal of each row on the page comes from one prefetch query, so a page costs the
same queries whatever its size. Exports take raw values: exact Decimal amounts, ISO times,
status codes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from compliance.models import ComplianceException, ExceptionProposal
from core import clock
from trades.tables import display_money

NUM = {"th": {"class": "num"}, "td": {"class": "num"}}


def net_amount(exception: ComplianceException) -> Decimal | None:
    """The captured version's net amount, exact, as the payload carries it (a string)."""
    try:
        return Decimal(str(exception.payload["net_amount"]))
    except (KeyError, TypeError, InvalidOperation):
        return None


def shown_net(exception: ComplianceException) -> str:
    amount = net_amount(exception)
    currency = str(exception.payload.get("currency", ""))
    return "" if amount is None else f"{display_money(amount, currency)} {currency}"


def age(since: datetime, now: datetime | None = None) -> str:
    """A short age: 45m, 3h 12m, 2d 4h (a future time, e.g. a clock skew, shows as 0m)."""
    seconds = max(int(((now or clock.now()) - since).total_seconds()), 0)
    days, rest = divmod(seconds, 86_400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def awaiting(exception: ComplianceException) -> ExceptionProposal | None:
    """The ACTIVE proposal prefetched by the queue (``active``), if any."""
    active: list[ExceptionProposal] = getattr(exception, "active", [])
    return active[0] if active else None


def status_badge(status: str, label: str) -> SafeString:
    return format_html('<span class="badge badge-{}">{}</span>', status.lower(), label)


class ExceptionTable(tables.Table):  # type: ignore[misc]
    id = tables.Column(verbose_name="#", attrs=NUM)
    created_at = tables.Column(verbose_name="Raised")
    age = tables.Column(empty_values=(), orderable=False)
    trade_id = tables.Column(verbose_name="Trade")
    trade_version = tables.Column(verbose_name="v", orderable=False, attrs=NUM)
    account = tables.Column()
    book = tables.Column()
    failed_rules = tables.Column(verbose_name="Failed rules", orderable=False)
    net = tables.Column(empty_values=(), verbose_name="Net amount", orderable=False, attrs=NUM)
    currency = tables.Column(empty_values=(), orderable=False, visible=False)
    status = tables.Column()
    proposal = tables.Column(empty_values=(), verbose_name="Awaiting", orderable=False)

    class Meta:
        template_name = "ui/table.html"
        attrs = {"class": "grid", "data-testid": "exceptions"}
        row_attrs = {"data-exception-id": lambda record: record.pk}
        order_by = ("-created_at", "-id")
        empty_text = "No exceptions match these filters."

    def render_id(self, record: ComplianceException) -> SafeString:
        url = reverse("compliance-exception-detail", args=[record.pk])
        return format_html('<a href="{}">{}</a>', url, record.pk)

    def value_id(self, record: ComplianceException) -> int:
        return record.pk

    # Plain columns formatted here: DateTimeColumn compiles a template per cell.
    def render_created_at(self, value: datetime) -> str:
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}"

    def value_created_at(self, record: ComplianceException) -> datetime:
        return record.created_at

    def render_age(self, record: ComplianceException) -> str:
        return age(record.created_at, record.resolved_at)

    def value_age(self, record: ComplianceException) -> str:
        return age(record.created_at, record.resolved_at)

    def render_trade_id(self, value: str) -> SafeString:
        return format_html('<a class="mono" href="{}">{}</a>', f"/trades/{value}/", value)

    def value_trade_id(self, record: ComplianceException) -> str:
        return record.trade_id

    def render_failed_rules(self, value: list[str]) -> SafeString:
        return format_html_join(" ", '<span class="tag">{}</span>', ((code,) for code in value))

    def value_failed_rules(self, record: ComplianceException) -> str:
        return " ".join(record.failed_rules)

    def render_net(self, record: ComplianceException) -> str:
        return shown_net(record)

    def value_net(self, record: ComplianceException) -> Decimal | None:
        return net_amount(record)

    def value_currency(self, record: ComplianceException) -> str:
        return str(record.payload.get("currency", ""))

    def render_status(self, record: ComplianceException) -> SafeString:
        return status_badge(record.status, record.get_status_display())

    def value_status(self, record: ComplianceException) -> str:
        return record.status

    def render_proposal(self, record: ComplianceException) -> SafeString | str:
        proposal = awaiting(record)
        if proposal is None:
            return "—"
        return format_html(
            '<span class="badge badge-proposed">{}</span> by {}',
            proposal.get_action_display(),
            proposal.proposed_by_name,
        )

    def value_proposal(self, record: ComplianceException) -> str:
        proposal = awaiting(record)
        return "" if proposal is None else f"{proposal.action} by {proposal.proposed_by_name}"
