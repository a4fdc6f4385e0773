"""Dead letters in the UI: the list, one letter with its original message, replay and discard.

Anyone with the viewer role reads; replaying or discarding needs the operations role and is
audited (``dead_letter_replay_by_user``). Both actions confirm on a page of their own first.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import django_filters
import django_tables2 as tables
from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from backoffice.audit.models import AuditEntry
from backoffice.roles import OPERATIONS, VIEWER
from backoffice.streaming import services
from backoffice.streaming.models import DeadLetter
from backoffice.ui import configure_table, export_format, export_table, role_required, user_roles
from core import clock

REPLAYED = "Dead letter {id} was replayed to {topic}: its stage will apply it once."
DISCARDED = "Dead letter {id} was discarded: it will not be replayed."
NOT_NEW = "Dead letter {id} is already {status}: nothing was done."


def _distinct(field: str) -> list[tuple[str, str]]:
    values = DeadLetter.objects.order_by(field).values_list(field, flat=True).distinct()
    return [(v, v) for v in values]


class DeadLetterFilter(django_filters.FilterSet):  # type: ignore[misc]
    status = django_filters.ChoiceFilter(
        choices=DeadLetter.Status.choices, empty_label="Any status"
    )
    stage = django_filters.ChoiceFilter(choices=lambda: _distinct("stage"), empty_label="Any stage")
    error_class = django_filters.ChoiceFilter(
        choices=lambda: _distinct("error_class"), empty_label="Any error", label="Error"
    )
    q = django_filters.CharFilter(
        field_name="reason",
        lookup_expr="icontains",
        label="Reason contains",
        widget=forms.TextInput(attrs={"placeholder": "Reason contains"}),
    )

    class Meta:
        model = DeadLetter
        fields: list[str] = []


class DeadLetterTable(tables.Table):  # type: ignore[misc]
    id = tables.Column(verbose_name="#", attrs={"th": {"class": "num"}, "td": {"class": "num"}})
    created_at = tables.Column(verbose_name="Received")
    stage = tables.Column(orderable=False)
    source = tables.Column(empty_values=(), verbose_name="Source", orderable=False)
    error_class = tables.Column(verbose_name="Error", orderable=False)
    reason = tables.Column(orderable=False, attrs={"td": {"class": "wrap"}})
    status = tables.Column(orderable=False)
    replayed_at = tables.Column(verbose_name="Replayed", orderable=False)

    class Meta:
        template_name = "ui/table.html"
        attrs = {"class": "grid"}
        order_by = ("-id",)
        empty_text = "No dead letters match these filters."

    def render_id(self, record: DeadLetter) -> SafeString:
        url = reverse("dead-letter-detail", args=[record.pk])
        return format_html('<a href="{}">{}</a>', url, record.pk)

    def value_id(self, record: DeadLetter) -> int:
        return record.pk

    def render_source(self, record: DeadLetter) -> SafeString:
        return format_html(
            '<span class="mono">{}[{}]@{}</span>',
            record.source_topic,
            record.partition,
            record.offset,
        )

    def value_source(self, record: DeadLetter) -> str:
        return f"{record.source_topic}[{record.partition}]@{record.offset}"

    # Plain columns with a format here: django-tables2's DateTimeColumn compiles a template per cell.
    def render_created_at(self, value: datetime) -> str:
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}"

    def render_replayed_at(self, value: datetime) -> str:
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}"

    def value_created_at(self, record: DeadLetter) -> Any:
        return record.created_at

    def value_replayed_at(self, record: DeadLetter) -> Any:
        return record.replayed_at

    def value_reason(self, record: DeadLetter) -> str:
        return record.reason

    def render_reason(self, value: str) -> SafeString:
        short = value if len(value) <= 140 else value[:139] + "…"
        return format_html('<span title="{}">{}</span>', value, short)

    def render_status(self, record: DeadLetter) -> SafeString:
        return format_html(
            '<span class="badge badge-{}">{}</span>',
            record.status.lower(),
            record.get_status_display(),
        )

    def value_status(self, record: DeadLetter) -> str:
        return record.status


def dead_letters() -> QuerySet[DeadLetter]:
    # The original bytes can be large: the list never loads them.
    return DeadLetter.objects.defer("key", "value", "headers").order_by("-id")


@role_required(VIEWER)
def dead_letter_list(request: HttpRequest) -> HttpResponseBase:
    data = request.GET.copy()
    data.setdefault("status", DeadLetter.Status.NEW)  # open work first; "Any status" shows all
    filters = DeadLetterFilter(data, queryset=dead_letters())
    table = DeadLetterTable(filters.qs if filters.is_valid() else DeadLetter.objects.none())
    fmt = export_format(request)
    if fmt is not None:
        configure_table(request, table, paginate=False)
        return export_table(table, fmt=fmt, filename=f"dead-letters-{clock.now():%Y%m%d}")
    configure_table(request, table)
    return render(request, "streaming/dead_letter_list.html", {"filters": filters, "table": table})


def original_message(letter: DeadLetter) -> dict[str, Any]:
    """The original bytes as pretty JSON when they are JSON, as text, or as base64."""
    raw = bytes(letter.value)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"kind": "base64", "text": base64.b64encode(raw).decode("ascii"), "size": len(raw)}
    try:
        return {"kind": "json", "text": json.dumps(json.loads(text), indent=2), "size": len(raw)}
    except json.JSONDecodeError:
        return {"kind": "text", "text": text, "size": len(raw)}


@role_required(VIEWER)
def dead_letter_detail(request: HttpRequest, pk: int) -> HttpResponseBase:
    letter = get_object_or_404(DeadLetter, pk=pk)
    history = AuditEntry.objects.filter(object_type=services.DEAD_LETTER, object_id=str(pk))
    return render(
        request,
        "streaming/dead_letter_detail.html",
        {
            "letter": letter,
            "key": bytes(letter.key).decode("utf-8", "replace") if letter.key is not None else None,
            "original": original_message(letter),
            "history": history.order_by("at", "id"),
            "can_act": OPERATIONS in user_roles(request.user),
        },
    )


@role_required(OPERATIONS)
def dead_letter_replay(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _act(request, pk, action="replay")


@role_required(OPERATIONS)
def dead_letter_discard(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _act(request, pk, action="discard")


def _act(request: HttpRequest, pk: int, *, action: str) -> HttpResponseBase:
    """GET shows the confirmation page; POST does it (compare-and-swap, audited)."""
    letter = get_object_or_404(DeadLetter.objects.defer("value"), pk=pk)
    if request.method != "POST":
        return render(
            request, "streaming/dead_letter_confirm.html", {"letter": letter, "action": action}
        )
    reason = request.POST.get("reason", "").strip()[:500]
    perform = (
        services.dead_letter_replay_by_user
        if action == "replay"
        else services.dead_letter_discard_by_user
    )
    user: Any = request.user
    if perform(dead_letter_id=pk, actor=user, now=clock.now(), reason=reason):
        done = REPLAYED if action == "replay" else DISCARDED
        messages.success(request, done.format(id=pk, topic=letter.source_topic))
    else:
        letter.refresh_from_db(fields=["status"])
        messages.warning(request, NOT_NEW.format(id=pk, status=letter.get_status_display().lower()))
    return redirect("dead-letter-detail", pk=pk)
