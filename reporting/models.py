"""Positions, prices, end-of-day snapshots and margin.

Live tables (kept by ``consume_reporting``): ``PositionTrade`` holds the one version of each trade
now in force, ``Position`` the position those versions add up to per (account, instrument) with
its exact state and booked P&L, ``PositionCheckpoint`` that state every 64 fills so a
restatement need not start from flat; ``MarketPrice`` is the price history, ``LatestPrice`` and
``DailyClose`` the two views of it the stage and risk read. End of day (``run_eod``, Celery beat)
writes ``PnlSnapshot`` and ``MarginSnapshot`` per business date, ``MarginCall`` when equity falls
short, and ``EodRun`` to say which dates it has done. Trades, accounts and instruments are referred
to by their codes, never by foreign keys into other apps.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

# Scales as backoffice.money states them: quantities 6 places, prices 8, money 2, rates 10.

CURRENCY_PATTERN = r"^[A-Z]{3}$"


class PnlMethod(models.TextChoices):
    FIFO = "FIFO", "FIFO"
    AVERAGE = "AVERAGE", "Weighted average cost"


class MarkSource(models.TextChoices):
    MARKET = "MARKET", "Market price"
    # No price has been published for the instrument yet: marked at its latest fill.
    TRADE = "TRADE", "Last trade price"


class PositionTrade(models.Model):
    """The version of a trade now in force for positions (CANCELLED: a tombstone, no effect)."""

    class Status(models.TextChoices):
        LIVE = "LIVE", "Live"
        CANCELLED = "CANCELLED", "Cancelled"

    trade_id = models.CharField(max_length=64, unique=True)
    version = models.IntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    account = models.CharField(max_length=32)
    book = models.CharField(max_length=32)
    base_currency = models.CharField(max_length=3)
    pnl_method = models.CharField(max_length=8, choices=PnlMethod.choices)
    instrument = models.CharField(max_length=12)
    asset_class = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    side = models.CharField(max_length=4)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    price = models.DecimalField(max_digits=20, decimal_places=8)
    fees = models.DecimalField(max_digits=24, decimal_places=2)
    trade_date = models.DateField()
    trade_time = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(version__gte=1), name="rpt_trade_version_positive"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="rpt_trade_qty_positive"),
            models.CheckConstraint(condition=Q(price__gte=0), name="rpt_trade_price_non_negative"),
            models.CheckConstraint(condition=Q(fees__gte=0), name="rpt_trade_fees_non_negative"),
            models.CheckConstraint(condition=Q(side__in=["BUY", "SELL"]), name="rpt_trade_side"),
            models.CheckConstraint(
                condition=Q(status__in=["LIVE", "CANCELLED"]), name="rpt_trade_status"
            ),
            models.CheckConstraint(
                condition=Q(pnl_method__in=["FIFO", "AVERAGE"]), name="rpt_trade_pnl_method"
            ),
        ]
        indexes = [
            # Restating a position reads its live trades after a checkpoint (a trade_time range);
            # end of day reads them up to a date.
            models.Index(
                fields=["account", "instrument", "trade_time"], name="rpt_trade_key_time_idx"
            ),
            models.Index(fields=["trade_date"], name="rpt_trade_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id} v{self.version} {self.status}"


class Booked(models.Model):
    """The booked figures of :class:`reporting.pnl.PnlFigures`, shared by live and EOD rows."""

    account = models.CharField(max_length=32)
    book = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    asset_class = models.CharField(max_length=16)
    pnl_method = models.CharField(max_length=8, choices=PnlMethod.choices)
    currency = models.CharField(max_length=3)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    mark_price = models.DecimalField(max_digits=20, decimal_places=8)
    mark_source = models.CharField(max_length=8, choices=MarkSource.choices)
    cost_basis = models.DecimalField(max_digits=24, decimal_places=2)
    market_value = models.DecimalField(max_digits=24, decimal_places=2)
    realized = models.DecimalField(max_digits=24, decimal_places=2)
    unrealized = models.DecimalField(max_digits=24, decimal_places=2)
    fees = models.DecimalField(max_digits=24, decimal_places=2)
    net_realized = models.DecimalField(max_digits=24, decimal_places=2)
    total = models.DecimalField(max_digits=24, decimal_places=2)
    base_currency = models.CharField(max_length=3)
    fx_rate_to_base = models.DecimalField(max_digits=20, decimal_places=10)
    base_cost_basis = models.DecimalField(max_digits=24, decimal_places=2)
    base_market_value = models.DecimalField(max_digits=24, decimal_places=2)
    base_realized = models.DecimalField(max_digits=24, decimal_places=2)
    base_unrealized = models.DecimalField(max_digits=24, decimal_places=2)
    base_fees = models.DecimalField(max_digits=24, decimal_places=2)
    base_net_realized = models.DecimalField(max_digits=24, decimal_places=2)
    base_total = models.DecimalField(max_digits=24, decimal_places=2)

    class Meta:
        abstract = True


def _foots(table: str, p: str) -> list[models.BaseConstraint]:
    return [
        models.CheckConstraint(
            condition=Q(**{f"{p}total": F(f"{p}realized") + F(f"{p}unrealized") - F(f"{p}fees")}),
            name=f"{table}_{p}total_foots",
        ),
        models.CheckConstraint(
            condition=Q(**{f"{p}unrealized": F(f"{p}market_value") - F(f"{p}cost_basis")}),
            name=f"{table}_{p}unrealized_foots",
        ),
        models.CheckConstraint(
            condition=Q(**{f"{p}net_realized": F(f"{p}realized") - F(f"{p}fees")}),
            name=f"{table}_{p}net_foots",
        ),
    ]


def _booked_constraints(table: str) -> list[models.BaseConstraint]:
    """The identities of a booked snapshot and its signs, enforced by PostgreSQL on every row."""
    return [
        *_foots(table, ""),
        *_foots(table, "base_"),
        models.CheckConstraint(
            condition=Q(fees__gte=0) & Q(base_fees__gte=0), name=f"{table}_fees_non_negative"
        ),
        models.CheckConstraint(condition=Q(fx_rate_to_base__gt=0), name=f"{table}_fx_positive"),
        models.CheckConstraint(condition=Q(mark_price__gte=0), name=f"{table}_mark_non_negative"),
        models.CheckConstraint(
            condition=Q(currency__regex=CURRENCY_PATTERN)
            & Q(base_currency__regex=CURRENCY_PATTERN),
            name=f"{table}_currency_format",
        ),
    ]


class Position(Booked):
    """The live position of one account in one instrument, restated on every amend or cancel.

    ``state`` is the exact :class:`reporting.pnl.PositionState` (decimal strings) so a later
    fill can be applied incrementally; ``last_trade_*`` is the replay key of the last fill in
    it. A position whose trades are all cancelled is deleted, as if it had never existed.
    """

    state = models.JSONField()
    last_trade_time = models.DateTimeField()
    last_trade_id = models.CharField(max_length=64)
    last_trade_version = models.IntegerField()
    last_trade_date = models.DateField()
    last_fill_price = models.DecimalField(max_digits=20, decimal_places=8)
    trade_count = models.IntegerField()
    mark_as_of = models.DateTimeField(null=True)
    valuation_date = models.DateField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument"], name="uniq_position"),
            models.CheckConstraint(condition=Q(trade_count__gte=1), name="position_has_trades"),
            *_booked_constraints("position"),
        ]
        indexes = [
            models.Index(fields=["instrument"], name="position_instrument_idx"),
            models.Index(fields=["book", "account"], name="position_book_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.instrument} {self.quantity}"


class PositionCheckpoint(models.Model):
    """A live position's exact state after every ``reporting.positions.CHECKPOINT_EVERY``-th fill.

    ``state`` and the meta columns are what the position was after its ``trade_count``-th live
    fill in replay order, the fill whose replay key is ``trade_*``; ``fold_method`` is the cost
    method it was folded under. A restatement starts from the latest checkpoint before the
    earliest fill it changes and replaces every checkpoint after that one, so each checkpoint
    always equals the fold from flat of the live fills up to it.
    """

    account = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    trade_time = models.DateTimeField()
    # Byte order, as Python orders the trade ids of a replay key, whatever the database locale.
    trade_id = models.CharField(max_length=64, db_collation="C")
    trade_version = models.IntegerField()
    trade_count = models.IntegerField()
    fold_method = models.CharField(max_length=8, choices=PnlMethod.choices)
    state = models.JSONField()
    book = models.CharField(max_length=32)
    base_currency = models.CharField(max_length=3)
    pnl_method = models.CharField(max_length=8, choices=PnlMethod.choices)
    asset_class = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    last_trade_date = models.DateField()
    last_fill_price = models.DecimalField(max_digits=20, decimal_places=8)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "instrument", "trade_count"], name="uniq_position_checkpoint"
            ),
            models.CheckConstraint(
                condition=Q(trade_count__gte=1), name="position_checkpoint_has_trades"
            ),
            models.CheckConstraint(
                condition=Q(fold_method__in=["FIFO", "AVERAGE"])
                & Q(pnl_method__in=["FIFO", "AVERAGE"]),
                name="position_checkpoint_methods",
            ),
        ]
        indexes = [
            # "The latest checkpoint of a position before a replay key" is one probe of this.
            models.Index(
                fields=["account", "instrument", "trade_time", "trade_id", "trade_version"],
                name="position_checkpoint_key_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.instrument} after {self.trade_count} fills"


class MarketPrice(models.Model):
    """Every price published on ``marketdata.prices`` (the history)."""

    isin = models.CharField(max_length=12)
    as_of = models.DateTimeField()
    business_date = models.DateField()
    price = models.DecimalField(max_digits=20, decimal_places=8)
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=32)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["isin", "as_of"], name="uniq_market_price"),
            models.CheckConstraint(condition=Q(price__gt=0), name="market_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.isin} {self.as_of:%Y-%m-%d %H:%M:%S} {self.price}"


class LatestPrice(models.Model):
    """The latest price per instrument by ``as_of`` (not by arrival): what live P&L marks to."""

    isin = models.CharField(max_length=12, unique=True)
    as_of = models.DateTimeField()
    business_date = models.DateField()
    price = models.DecimalField(max_digits=20, decimal_places=8)
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="latest_price_positive")
        ]

    def __str__(self) -> str:
        return f"{self.isin} {self.price}"


class DailyClose(models.Model):
    """The last price per instrument and business date: end-of-day marks and VaR history."""

    isin = models.CharField(max_length=12)
    business_date = models.DateField()
    as_of = models.DateTimeField()
    price = models.DecimalField(max_digits=20, decimal_places=8)
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["isin", "business_date"], name="uniq_daily_close"),
            models.CheckConstraint(condition=Q(price__gt=0), name="daily_close_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.isin} {self.business_date} {self.price}"


class PnlSnapshot(Booked):
    """A position and its P&L as of the end of one business date (rebuilt, never patched)."""

    business_date = models.DateField()
    valuation_date = models.DateField(help_text="the date of the FX rate used")
    trade_count = models.IntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["business_date", "account", "instrument"], name="uniq_pnl_snapshot"
            ),
            *_booked_constraints("pnl_snapshot"),
        ]
        indexes = [
            models.Index(fields=["book", "business_date"], name="pnl_snapshot_book_idx"),
            models.Index(fields=["account", "business_date"], name="pnl_snapshot_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.business_date} {self.account} {self.instrument} {self.total}"


class CollateralBalance(models.Model):
    """Opening collateral an account has posted; cash for margin starts from it."""

    account = models.CharField(max_length=32, unique=True)
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=24, decimal_places=2)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="collateral_non_negative"),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_PATTERN), name="collateral_currency_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.amount} {self.currency}"


class MarginSnapshot(models.Model):
    """Exposure, margin requirement and equity of one account at the end of a business date."""

    class Binding(models.TextChoices):
        HAIRCUT = "HAIRCUT", "Haircut"
        VAR = "VAR", "VaR"

    business_date = models.DateField()
    account = models.CharField(max_length=32)
    book = models.CharField(max_length=32)
    base_currency = models.CharField(max_length=3)
    gross_exposure = models.DecimalField(max_digits=24, decimal_places=2)
    net_exposure = models.DecimalField(max_digits=24, decimal_places=2)
    exposure_by_currency = models.JSONField()
    exposure_by_asset_class = models.JSONField()
    collateral = models.DecimalField(max_digits=24, decimal_places=2)
    cash = models.DecimalField(max_digits=24, decimal_places=2)
    equity = models.DecimalField(max_digits=24, decimal_places=2)
    haircut_requirement = models.DecimalField(max_digits=24, decimal_places=2)
    var_99_1d = models.DecimalField(max_digits=24, decimal_places=2, null=True)
    scenario_count = models.IntegerField()
    var_fallback = models.BooleanField()
    binding = models.CharField(max_length=8, choices=Binding.choices)
    note = models.CharField(max_length=200)
    requirement = models.DecimalField(max_digits=24, decimal_places=2)
    excess = models.DecimalField(max_digits=24, decimal_places=2)
    margin_call = models.DecimalField(max_digits=24, decimal_places=2)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["business_date", "account"], name="uniq_margin_snapshot"
            ),
            models.CheckConstraint(
                condition=Q(excess=F("equity") - F("requirement")), name="margin_excess_foots"
            ),
            models.CheckConstraint(
                condition=Q(requirement__gte=F("haircut_requirement")),
                name="margin_requirement_covers_haircut",
            ),
            models.CheckConstraint(
                condition=Q(margin_call__gte=0), name="margin_call_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(gross_exposure__gte=0), name="margin_gross_non_negative"
            ),
        ]
        indexes = [models.Index(fields=["account", "business_date"], name="margin_account_idx")]

    def __str__(self) -> str:
        return f"{self.business_date} {self.account} excess {self.excess}"


class MarginCall(models.Model):
    """A call for cash when equity is below the requirement: issued once per account and date."""

    class PaymentStatus(models.TextChoices):
        CREATED = "CREATED", "Payment created"
        # settlement.services.payment_create_for_margin_call was not available to this build.
        NOT_AVAILABLE = "NOT_AVAILABLE", "Payments not available"

    business_date = models.DateField()
    account = models.CharField(max_length=32)
    amount = models.DecimalField(max_digits=24, decimal_places=2)
    currency = models.CharField(max_length=3)
    value_date = models.DateField()
    reference = models.CharField(max_length=64, unique=True)
    payment_status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    payment_reference = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "business_date"], name="uniq_margin_call"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="margin_call_positive"),
            models.CheckConstraint(
                condition=Q(value_date__gt=F("business_date")), name="margin_call_value_after"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency}"


class EodRun(models.Model):
    """One business date's end of day: when it last ran and what it wrote."""

    business_date = models.DateField(unique=True)
    positions = models.IntegerField()
    accounts = models.IntegerField()
    margin_calls = models.IntegerField()
    first_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(last_run_at__gte=F("first_run_at")), name="eod_run_times"
            )
        ]

    def __str__(self) -> str:
        return f"EOD {self.business_date}"
