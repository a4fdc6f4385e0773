from django.contrib import admin

from trades.models import (
    Account,
    Book,
    CalendarCoverage,
    Counterparty,
    FxRate,
    Holiday,
    Instrument,
    Market,
    StandingSettlementInstruction,
)


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin[Market]):
    list_display = ("mic", "name", "country", "timezone", "settlement_cycle", "calendar_code")
    list_filter = ("country", "settlement_cycle", "calendar_code")
    search_fields = ("mic", "name")


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin[Holiday]):
    list_display = ("calendar_code", "date", "name")
    list_filter = ("calendar_code",)
    search_fields = ("name",)
    date_hierarchy = "date"


@admin.register(CalendarCoverage)
class CalendarCoverageAdmin(admin.ModelAdmin[CalendarCoverage]):
    list_display = ("calendar_code", "first_day", "last_day")
    search_fields = ("calendar_code",)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin[Instrument]):
    list_display = (
        "isin",
        "symbol",
        "name",
        "currency",
        "asset_class",
        "market",
        "tick_size",
        "status",
        "csdr_class",
        "reference_price",
    )
    list_filter = ("status", "asset_class", "market", "currency", "csdr_class")
    search_fields = ("isin", "symbol", "name")
    list_select_related = ("market",)


@admin.register(Book)
class BookAdmin(admin.ModelAdmin[Book]):
    list_display = ("code", "name", "base_currency", "pnl_method")
    list_filter = ("base_currency", "pnl_method")
    search_fields = ("code", "name")


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin[Account]):
    list_display = ("code", "name", "book", "status", "custodian_account")
    list_filter = ("status", "book")
    search_fields = ("code", "name", "custodian_account")
    list_select_related = ("book",)


class SsiInline(admin.TabularInline[StandingSettlementInstruction, Counterparty]):
    model = StandingSettlementInstruction
    extra = 0


@admin.register(Counterparty)
class CounterpartyAdmin(admin.ModelAdmin[Counterparty]):
    list_display = ("code", "name", "lei", "credit_limit", "status")
    list_filter = ("status",)
    search_fields = ("code", "name", "lei")
    inlines = (SsiInline,)


@admin.register(StandingSettlementInstruction)
class StandingSettlementInstructionAdmin(admin.ModelAdmin[StandingSettlementInstruction]):
    list_display = (
        "counterparty",
        "market",
        "currency",
        "payment_type",
        "custodian_bic",
        "safekeeping_account",
        "cash_account",
        "effective_from",
    )
    list_filter = ("market", "currency", "payment_type")
    search_fields = ("counterparty__code", "counterparty__name", "custodian_bic")
    list_select_related = ("counterparty", "market")


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin[FxRate]):
    list_display = ("as_of", "base_currency", "quote_currency", "rate")
    list_filter = ("base_currency", "quote_currency")
    search_fields = ("base_currency", "quote_currency")
    date_hierarchy = "as_of"
