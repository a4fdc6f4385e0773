"""The reporting tables: positions, P&L rows and totals, margin and margin calls.

Pages show amounts with thousands separators and the currency's minor units; exports take each
column's raw value (exact Decimals, ISO dates, codes), so a CSV foots to the cent with the
database. Every table reads one queryset or list: no per-row queries.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_tables2 as tables
from django.utils.html import format_html
from django.utils.safestring import SafeString

from reporting.models import MarginCall, MarginSnapshot, Position
from trades.tables import display_money, display_number

NUM = {"th": {"class": "num"}, "td": {"class": "num"}}
TEMPLATE = "ui/table.html"


def signed(value: Decimal | None, currency: str) -> SafeString | str:
    """An amount, red when negative (the trades pages' ``num`` cell does the alignment)."""
    if value is None:
        return "—"
    text = display_money(value, currency)
    return (
        format_html('<span class="neg" style="color: var(--bad)">{}</span>', text)
        if value < 0
        else text
    )


def average_cost(quantity: Decimal, cost_basis: Decimal) -> Decimal | None:
    """Cost per unit of an open position (None when flat: nothing is held at a cost)."""
    return None if quantity == 0 else abs(cost_basis / quantity)


class _Money(tables.Column):  # type: ignore[misc]
    """An amount in the row's ``currency_field``: formatted on the page, exact in exports."""

    def __init__(self, header: str, *, currency_field: str = "currency", **kwargs: Any) -> None:
        super().__init__(verbose_name=header, attrs=NUM, **kwargs)
        self.currency_field = currency_field

    def render(self, value: Decimal, record: Any) -> SafeString | str:
        return signed(value, _field(record, self.currency_field))

    def value(self, value: Decimal) -> Decimal:
        return value


class _Number(tables.Column):  # type: ignore[misc]
    """A quantity or price: the table's ``render_<name>`` formats it; exports stay exact."""

    def __init__(self, header: str, **kwargs: Any) -> None:
        super().__init__(verbose_name=header, attrs=NUM, **kwargs)

    def value(self, value: Any) -> Any:
        return value


def _field(record: Any, name: str) -> Any:
    return record[name] if isinstance(record, dict) else getattr(record, name)


class BookedTable(tables.Table):  # type: ignore[misc]
    """A position's figures, live (``Position``) or at a business date's close (``PnlSnapshot``)."""

    book = tables.Column("Book")
    account = tables.Column("Account")
    instrument = tables.Column("Instrument")
    currency = tables.Column("Ccy")
    quantity = _Number("Quantity")
    average_cost = _Number("Avg cost", empty_values=(), orderable=False)
    mark_price = _Number("Mark")
    market_value = _Money("Market value")
    realized = _Money("Realized")
    unrealized = _Money("Unrealized")
    fees = _Money("Fees")
    total = _Money("Total")
    base_currency = tables.Column("Base")
    base_market_value = _Money("Base MV", currency_field="base_currency")
    base_total = _Money("Base total", currency_field="base_currency")

    class Meta:
        template_name = TEMPLATE
        attrs = {"class": "grid", "data-testid": "booked"}
        order_by = ("book", "account", "instrument")
        empty_text = "No positions match."

    def render_quantity(self, value: Decimal) -> str:
        return display_number(value)

    def value_quantity(self, value: Decimal) -> Decimal:
        return value

    def render_average_cost(self, record: Any) -> str:
        return display_number(self.value_average_cost(record), places=4)

    def value_average_cost(self, record: Any) -> Decimal | None:
        return average_cost(record.quantity, record.cost_basis)

    def render_mark_price(self, value: Decimal, record: Any) -> SafeString:
        return format_html(
            '{} <span class="tag">{}</span>',
            display_number(value, min_places=2),
            record.mark_source,
        )


class PositionTable(BookedTable):
    class Meta(BookedTable.Meta):
        model = Position
        fields: list[str] = []


class MarginTable(tables.Table):  # type: ignore[misc]
    business_date = tables.Column("Date")
    account = tables.Column("Account")
    book = tables.Column("Book")
    base_currency = tables.Column("Ccy")
    gross_exposure = _Money("Gross exposure", currency_field="base_currency")
    net_exposure = _Money("Net exposure", currency_field="base_currency")
    haircut_requirement = _Money("Haircut req.", currency_field="base_currency")
    var_99_1d = _Money("VaR 99% 1d", currency_field="base_currency")
    binding = tables.Column("Binding")
    requirement = _Money("Requirement", currency_field="base_currency")
    equity = _Money("Equity", currency_field="base_currency")
    excess = _Money("Excess / deficit", currency_field="base_currency")
    margin_call = _Money("Margin call", currency_field="base_currency")
    status = tables.Column("Status", empty_values=(), orderable=False)

    class Meta:
        model = MarginSnapshot
        fields: list[str] = []
        template_name = TEMPLATE
        attrs = {"class": "grid", "data-testid": "margin"}
        orderable = False
        empty_text = "No margin has been computed yet: end of day writes it."

    def render_business_date(self, value: Any) -> str:
        return str(value.isoformat())

    def render_status(self, record: MarginSnapshot) -> SafeString:
        ok = record.excess >= 0
        return format_html(
            '<span class="badge badge-{}">{}</span>',
            "ok" if ok else "failed",
            self.value_status(record),
        )

    def value_status(self, record: MarginSnapshot) -> str:
        return "EXCESS" if record.excess >= 0 else "DEFICIT"


class MarginCallTable(tables.Table):  # type: ignore[misc]
    reference = tables.Column("Reference")
    business_date = tables.Column("Date")
    account = tables.Column("Account")
    amount = _Money("Amount")
    currency = tables.Column("Ccy")
    value_date = tables.Column("Value date")
    payment_status = tables.Column("Payment")
    payment_reference = tables.Column("Payment ref.")

    class Meta:
        model = MarginCall
        fields: list[str] = []
        template_name = TEMPLATE
        attrs = {"class": "grid", "data-testid": "margin-calls"}
        orderable = False
        empty_text = "No margin calls."

    def render_business_date(self, value: Any) -> str:
        return str(value.isoformat())

    def render_value_date(self, value: Any) -> str:
        return str(value.isoformat())

    def render_payment_status(self, value: str, record: MarginCall) -> SafeString:
        tone = "ok" if value == MarginCall.PaymentStatus.CREATED else "warn"
        return format_html(
            '<span class="badge badge-{}">{}</span>', tone, record.get_payment_status_display()
        )

    def value_payment_status(self, value: str) -> str:
        return value
