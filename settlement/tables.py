"""The settlement tables: instructions, fails, payments and breaks.

Pages show money with thousands separators in the currency's minor units and statuses as
badges; exports (``value_<name>``) keep the raw values: exact Decimals, ISO dates, status codes.
Cells are formatted in ``render_<name>`` rather than with template columns (a template per cell
is slow on long pages).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from settlement.models import Break, Instruction, Payment
from settlement.selectors import FailRow, break_age
from trades.selectors import business_date
from trades.tables import display_money, display_number

NUM = {"th": {"class": "num"}, "td": {"class": "num"}}

# Status code -> the badge colour it wears (the classes of static/ui/app.css).
TONES = {
    "PENDING": "pending",
    "INSTRUCTED": "new",
    "MATCHED": "open",
    "SETTLED": "settled",
    "PARTIALLY_SETTLED": "warn",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "OPEN": "open",
    "ASSIGNED": "proposed",
    "RESOLVED": "resolved",
    "ACCEPTED": "approved",
    "AUTO_RESOLVED": "discarded",
    "PDNG": "pending",
    "ACSP": "open",
    "ACSC": "settled",
    "RJCT": "rejected",
}


def badge(code: str, label: str) -> SafeString:
    return format_html(
        '<span class="badge badge-{}" title="{}">{}</span>', TONES.get(code, "new"), code, label
    )


def when(value: datetime | None) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}" if value else "—"


def _day(value: date | None) -> str:
    return value.isoformat() if value else "—"


class InstructionTable(tables.Table):  # type: ignore[misc]
    instruction_id = tables.Column(verbose_name="Instruction", orderable=False)
    version = tables.Column(verbose_name="Ver", attrs=NUM, orderable=False)
    kind = tables.Column(orderable=False)
    status = tables.Column(order_by=("status", "settle_date", "id"))
    account = tables.Column(order_by=("account", "settle_date", "id"))
    counterparty = tables.Column(orderable=False)
    instrument = tables.Column(orderable=False)
    settle_date = tables.Column(verbose_name="Settles", order_by=("settle_date", "id"))
    currency = tables.Column(verbose_name="Ccy", orderable=False)
    net_quantity = tables.Column(verbose_name="Net quantity", attrs=NUM, orderable=False)
    net_cash = tables.Column(verbose_name="Net cash", attrs=NUM, orderable=False)
    settled_quantity = tables.Column(verbose_name="Settled qty", attrs=NUM, orderable=False)
    settled_cash = tables.Column(verbose_name="Settled cash", attrs=NUM, orderable=False)
    reason_code = tables.Column(verbose_name="Reason", orderable=False)

    class Meta:
        template_name = "ui/table.html"
        attrs = {"class": "grid"}
        order_by = ("-settle_date",)
        empty_text = "No instructions match these filters."

    def render_instruction_id(self, value: str) -> SafeString:
        return format_html('<span class="mono">{}</span>', value)

    def render_status(self, record: Instruction) -> SafeString:
        return badge(record.status, record.get_status_display())

    def value_status(self, record: Instruction) -> str:
        return record.status

    def render_settle_date(self, value: date) -> str:
        return _day(value)

    def render_net_quantity(self, value: Decimal) -> str:
        return display_number(value)

    def render_settled_quantity(self, value: Decimal) -> str:
        return display_number(value)

    def render_net_cash(self, record: Instruction) -> str:
        return display_money(record.net_cash, record.currency)

    def render_settled_cash(self, record: Instruction) -> str:
        return display_money(record.settled_cash, record.currency)


class FailTable(tables.Table):  # type: ignore[misc]
    """Rows are ``selectors.FailRow``s: the fail with its age, bucket and penalties to date."""

    instruction_id = tables.Column(accessor="fail__instruction_id", verbose_name="Instruction")
    account = tables.Column(accessor="fail__account")
    counterparty = tables.Column(accessor="fail__counterparty")
    instrument = tables.Column(accessor="fail__instrument")
    reason_code = tables.Column(accessor="fail__reason_code", verbose_name="Reason")
    intended_settle_date = tables.Column(
        accessor="fail__intended_settle_date", verbose_name="Intended"
    )
    failed_quantity = tables.Column(
        accessor="fail__failed_quantity", verbose_name="Unsettled qty", attrs=NUM
    )
    failed_value = tables.Column(accessor="fail__failed_value", verbose_name="Value", attrs=NUM)
    currency = tables.Column(accessor="fail__currency", verbose_name="Ccy")
    status = tables.Column(accessor="fail__status")
    age = tables.Column(verbose_name="Age (bus. days)", attrs=NUM)
    bucket = tables.Column(verbose_name="Bucket")
    penalties = tables.Column(verbose_name="Penalties to date", attrs=NUM)

    class Meta:
        template_name = "ui/table.html"
        attrs = {"class": "grid"}
        orderable = False
        empty_text = "No fails as of this date."

    def render_instruction_id(self, value: str) -> SafeString:
        return format_html('<span class="mono">{}</span>', value)

    def render_status(self, record: FailRow) -> SafeString:
        return badge(
            "FAILED" if record.fail.status == "OPEN" else record.fail.status,
            record.fail.get_status_display(),
        )

    def value_status(self, record: FailRow) -> str:
        return record.fail.status

    def render_intended_settle_date(self, value: date) -> str:
        return _day(value)

    def render_failed_quantity(self, value: Decimal) -> str:
        return display_number(value)

    def render_failed_value(self, record: FailRow) -> str:
        return display_money(record.fail.failed_value, record.fail.currency)

    def render_penalties(self, record: FailRow) -> str:
        return display_money(record.penalties, record.fail.currency)

    def render_bucket(self, value: Any) -> SafeString:
        return format_html('<span class="chip">{}</span>', value)

    def value_bucket(self, record: FailRow) -> str:
        return str(record.bucket) if record.bucket is not None else ""


class PaymentTable(tables.Table):  # type: ignore[misc]
    end_to_end_id = tables.Column(verbose_name="End-to-end id", orderable=False)
    source = tables.Column(verbose_name="Kind", orderable=False)
    account = tables.Column(orderable=False)
    debtor = tables.Column(orderable=False)
    creditor = tables.Column(orderable=False)
    amount = tables.Column(attrs=NUM, orderable=False)
    currency = tables.Column(verbose_name="Ccy", orderable=False)
    value_date = tables.Column(verbose_name="Value date", order_by=("value_date", "id"))
    status = tables.Column(orderable=False)
    reference = tables.Column(orderable=False)
    uetr = tables.Column(verbose_name="UETR", visible=False)
    debtor_account = tables.Column(visible=False)
    creditor_account = tables.Column(visible=False)
    remittance_information = tables.Column(visible=False)

    class Meta:
        template_name = "ui/table.html"
        attrs = {"class": "grid"}
        order_by = ("-value_date",)
        empty_text = "No payments match these filters."

    def render_end_to_end_id(self, value: str) -> SafeString:
        return format_html('<span class="mono">{}</span>', value)

    def render_source(self, record: Payment) -> str:
        return record.get_source_display()

    def value_source(self, record: Payment) -> str:
        return record.source

    def render_value_date(self, value: date) -> str:
        return _day(value)

    def render_amount(self, record: Payment) -> str:
        return display_money(record.amount, record.currency)

    def render_status(self, record: Payment) -> SafeString:
        return badge(record.status, record.get_status_display())

    def value_status(self, record: Payment) -> str:
        return record.status


class BreakTable(tables.Table):  # type: ignore[misc]
    id = tables.Column(verbose_name="#", attrs=NUM)
    account = tables.Column(order_by=("account", "id"))
    asset = tables.Column(orderable=False)
    category = tables.Column(orderable=False)
    status = tables.Column(orderable=False)
    owner = tables.Column(orderable=False)
    opened_as_of = tables.Column(verbose_name="Opened as of", order_by=("opened_as_of", "id"))
    last_seen_as_of = tables.Column(verbose_name="Last seen", orderable=False)
    internal_value = tables.Column(verbose_name="Books", attrs=NUM, orderable=False)
    custodian_value = tables.Column(verbose_name="Custodian", attrs=NUM, orderable=False)
    difference = tables.Column(attrs=NUM, orderable=False)
    amount = tables.Column(verbose_name="Amount", attrs=NUM, orderable=False)
    amount_currency = tables.Column(verbose_name="Ccy", orderable=False)
    age = tables.Column(verbose_name="Age (days)", empty_values=(), attrs=NUM, orderable=False)
    resolution = tables.Column(visible=False)

    class Meta:
        template_name = "ui/table.html"
        attrs = {"class": "grid"}
        order_by = ("-opened_as_of",)
        empty_text = "No breaks match these filters."

    def render_id(self, record: Break) -> SafeString:
        url = reverse("settlement-ui-break", args=[record.pk])
        return format_html('<a href="{}" data-testid="break-link">{}</a>', url, record.pk)

    def value_id(self, record: Break) -> int:
        return record.pk

    def render_category(self, record: Break) -> SafeString:
        return format_html('<span class="tag">{}</span>', record.get_category_display())

    def value_category(self, record: Break) -> str:
        return record.category

    def render_status(self, record: Break) -> SafeString:
        return badge(record.status, record.get_status_display())

    def value_status(self, record: Break) -> str:
        return record.status

    def render_opened_as_of(self, value: date) -> str:
        return _day(value)

    def render_last_seen_as_of(self, value: date) -> str:
        return _day(value)

    def render_internal_value(self, value: Decimal) -> str:
        return display_number(value)

    def render_custodian_value(self, value: Decimal) -> str:
        return display_number(value)

    def render_difference(self, value: Decimal) -> str:
        return display_number(value)

    def render_amount(self, record: Break) -> str:
        return display_money(record.amount, record.amount_currency or "USD")

    def __init__(self, *args: Any, as_of: date | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Ages count to the business date, read once per table rather than once per row.
        self.as_of = as_of or business_date()

    def render_age(self, record: Break) -> int:
        return break_age(record, self.as_of)

    def value_age(self, record: Break) -> int:
        return break_age(record, self.as_of)
