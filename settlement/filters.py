"""The settlement pages' filters: instructions, fails, payments and breaks.

Every filter is on a column an index serves (status, account, settle date) or one selective
enough to scan for; the account choices are the reference data's accounts (one query).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from settlement.models import Break, Instruction, Payment
from settlement.models.breaks import OPEN_STATUSES
from trades.filters import account_choices
from trades.selectors import business_date

DATE = forms.DateInput(attrs={"type": "date"})
OPEN = "open"  # the breaks page's default: open or assigned
BUCKETS = [("1", "1 day"), ("2-3", "2 to 3 days"), ("4-5", "4 to 5 days"), (">5", "over 5 days")]


class InstructionFilter(django_filters.FilterSet):  # type: ignore[misc]
    status = django_filters.ChoiceFilter(
        choices=Instruction.Status.choices, empty_label="Any status"
    )
    account = django_filters.ChoiceFilter(choices=account_choices, empty_label="Any account")
    settle_date = django_filters.DateFilter(label="Settle date", widget=DATE)
    kind = django_filters.ChoiceFilter(choices=Instruction.Kind.choices, empty_label="Any kind")

    class Meta:
        model = Instruction
        fields: list[str] = []


class FailFilter(forms.Form):
    """The fails list is computed as of a date (age, bucket, penalties), not a queryset filter."""

    as_of = forms.DateField(label="As of", required=False, widget=DATE)
    account = forms.ChoiceField(required=False)
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any status"),
            ("OPEN", "Open"),
            ("SETTLED", "Settled"),
            ("CANCELLED", "Cancelled"),
        ],
    )
    bucket = forms.ChoiceField(required=False, choices=[("", "Any age"), *BUCKETS], label="Age")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        account = self.fields["account"]
        assert isinstance(account, forms.ChoiceField)
        account.choices = [("", "Any account"), *account_choices()]

    @property
    def form(self) -> FailFilter:  # ui/filters.html draws ``filters.form``
        return self

    def day(self) -> date:
        return (self.cleaned_data.get("as_of") if self.is_valid() else None) or business_date()


class PaymentFilter(django_filters.FilterSet):  # type: ignore[misc]
    account = django_filters.ChoiceFilter(choices=account_choices, empty_label="Any account")
    kind = django_filters.ChoiceFilter(
        field_name="source",
        choices=Payment.Source.choices,
        empty_label="Any kind",
        label="Kind",
    )
    status = django_filters.ChoiceFilter(choices=Payment.Status.choices, empty_label="Any status")
    value_date = django_filters.DateFilter(label="Value date", widget=DATE)

    class Meta:
        model = Payment
        fields: list[str] = []


class BreakFilter(django_filters.FilterSet):  # type: ignore[misc]
    status = django_filters.ChoiceFilter(
        choices=[(OPEN, "Open or assigned"), *Break.Status.choices],
        empty_label="Any status",
        method="filter_status",
    )
    category = django_filters.ChoiceFilter(
        choices=Break.Category.choices, empty_label="Any category"
    )
    min_age = django_filters.NumberFilter(
        label="Age at least (days)",
        method="filter_min_age",
        min_value=0,
        widget=forms.NumberInput(attrs={"min": 0, "placeholder": "days", "style": "width:6rem"}),
    )
    account = django_filters.ChoiceFilter(choices=account_choices, empty_label="Any account")
    owner = django_filters.CharFilter(
        widget=forms.TextInput(attrs={"placeholder": "username"}), label="Owner"
    )

    class Meta:
        model = Break
        fields: list[str] = []

    def __init__(self, *args: Any, as_of: date | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.as_of = as_of  # ages count to the business date; read when first needed

    def filter_status(self, queryset: QuerySet[Break], name: str, value: Any) -> QuerySet[Break]:
        if value == OPEN:
            return queryset.filter(status__in=OPEN_STATUSES)
        return queryset.filter(status=value)

    def filter_min_age(self, queryset: QuerySet[Break], name: str, value: Any) -> QuerySet[Break]:
        # Age counts from the as-of date the break opened (``selectors.break_age``).
        limit = (self.as_of or business_date()) - timedelta(days=int(value))
        return queryset.filter(Q(opened_as_of__lte=limit))
