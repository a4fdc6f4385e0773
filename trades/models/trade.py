"""A trade's whole life as immutable versions: NEW -> AMEND (version + 1) -> CANCEL.

``TradeVersion`` rows are never edited; ``Trade`` is the head that points at the current version
and moves forward only by compare-and-swap on that version. A version that arrives stale or twice
is not applied: it is kept as a ``TradeRefusal`` with the reason, visible to operations.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class Action(models.TextChoices):
    NEW = "NEW", "New"
    AMEND = "AMEND", "Amend"
    CANCEL = "CANCEL", "Cancel"


class Side(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class Trade(models.Model):
    """The head of a trade: its current version and lifecycle status."""

    class Status(models.TextChoices):
        LIVE = "LIVE", "Live"
        CANCELLED = "CANCELLED", "Cancelled"

    trade_id = models.CharField(max_length=64, unique=True)
    current_version = models.IntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    account = models.CharField(max_length=32)
    book = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    trade_date = models.DateField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(current_version__gte=1), name="trade_version_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["LIVE", "CANCELLED"]), name="trade_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(updated_at__gte=F("created_at")), name="trade_updated_after_created"
            ),
        ]
        indexes = [
            models.Index(fields=["trade_date", "account"], name="trade_date_account_idx"),
            models.Index(fields=["account", "instrument"], name="trade_account_instr_idx"),
            models.Index(fields=["-updated_at"], name="trade_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id} v{self.current_version} {self.status}"


class TradeVersion(models.Model):
    """One immutable, enriched version of a trade, exactly as captured."""

    trade_id = models.CharField(max_length=64)
    version = models.IntegerField()
    action = models.CharField(max_length=6, choices=Action.choices)
    account = models.CharField(max_length=32)
    book = models.CharField(max_length=32)
    counterparty = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    symbol = models.CharField(max_length=32)
    asset_class = models.CharField(max_length=16)
    csdr_class = models.CharField(max_length=16)
    market = models.CharField(max_length=8)
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    price = models.DecimalField(max_digits=20, decimal_places=8)
    currency = models.CharField(max_length=3)
    gross_amount = models.DecimalField(max_digits=24, decimal_places=2)
    fees = models.DecimalField(max_digits=20, decimal_places=2)
    net_amount = models.DecimalField(max_digits=24, decimal_places=2)
    trade_date = models.DateField()
    trade_time = models.DateTimeField()
    settle_date = models.DateField()
    settle_date_computed = models.BooleanField()
    venue = models.CharField(max_length=4)
    trader = models.CharField(max_length=64)
    payment_type = models.CharField(max_length=3)
    ssi_custodian_bic = models.CharField(max_length=11, blank=True)
    ssi_safekeeping_account = models.CharField(max_length=35, blank=True)
    ssi_cash_account = models.CharField(max_length=35, blank=True)
    input_hash = models.CharField(max_length=64, help_text="fingerprint of the inbound content")
    source_topic = models.CharField(max_length=249)
    source_partition = models.IntegerField()
    source_offset = models.BigIntegerField()
    captured_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trade_id", "version"], name="uniq_trade_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="version_positive"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="quantity_positive"),
            models.CheckConstraint(condition=Q(price__gte=0), name="price_non_negative"),
            models.CheckConstraint(condition=Q(fees__gte=0), name="fees_non_negative"),
            models.CheckConstraint(
                condition=Q(settle_date__gte=F("trade_date")), name="settles_after_trade"
            ),
            models.CheckConstraint(condition=Q(side__in=["BUY", "SELL"]), name="side_valid"),
            models.CheckConstraint(
                condition=Q(action__in=["NEW", "AMEND", "CANCEL"]), name="action_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["trade_date", "book"], name="version_date_book_idx"),
            models.Index(fields=["-captured_at"], name="version_captured_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id} v{self.version} {self.action}"


class TradeRefusal(models.Model):
    """A version capture did not apply (stale, duplicate, conflicting) and why."""

    class Reason(models.TextChoices):
        DUPLICATE = "DUPLICATE", "Duplicate version"
        STALE = "STALE", "Stale version"
        CONFLICT = "CONFLICT", "Conflicting content for a captured version"
        CANCELLED = "CANCELLED", "Trade already cancelled"

    trade_id = models.CharField(max_length=64)
    version = models.IntegerField()
    action = models.CharField(max_length=6, choices=Action.choices)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    detail = models.TextField()
    payload = models.JSONField()
    source_topic = models.CharField(max_length=249)
    source_partition = models.IntegerField()
    source_offset = models.BigIntegerField()
    refused_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source_topic", "source_partition", "source_offset"],
                name="uniq_refusal_source",
            )
        ]
        indexes = [models.Index(fields=["trade_id"], name="refusal_trade_idx")]

    def __str__(self) -> str:
        return f"{self.trade_id} v{self.version}: {self.reason}"
