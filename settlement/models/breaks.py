"""Reconciliation runs and breaks, with their comments and correcting entries.

A break is identified by (account, instrument or currency, category) while it is open: the same
difference found on later statements is the same break (``last_seen_as_of`` moves on). At most
one break exists per (as-of date it opened, account, asset, category), so re-running a
statement can never duplicate one. Closed breaks are history: a new difference opens a new row.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from settlement.models.instructions import (
    DIGITS,
    MONEY_PLACES,
    QTY_PLACES,
    AssetType,
    in_choices,
)


class BreakCategory(models.TextChoices):
    # The names of settlement.recon.BreakCategory.
    QUANTITY = "QUANTITY", "Quantity"
    CASH = "CASH", "Cash"
    MISSING_INTERNAL = "MISSING_INTERNAL", "Missing internally"
    MISSING_CUSTODIAN = "MISSING_CUSTODIAN", "Missing at custodian"
    VALUATION = "VALUATION", "Valuation"
    TIMING = "TIMING", "Timing"


class BreakStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    ASSIGNED = "ASSIGNED", "Assigned"
    RESOLVED = "RESOLVED", "Resolved with a correcting entry"
    ACCEPTED = "ACCEPTED", "Accepted"
    AUTO_RESOLVED = "AUTO_RESOLVED", "Auto-resolved (gone from a later statement)"


OPEN_STATUSES = (BreakStatus.OPEN, BreakStatus.ASSIGNED)


class ReconciliationRun(models.Model):
    """One custodian statement (one account, one as-of date, one revision) reconciled."""

    statement_id = models.CharField(max_length=64)
    as_of = models.DateField()
    account = models.CharField(max_length=32)
    revision = models.IntegerField()
    positions = models.IntegerField()
    cash_lines = models.IntegerField()
    findings = models.IntegerField()
    opened = models.IntegerField()
    auto_resolved = models.IntegerField()
    processed_at = models.DateTimeField()

    class Meta:
        ordering = ["-as_of", "account", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["statement_id"], name="uniq_recon_statement"),
        ]

    def __str__(self) -> str:
        return f"{self.as_of} {self.account} r{self.revision}"


class Break(models.Model):
    """A difference between the internal settled books and the custodian statement."""

    Category = BreakCategory
    Status = BreakStatus

    account = models.CharField(max_length=32)
    asset = models.CharField(max_length=12, help_text="ISIN, or currency for cash")
    asset_type = models.CharField(max_length=8, choices=AssetType.choices)
    category = models.CharField(max_length=17, choices=BreakCategory.choices)
    status = models.CharField(max_length=13, choices=BreakStatus.choices)
    opened_as_of = models.DateField()
    last_seen_as_of = models.DateField()
    internal_value = models.DecimalField(
        max_digits=DIGITS, decimal_places=QTY_PLACES, null=True, blank=True
    )
    custodian_value = models.DecimalField(
        max_digits=DIGITS, decimal_places=QTY_PLACES, null=True, blank=True
    )
    difference = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    amount = models.DecimalField(
        max_digits=DIGITS, decimal_places=MONEY_PLACES, null=True, blank=True
    )
    amount_currency = models.CharField(max_length=3, blank=True)
    owner = models.CharField(max_length=150, blank=True)
    resolution = models.TextField(blank=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_as_of", "account", "asset", "category"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "asset", "category"],
                condition=Q(status__in=["OPEN", "ASSIGNED"]),
                name="uniq_open_break",
            ),
            models.UniqueConstraint(
                fields=["opened_as_of", "account", "asset", "category"], name="uniq_break_per_day"
            ),
            models.CheckConstraint(
                condition=in_choices("category", BreakCategory), name="break_category"
            ),
            models.CheckConstraint(
                condition=in_choices("status", BreakStatus), name="break_status"
            ),
            models.CheckConstraint(
                condition=Q(last_seen_as_of__gte=F("opened_as_of")), name="break_seen_after_open"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["OPEN", "ASSIGNED"], closed_at__isnull=True)
                | (~Q(status__in=["OPEN", "ASSIGNED"]) & Q(closed_at__isnull=False)),
                name="break_closed_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="ASSIGNED") | ~Q(owner=""), name="break_assigned_has_owner"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "category"], name="break_status_idx"),
            models.Index(fields=["account", "status"], name="break_account_idx"),
        ]

    def __str__(self) -> str:
        return f"break {self.pk} {self.account} {self.asset} {self.category} {self.status}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class BreakComment(models.Model):
    break_record = models.ForeignKey(Break, on_delete=models.PROTECT, related_name="comments")
    author = models.CharField(max_length=150)
    text = models.TextField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="comment_not_empty")]

    def __str__(self) -> str:
        return f"{self.author}: {self.text[:40]}"


class BreakCorrection(models.Model):
    """The correcting entry a break was resolved with; its ledger movement has ``reference``."""

    break_record = models.OneToOneField(Break, on_delete=models.PROTECT, related_name="correction")
    reference = models.CharField(max_length=64)
    account = models.CharField(max_length=32)
    asset_type = models.CharField(max_length=8, choices=AssetType.choices)
    asset = models.CharField(max_length=12)
    amount = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    value_date = models.DateField()
    author = models.CharField(max_length=150)
    reason = models.TextField()
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reference"], name="uniq_correction_reference"),
            models.CheckConstraint(condition=~Q(amount=0), name="correction_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.asset} {self.amount}"
