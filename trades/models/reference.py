"""Reference data: markets and their holiday calendars, instruments, books, accounts,
counterparties with their standing settlement instructions, and FX rates.

Every natural key is a ``UniqueConstraint`` and every sign, state and code format is a
``CheckConstraint``, so a bad row is refused by PostgreSQL whichever path wrote it (loader, admin,
a hand-written SQL fix). Money, prices and rates are ``NUMERIC`` at the scales ``backoffice.money``
states (prices 8 places, money 2, FX rates 10).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

CURRENCY_PATTERN = r"^[A-Z]{3}$"
MIC_PATTERN = r"^[A-Z0-9]{4}$"
ISIN_PATTERN = r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$"
LEI_PATTERN = r"^[A-Z0-9]{18}[0-9]{2}$"
BIC_PATTERN = r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$"

PRICE_DIGITS, PRICE_PLACES = 20, 8
MONEY_DIGITS, MONEY_PLACES = 20, 2
RATE_DIGITS, RATE_PLACES = 20, 10


def _in_choices(field: str, choices: type[models.TextChoices]) -> Q:
    return Q(**{f"{field}__in": choices.values})


class Market(models.Model):
    """A trading venue of listing (ISO 10383 MIC) and the settlement calendar its trades use."""

    mic = models.CharField("MIC", max_length=4)
    name = models.CharField(max_length=100)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    timezone = models.CharField(max_length=64, help_text="IANA zone, e.g. America/New_York")
    settlement_cycle = models.PositiveSmallIntegerField(help_text="Standard T+N in business days")
    calendar_code = models.CharField(
        max_length=16, help_text="Holiday calendar used for settlement (Holiday.calendar_code)"
    )

    class Meta:
        ordering = ["mic"]
        constraints = [
            models.UniqueConstraint(fields=["mic"], name="uniq_market_mic"),
            models.CheckConstraint(condition=Q(mic__regex=MIC_PATTERN), name="market_mic_format"),
            models.CheckConstraint(
                condition=Q(settlement_cycle__lte=5), name="market_settlement_cycle_range"
            ),
        ]

    def __str__(self) -> str:
        return self.mic


class Holiday(models.Model):
    """A day a settlement calendar is closed (weekends are implied, never stored)."""

    calendar_code = models.CharField(max_length=16)
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["calendar_code", "date"]
        constraints = [
            models.UniqueConstraint(fields=["calendar_code", "date"], name="uniq_holiday"),
        ]

    def __str__(self) -> str:
        return f"{self.calendar_code} {self.date} {self.name}"


class CalendarCoverage(models.Model):
    """The dates a holiday calendar's ``Holiday`` rows are complete for, both ends inclusive.

    Outside them the calendar refuses to judge a date (``trades.calendar.CalendarNotCoveredError``)
    rather than treat it as a day without holidays; a calendar with no row judges no date.
    """

    calendar_code = models.CharField(max_length=16)
    first_day = models.DateField(help_text="First date whose holidays are all loaded")
    last_day = models.DateField(help_text="Last date whose holidays are all loaded")

    class Meta:
        ordering = ["calendar_code"]
        verbose_name_plural = "calendar coverage"
        constraints = [
            models.UniqueConstraint(fields=["calendar_code"], name="uniq_calendar_coverage"),
            models.CheckConstraint(
                condition=Q(first_day__lte=models.F("last_day")),
                name="calendar_coverage_first_day_lte_last_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.calendar_code} {self.first_day}..{self.last_day}"


class AssetClass(models.TextChoices):
    EQUITY = "EQUITY", "Equity"
    ETF = "ETF", "Exchange-traded fund"
    BOND = "BOND", "Bond"


class InstrumentStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    INACTIVE = "INACTIVE", "Inactive"
    SUSPENDED = "SUSPENDED", "Suspended"


class CsdrClass(models.TextChoices):
    # The same names as settlement.fails.InstrumentClass, which prices the penalties.
    LIQUID_SHARES = "LIQUID_SHARES", "Liquid shares"
    ILLIQUID_SHARES = "ILLIQUID_SHARES", "Illiquid shares"
    SME_SHARES = "SME_SHARES", "SME growth market shares"
    SOVEREIGN_BONDS = "SOVEREIGN_BONDS", "Sovereign bonds"
    OTHER_BONDS = "OTHER_BONDS", "Other bonds"
    SME_BONDS = "SME_BONDS", "SME growth market bonds"
    OTHER = "OTHER", "Other (ETFs and the rest)"


class Instrument(models.Model):
    """A tradable security, identified by its ISIN."""

    AssetClass = AssetClass
    Status = InstrumentStatus
    CsdrClass = CsdrClass

    isin = models.CharField("ISIN", max_length=12)
    symbol = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    asset_class = models.CharField(max_length=8, choices=AssetClass.choices)
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="instruments")
    tick_size = models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    csdr_class = models.CharField("CSDR class", max_length=16, choices=CsdrClass.choices)
    reference_price = models.DecimalField(
        max_digits=PRICE_DIGITS,
        decimal_places=PRICE_PLACES,
        help_text="Plausible starting price for the simulator; bonds in percent of par",
    )

    class Meta:
        ordering = ["isin"]
        constraints = [
            models.UniqueConstraint(fields=["isin"], name="uniq_instrument_isin"),
            models.UniqueConstraint(fields=["market", "symbol"], name="uniq_instrument_symbol"),
            models.CheckConstraint(
                condition=Q(isin__regex=ISIN_PATTERN), name="instrument_isin_format"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_PATTERN), name="instrument_currency_format"
            ),
            models.CheckConstraint(condition=Q(tick_size__gt=0), name="instrument_tick_positive"),
            models.CheckConstraint(
                condition=Q(reference_price__gt=0), name="instrument_reference_price_positive"
            ),
            models.CheckConstraint(
                condition=_in_choices("asset_class", AssetClass), name="instrument_asset_class"
            ),
            models.CheckConstraint(
                condition=_in_choices("status", InstrumentStatus), name="instrument_status"
            ),
            models.CheckConstraint(
                condition=_in_choices("csdr_class", CsdrClass), name="instrument_csdr_class"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.isin})"


class PnlMethod(models.TextChoices):
    FIFO = "FIFO", "First in, first out"
    AVERAGE = "AVERAGE", "Average cost"


class Book(models.Model):
    """A trading book: the unit P&L is reported in, in its base currency by its cost method."""

    PnlMethod = PnlMethod

    code = models.CharField(max_length=16)
    name = models.CharField(max_length=100)
    base_currency = models.CharField(max_length=3)
    pnl_method = models.CharField("P&L method", max_length=8, choices=PnlMethod.choices)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="uniq_book_code"),
            models.CheckConstraint(
                condition=Q(base_currency__regex=CURRENCY_PATTERN), name="book_currency_format"
            ),
            models.CheckConstraint(
                condition=_in_choices("pnl_method", PnlMethod), name="book_pnl_method"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class AccountStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    SUSPENDED = "SUSPENDED", "Suspended"
    CLOSED = "CLOSED", "Closed"


class Account(models.Model):
    """A trading account (the key of every trade message), booked into one book."""

    Status = AccountStatus

    code = models.CharField(max_length=32)
    name = models.CharField(max_length=100)
    book = models.ForeignKey(Book, on_delete=models.PROTECT, related_name="accounts")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    custodian_account = models.CharField(max_length=64, help_text="Account id at the custodian")

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="uniq_account_code"),
            models.CheckConstraint(
                condition=_in_choices("status", AccountStatus), name="account_status"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class CounterpartyStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    SUSPENDED = "SUSPENDED", "Suspended"
    INACTIVE = "INACTIVE", "Inactive"


class Counterparty(models.Model):
    """An executing broker or dealer we settle with; its credit limit is in USD."""

    Status = CounterpartyStatus

    code = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    lei = models.CharField("LEI", max_length=20)
    credit_limit = models.DecimalField(
        max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, help_text="USD"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "counterparties"
        constraints = [
            models.UniqueConstraint(fields=["code"], name="uniq_counterparty_code"),
            models.UniqueConstraint(fields=["lei"], name="uniq_counterparty_lei"),
            models.CheckConstraint(condition=Q(lei__regex=LEI_PATTERN), name="counterparty_lei"),
            models.CheckConstraint(
                condition=Q(credit_limit__gte=0), name="counterparty_credit_limit_non_negative"
            ),
            models.CheckConstraint(
                condition=_in_choices("status", CounterpartyStatus), name="counterparty_status"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class PaymentType(models.TextChoices):
    DVP = "DVP", "Delivery versus payment"
    FOP = "FOP", "Free of payment"


class StandingSettlementInstruction(models.Model):
    """Where a counterparty settles trades of one market in one currency."""

    PaymentType = PaymentType

    counterparty = models.ForeignKey(Counterparty, on_delete=models.CASCADE, related_name="ssis")
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="ssis")
    currency = models.CharField(max_length=3)
    payment_type = models.CharField(max_length=3, choices=PaymentType.choices)
    custodian_bic = models.CharField("custodian BIC", max_length=11)
    safekeeping_account = models.CharField(max_length=35)
    cash_account = models.CharField(max_length=35)
    effective_from = models.DateField()

    class Meta:
        ordering = ["counterparty__code", "market__mic", "currency"]
        verbose_name = "standing settlement instruction"
        constraints = [
            models.UniqueConstraint(fields=["counterparty", "market", "currency"], name="uniq_ssi"),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_PATTERN), name="ssi_currency_format"
            ),
            models.CheckConstraint(condition=Q(custodian_bic__regex=BIC_PATTERN), name="ssi_bic"),
            models.CheckConstraint(
                condition=_in_choices("payment_type", PaymentType), name="ssi_payment_type"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.counterparty_id}/{self.market_id}/{self.currency}"


class FxRate(models.Model):
    """Units of ``quote_currency`` for one unit of ``base_currency`` at the close of ``as_of``."""

    as_of = models.DateField()
    base_currency = models.CharField(max_length=3)
    quote_currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES)

    class Meta:
        ordering = ["-as_of", "base_currency", "quote_currency"]
        verbose_name = "FX rate"
        constraints = [
            models.UniqueConstraint(
                fields=["as_of", "base_currency", "quote_currency"], name="uniq_fx_rate"
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fx_rate_positive"),
            models.CheckConstraint(
                condition=Q(base_currency__regex=CURRENCY_PATTERN)
                & Q(quote_currency__regex=CURRENCY_PATTERN),
                name="fx_rate_currency_format",
            ),
            models.CheckConstraint(
                condition=~Q(base_currency=models.F("quote_currency")),
                name="fx_rate_distinct_currencies",
            ),
        ]
        indexes = [
            # fx_rate() asks for the latest row of one pair on or before a date.
            models.Index(fields=["base_currency", "quote_currency", "-as_of"], name="fx_pair_idx")
        ]

    def __str__(self) -> str:
        return f"{self.as_of} {self.base_currency}/{self.quote_currency} {self.rate}"
