"""The shared UI helpers: roles, exports and SVG charts."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from openpyxl import load_workbook

from backoffice import ui
from backoffice.charts import bar_chart, format_number, line_chart
from backoffice.roles import ADMIN, APPROVER, NOT_ALLOWED, OPERATIONS, VIEWER
from tests.ui.factories import demo_users

ROWS: list[list[Any]] = [
    ["trade", "amount", "when", "day"],
    ["T1", Decimal("1234567.89"), datetime(2026, 11, 25, 15, 0, tzinfo=UTC), date(2026, 11, 27)],
    ["T2", Decimal("12345678901234567.25"), None, None],
]


@pytest.mark.django_db
def test_roles_include_the_ones_below_them():
    users = demo_users()
    assert ui.user_roles(users["viewer"]) == {VIEWER}
    assert ui.user_roles(users["analyst"]) == {VIEWER, OPERATIONS}
    assert ui.user_roles(users["approver"]) == {VIEWER, OPERATIONS, APPROVER}
    assert ui.user_roles(users["admin"]) == {VIEWER, OPERATIONS, APPROVER, ADMIN}
    assert ui.user_roles(AnonymousUser()) == frozenset()


@pytest.mark.django_db
def test_role_required_renders_the_not_allowed_page_with_403():
    users = demo_users()

    @ui.role_required(VIEWER, write_role=APPROVER)
    def view(request):
        from django.http import HttpResponse

        return HttpResponse("ok")

    factory = RequestFactory()
    read = factory.get("/x")
    read.user = users["analyst"]
    write = factory.post("/x")
    write.user = users["analyst"]
    allowed: Any = view(read)
    assert allowed.content == b"ok"
    denied: Any = view(write)
    assert denied.status_code == 403
    assert NOT_ALLOWED.format(role="approver").encode() in denied.content


def test_csv_export_keeps_amounts_exact_and_dates_iso():
    response: Any = ui.export_rows(rows=ROWS, fmt=ui.CSV, filename="x")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[1] == ["T1", "1234567.89", "2026-11-25T15:00:00+00:00", "2026-11-27"]
    assert lines[2] == ["T2", "12345678901234567.25", "", ""]
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'


def test_xlsx_export_writes_numbers_and_keeps_long_amounts_exact_as_text():
    response: Any = ui.export_rows(rows=ROWS, fmt=ui.XLSX, filename="x")
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][1] == pytest.approx(1234567.89)
    assert rows[1][2] == datetime(2026, 11, 25, 15, 0)  # UTC wall-clock: Excel has no zones
    assert rows[2][1] == "12345678901234567.25"  # past 15 digits Excel would round: kept as text


def test_an_unknown_export_format_is_refused():
    with pytest.raises(ValueError, match="unknown export format"):
        ui.export_rows(rows=ROWS, fmt="pdf", filename="x")


def test_bar_chart_draws_losses_left_of_the_zero_axis_and_escapes_labels():
    svg = bar_chart(
        [("EQ-US", Decimal("1500.50")), ("<MACRO>", Decimal("-500"))], title="P&L", signed=True
    )
    assert svg.startswith("<svg")
    assert "<title>P&amp;L</title>" in svg
    assert "&lt;MACRO&gt;" in svg
    assert "<MACRO>" not in svg
    assert 'fill="#c0392b"' in svg
    assert 'fill="#2e7d4f"' in svg
    assert "1,500.50" in svg


def test_charts_say_so_when_there_is_no_data():
    assert "No data" in bar_chart([], title="t")
    assert "No data" in line_chart([], title="t")


def test_line_chart_draws_one_line_per_series():
    svg = line_chart(
        [
            ("EQ-US", [(date(2026, 11, 23), Decimal(10)), (date(2026, 11, 24), Decimal(-5))]),
            ("MACRO", [(date(2026, 11, 24), 3)]),
        ],
        title="P&L over time",
    )
    assert svg.count("<polyline") == 2
    assert "2026-11-23" in svg
    assert "2026-11-24" in svg


def test_numbers_are_formatted_as_stored():
    assert (format_number(Decimal("1234.50")), format_number(1234)) == ("1,234.50", "1,234")
