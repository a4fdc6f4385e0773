"""Settlement fails and their daily CSDR-style cash penalties."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from settlement.models.instructions import DIGITS, MONEY_PLACES, QTY_PLACES, in_choices


class FailStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    SETTLED = "SETTLED", "Settled"
    CANCELLED = "CANCELLED", "Cancelled (instruction replaced)"


class FailReasonCode(models.TextChoices):
    INSUFFICIENT_SECURITIES = "INSUFFICIENT_SECURITIES", "Insufficient securities"
    INSUFFICIENT_CASH = "INSUFFICIENT_CASH", "Insufficient cash"
    SSI_MISMATCH = "SSI_MISMATCH", "SSI mismatch (unmatched)"


class PenaltyBasis(models.TextChoices):
    # The names of settlement.fails.FailReason, which prices the penalty.
    LACK_OF_SECURITIES = "LACK_OF_SECURITIES", "Lack of securities"
    LACK_OF_CASH = "LACK_OF_CASH", "Lack of cash"


class Fail(models.Model):
    """An instruction that did not settle (in full) on its intended settlement date.

    One row per instruction; ``failed_quantity``/``failed_cash``/``failed_value`` are what is
    still unsettled. It closes when the instruction settles (``SETTLED``, ``settled_on`` set) or
    is replaced by a new version (``CANCELLED``, ``settled_on`` = the day it stopped failing).
    """

    Status = FailStatus
    ReasonCode = FailReasonCode
    PenaltyBasis = PenaltyBasis

    instruction_id = models.CharField(max_length=40)
    account = models.CharField(max_length=32)
    counterparty = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    instrument_class = models.CharField(max_length=16, help_text="CSDR penalty class")
    market = models.CharField(max_length=8)
    calendar_code = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    intended_settle_date = models.DateField()
    reason_code = models.CharField(max_length=24, choices=FailReasonCode.choices)
    penalty_basis = models.CharField(max_length=18, choices=PenaltyBasis.choices)
    failed_quantity = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    failed_cash = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    failed_value = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    status = models.CharField(max_length=9, choices=FailStatus.choices)
    first_failed_on = models.DateField()
    settled_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["intended_settle_date", "instruction_id"]
        constraints = [
            models.UniqueConstraint(fields=["instruction_id"], name="uniq_fail_instruction"),
            models.CheckConstraint(condition=Q(failed_quantity__gte=0), name="fail_quantity"),
            models.CheckConstraint(condition=Q(failed_cash__gte=0), name="fail_cash"),
            models.CheckConstraint(condition=Q(failed_value__gte=0), name="fail_value"),
            models.CheckConstraint(condition=in_choices("status", FailStatus), name="fail_status"),
            models.CheckConstraint(
                condition=in_choices("reason_code", FailReasonCode), name="fail_reason_code"
            ),
            models.CheckConstraint(
                condition=in_choices("penalty_basis", PenaltyBasis), name="fail_penalty_basis"
            ),
            models.CheckConstraint(
                condition=Q(status="OPEN", settled_on__isnull=True)
                | (~Q(status="OPEN") & Q(settled_on__gte=F("intended_settle_date"))),
                name="fail_closed_has_date",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "intended_settle_date"], name="fail_status_idx"),
            models.Index(fields=["account"], name="fail_account_idx"),
        ]

    def __str__(self) -> str:
        return f"fail {self.instruction_id} {self.status}"


class FailPenalty(models.Model):
    """One failing day's penalty for one fail; re-accruing a day is a no-op."""

    fail = models.ForeignKey(Fail, on_delete=models.PROTECT, related_name="penalties")
    accrual_date = models.DateField()
    day_number = models.IntegerField()
    currency = models.CharField(max_length=3)
    failed_value = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    daily_rate = models.DecimalField(max_digits=28, decimal_places=18)
    penalty = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["fail_id", "accrual_date"]
        constraints = [
            models.UniqueConstraint(fields=["fail", "accrual_date"], name="uniq_fail_penalty_day"),
            models.CheckConstraint(condition=Q(day_number__gte=1), name="penalty_day_number"),
            models.CheckConstraint(condition=Q(penalty__gte=0), name="penalty_not_negative"),
            models.CheckConstraint(condition=Q(daily_rate__gte=0), name="penalty_rate"),
        ]

    def __str__(self) -> str:
        return f"{self.fail_id} {self.accrual_date} {self.penalty} {self.currency}"
