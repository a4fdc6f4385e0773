"""The exception queue's filter bar: status (OPEN by default), account, book, failed rule, age."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.db.models import QuerySet

from compliance.models import ComplianceException
from compliance.rules import REGISTRY
from core import clock

# "Older than": the queue's age is time since the exception was raised.
AGES: dict[str, tuple[str, timedelta]] = {
    "1h": ("older than 1 hour", timedelta(hours=1)),
    "4h": ("older than 4 hours", timedelta(hours=4)),
    "1d": ("older than 1 day", timedelta(days=1)),
    "3d": ("older than 3 days", timedelta(days=3)),
}


def _distinct(field: str) -> list[tuple[str, str]]:
    values = ComplianceException.objects.order_by(field).values_list(field, flat=True).distinct()
    return [(v, v) for v in values]


class ExceptionFilter(django_filters.FilterSet):  # type: ignore[misc]
    status = django_filters.ChoiceFilter(
        choices=ComplianceException.Status.choices, empty_label="Any status"
    )
    account = django_filters.ChoiceFilter(
        choices=lambda: _distinct("account"), empty_label="Any account"
    )
    book = django_filters.ChoiceFilter(choices=lambda: _distinct("book"), empty_label="Any book")
    rule = django_filters.ChoiceFilter(
        choices=[(code, code) for code in REGISTRY],
        empty_label="Any failed rule",
        label="Failed rule",
        method="filter_rule",
    )
    age = django_filters.ChoiceFilter(
        choices=[(key, label) for key, (label, _) in AGES.items()],
        empty_label="Any age",
        label="Age",
        method="filter_age",
    )

    class Meta:
        model = ComplianceException
        fields: list[str] = []

    def filter_rule(
        self, queryset: QuerySet[ComplianceException], name: str, value: str
    ) -> QuerySet[ComplianceException]:
        return queryset.filter(failed_rules__contains=[value])

    def filter_age(
        self, queryset: QuerySet[ComplianceException], name: str, value: str
    ) -> QuerySet[ComplianceException]:
        return queryset.filter(created_at__lte=clock.now() - AGES[value][1])
