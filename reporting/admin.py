"""Read-only admin views of the reporting tables: every write goes through ``services``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from reporting.models import (
    CollateralBalance,
    DailyClose,
    EodRun,
    MarginCall,
    MarginSnapshot,
    PnlSnapshot,
    Position,
)


class ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Position)
class PositionAdmin(ReadOnly):
    list_display = (
        "account",
        "instrument",
        "book",
        "quantity",
        "mark_price",
        "total",
        "base_total",
    )
    list_filter = ("book", "pnl_method", "mark_source")
    search_fields = ("account", "instrument")


@admin.register(PnlSnapshot)
class PnlSnapshotAdmin(ReadOnly):
    list_display = ("business_date", "account", "instrument", "quantity", "total", "base_total")
    list_filter = ("business_date", "book")
    search_fields = ("account", "instrument")


@admin.register(MarginSnapshot)
class MarginSnapshotAdmin(ReadOnly):
    list_display = ("business_date", "account", "equity", "requirement", "excess", "margin_call")
    list_filter = ("business_date", "book", "binding")
    search_fields = ("account",)


@admin.register(MarginCall)
class MarginCallAdmin(ReadOnly):
    list_display = ("reference", "account", "amount", "currency", "value_date", "payment_status")
    list_filter = ("business_date", "payment_status")


@admin.register(CollateralBalance)
class CollateralBalanceAdmin(ReadOnly):
    list_display = ("account", "amount", "currency", "updated_at")


@admin.register(DailyClose)
class DailyCloseAdmin(ReadOnly):
    list_display = ("isin", "business_date", "price", "currency", "as_of")
    list_filter = ("business_date",)
    search_fields = ("isin",)


@admin.register(EodRun)
class EodRunAdmin(ReadOnly):
    list_display = ("business_date", "positions", "accounts", "margin_calls", "last_run_at")
