"""The trade filters, shared by the blotter and ``GET /api/v1/trades/``.

Every filter is on a column of the trade head that an index serves (trade id, account, trade
date) or that is selective enough to scan for (book, instrument, status), so a filtered page
stays fast at millions of trades. Trade id search is a prefix match: it uses the unique index.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from trades.models import Account, Book, Instrument, Trade


def account_choices() -> list[tuple[str, str]]:
    return [
        (code, code) for code in Account.objects.order_by("code").values_list("code", flat=True)
    ]


def book_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in Book.objects.order_by("code").values_list("code", flat=True)]


def instrument_choices() -> list[tuple[str, str]]:
    return [
        (isin, f"{symbol} · {isin}")
        for isin, symbol in Instrument.objects.order_by("symbol").values_list("isin", "symbol")
    ]


class TradeFilter(django_filters.FilterSet):  # type: ignore[misc]
    q = django_filters.CharFilter(
        method="search_trade_id",
        label="Trade ID",
        widget=forms.TextInput(attrs={"placeholder": "Trade ID or prefix", "autofocus": True}),
    )
    account = django_filters.ChoiceFilter(choices=account_choices, empty_label="Any account")
    book = django_filters.ChoiceFilter(choices=book_choices, empty_label="Any book")
    instrument = django_filters.ChoiceFilter(
        choices=instrument_choices, empty_label="Any instrument"
    )
    status = django_filters.ChoiceFilter(choices=Trade.Status.choices, empty_label="Any status")
    trade_date_from = django_filters.DateFilter(
        field_name="trade_date",
        lookup_expr="gte",
        label="Trade date from",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    trade_date_to = django_filters.DateFilter(
        field_name="trade_date",
        lookup_expr="lte",
        label="Trade date to",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = Trade
        fields: list[str] = []

    def search_trade_id(self, queryset: QuerySet[Trade], name: str, value: Any) -> QuerySet[Trade]:
        return queryset.filter(trade_id__startswith=str(value).strip())
