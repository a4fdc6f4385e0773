"""The reporting filters: positions and P&L rows by account, book and instrument, at a date.

Choice lists come from the reference data (``trades.filters``), one query each.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from reporting.models import MarginSnapshot, Position
from trades.filters import account_choices, book_choices, instrument_choices

GROUP_CHOICES = (("book", "Book"), ("account", "Account"), ("instrument", "Instrument"))


def _date(label: str, help_text: str) -> django_filters.DateFilter:
    return django_filters.DateFilter(
        method="keep",
        label=label,
        widget=forms.DateInput(attrs={"type": "date", "title": help_text}),
    )


class PositionFilter(django_filters.FilterSet):  # type: ignore[misc]
    account = django_filters.ChoiceFilter(choices=account_choices, empty_label="Any account")
    book = django_filters.ChoiceFilter(choices=book_choices, empty_label="Any book")
    instrument = django_filters.ChoiceFilter(
        choices=instrument_choices, empty_label="Any instrument"
    )

    class Meta:
        model = Position
        fields: list[str] = []

    def keep(self, queryset: QuerySet[Any], name: str, value: Any) -> QuerySet[Any]:
        """Date fields choose which rows are read (the view's job), not a filter on them."""
        return queryset


class PnlFilter(PositionFilter):
    """Also a business date (its end-of-day snapshot; none: live) and the totals' grouping."""

    date = _date("Business date", "Empty: live P&L")
    group = django_filters.ChoiceFilter(
        method="keep", choices=GROUP_CHOICES, empty_label=None, label="Totals by"
    )


class MarginFilter(django_filters.FilterSet):  # type: ignore[misc]
    account = django_filters.ChoiceFilter(choices=account_choices, empty_label="Any account")
    date = _date("Business date", "Empty: each account's latest")

    class Meta:
        model = MarginSnapshot
        fields: list[str] = []

    def keep(self, queryset: QuerySet[Any], name: str, value: Any) -> QuerySet[Any]:
        return queryset
