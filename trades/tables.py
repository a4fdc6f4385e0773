"""The trade blotter table: its columns, what the page shows and what CSV/XLSX exports contain.

Only columns of the trade head with an index behind them are sortable (trade id, trade date,
account, last change), so sorting stays fast at millions of trades. Exports take each column's
raw value (exact Decimals, ISO dates, status codes) and include a few columns the page leaves
out. The page itself is drawn by ``trades/blotter_table.html`` straight from each row's fields:
django-tables2's per-cell rendering costs milliseconds a row, too slow for 250-row pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import django_tables2 as tables
from django_tables2.data import TableQuerysetData

from backoffice.money import UnknownCurrencyError, minor_units
from trades.models import Trade, TradeVersion
from trades.selectors_blotter import BlotterRow, blotter_rows, for_page, iter_blotter_rows


def display_number(value: Decimal | None, *, places: int | None = None, min_places: int = 0) -> str:
    """Thousands separators; ``places`` fixes the decimals, else trailing zeros are dropped down
    to ``min_places`` (prices keep two: 353.20, not 353.2)."""
    if value is None:
        return ""
    if places is not None:
        return f"{value:,.{places}f}"
    exponent = value.normalize().as_tuple().exponent
    decimals = max(min_places, -exponent) if isinstance(exponent, int) else min_places
    return f"{value:,.{decimals}f}"


def display_money(value: Decimal | None, currency: str) -> str:
    """An amount with its currency's minor units (JPY 0, USD 2) and thousands separators."""
    try:
        places = minor_units(currency)
    except UnknownCurrencyError:
        places = 2
    return display_number(value, places=places)


def shown_version(version: TradeVersion) -> dict[str, str]:
    """A version's numbers as the pages show them."""
    return {
        "quantity": display_number(version.quantity),
        "price": display_number(version.price, min_places=2),
        "gross": display_money(version.gross_amount, version.currency),
        "fees": display_money(version.fees, version.currency),
        "net": display_money(version.net_amount, version.currency),
    }


@dataclass(frozen=True, slots=True)
class ShownRow:
    """A blotter row with its numbers formatted once, for the page."""

    trade: Trade
    version: TradeVersion | None
    shown: dict[str, str]


def shown_rows(rows: list[BlotterRow]) -> list[ShownRow]:
    return [
        ShownRow(row.trade, row.version, shown_version(row.version) if row.version else {})
        for row in rows
    ]


class BlotterData(TableQuerysetData):  # type: ignore[misc]
    """Trade heads as the table's data: sorting happens on the queryset (indexed); each slice the
    paginator takes is read the cheap way (``for_page``) and comes back with its current
    versions (one more query). Iterating, as exports do, streams every row in chunks."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return shown_rows(blotter_rows(list(for_page(self.data)[key])))
        return shown_rows(blotter_rows([self.data[key]]))[0]

    def __iter__(self) -> Any:
        return iter_blotter_rows(self.data)


NUM = {"th": {"class": "num"}, "td": {"class": "num"}}


def _head(attribute: str, header: str, **kwargs: Any) -> tables.Column:
    kwargs.setdefault("orderable", False)
    return tables.Column(accessor=f"trade__{attribute}", verbose_name=header, **kwargs)


def _version(attribute: str, header: str, **kwargs: Any) -> tables.Column:
    return tables.Column(
        accessor=f"version__{attribute}", verbose_name=header, orderable=False, **kwargs
    )


class TradeTable(tables.Table):  # type: ignore[misc]
    # The page's columns, in the order trades/blotter_table.html draws them.
    trade_id = _head("trade_id", "Trade ID", orderable=True, order_by=("trade_id",))
    version = _head("current_version", "Ver", attrs=NUM)
    status = _head("status", "Status")
    # Orders follow the indexes (trade_date, account) and (account, instrument); id breaks ties.
    trade_date = _head(
        "trade_date", "Trade date", orderable=True, order_by=("trade_date", "account", "id")
    )
    account = _head("account", "Account", orderable=True, order_by=("account", "instrument", "id"))
    book = _head("book", "Book")
    instrument = _head("instrument", "Instrument")
    side = _version("side", "Side")
    quantity = _version("quantity", "Quantity", attrs=NUM)
    price = _version("price", "Price", attrs=NUM)
    currency = _version("currency", "Ccy")
    net_amount = _version("net_amount", "Net amount", attrs=NUM)
    counterparty = _version("counterparty", "Counterparty")
    settle_date = _version("settle_date", "Settles")
    updated_at = _head("updated_at", "Last change", orderable=True, order_by=("updated_at", "id"))
    # Exported, not shown.
    symbol = _version("symbol", "Symbol", visible=False)
    gross_amount = _version("gross_amount", "Gross", visible=False)
    fees = _version("fees", "Fees", visible=False)
    trade_time = _version("trade_time", "Trade time", visible=False)
    venue = _version("venue", "Venue", visible=False)
    trader = _version("trader", "Trader", visible=False)
    payment_type = _version("payment_type", "Payment", visible=False)

    class Meta:
        template_name = "trades/blotter_table.html"
        attrs = {"class": "grid"}
        order_by = ("-updated_at",)
        empty_text = "No trades match these filters."
        sequence = (
            "trade_id",
            "version",
            "status",
            "trade_date",
            "account",
            "book",
            "instrument",
            "side",
            "quantity",
            "price",
            "currency",
            "net_amount",
            "counterparty",
            "settle_date",
            "updated_at",
            "...",
        )

    # Raw values for exports: codes, not labels (the status "CANCELLED", not "Cancelled").
    def value_status(self, record: BlotterRow) -> str:
        return record.trade.status

    def value_side(self, record: BlotterRow) -> str:
        return record.version.side if record.version else ""
