"""The custodian simulator's own state: what it was instructed, what it settled, what it said.

It stands in for an external CSD, so it never reads the internal books: its ledger
(``CustodianMovement``) is built only from the instructions it received and the outcomes it
decided, and its statements are built from that ledger plus the discrepancies it injected
(``InjectedDiscrepancy``, recorded so a test can compute the expected breaks independently).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from settlement.models.instructions import (
    DIGITS,
    MONEY_PLACES,
    QTY_PLACES,
    AssetType,
    in_choices,
)


class CustodianState(models.TextChoices):
    AWAITING_MATCH = "AWAITING_MATCH", "Awaiting match (SSI mismatch)"
    MATCHED = "MATCHED", "Matched"
    FAILED = "FAILED", "Failed"
    PARTIALLY_SETTLED = "PARTIALLY_SETTLED", "Partially settled"
    SETTLED = "SETTLED", "Settled"
    CANCELLED = "CANCELLED", "Cancelled"
    IGNORED = "IGNORED", "Nothing to settle (cancel instruction)"


class CustodianInstruction(models.Model):
    State = CustodianState

    instruction_id = models.CharField(max_length=40)
    chain_id = models.CharField(max_length=32)
    version = models.IntegerField()
    kind = models.CharField(max_length=10)
    supersedes = models.CharField(max_length=40, blank=True)
    account = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    currency = models.CharField(max_length=3)
    settle_date = models.DateField()
    net_quantity = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    net_cash = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    settled_quantity = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES, default=0)
    settled_cash = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES, default=0)
    state = models.CharField(max_length=17, choices=CustodianState.choices)
    sequence = models.IntegerField(default=0, help_text="last status sequence sent")
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instruction_id"], name="uniq_custodian_instruction"),
            models.CheckConstraint(
                condition=in_choices("state", CustodianState), name="custodian_state"
            ),
        ]
        indexes = [models.Index(fields=["state", "settle_date"], name="custodian_state_idx")]

    def __str__(self) -> str:
        return f"{self.instruction_id} {self.state}"


class CustodianMovement(models.Model):
    instruction_id = models.CharField(max_length=40)
    sequence = models.IntegerField()
    account = models.CharField(max_length=32)
    asset_type = models.CharField(max_length=8, choices=AssetType.choices)
    asset = models.CharField(max_length=12)
    amount = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    value_date = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instruction_id", "sequence", "asset_type"], name="uniq_custodian_movement"
            ),
        ]
        indexes = [models.Index(fields=["account", "value_date"], name="custodian_movement_idx")]

    def __str__(self) -> str:
        return f"{self.account} {self.asset} {self.amount} {self.value_date}"


class CustodianDay(models.Model):
    """A business date the simulator closed (ran settlement for); closing twice is a no-op."""

    business_date = models.DateField()
    seed = models.IntegerField()
    settled = models.IntegerField()
    partially_settled = models.IntegerField()
    failed = models.IntegerField()
    closed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["business_date"], name="uniq_custodian_day")]

    def __str__(self) -> str:
        return str(self.business_date)


class CustodianStatement(models.Model):
    statement_id = models.CharField(max_length=64)
    as_of = models.DateField()
    account = models.CharField(max_length=32)
    revision = models.IntegerField()
    published_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["statement_id"], name="uniq_custodian_statement"),
            models.UniqueConstraint(
                fields=["as_of", "account", "revision"], name="uniq_custodian_statement_rev"
            ),
        ]

    def __str__(self) -> str:
        return self.statement_id


class DiscrepancyKind(models.TextChoices):
    QUANTITY = "QUANTITY", "Position quantity altered"
    CASH = "CASH", "Cash balance altered"
    DROPPED_POSITION = "DROPPED_POSITION", "Position line left out"
    EXTRA_POSITION = "EXTRA_POSITION", "Position line the books do not have"
    PRICE = "PRICE", "Market value mispriced"
    EARLY_SETTLEMENT = "EARLY_SETTLEMENT", "Pending instruction shown as settled"


class InjectedDiscrepancy(models.Model):
    """A deliberate error in a statement, with the break category it must produce."""

    Kind = DiscrepancyKind

    as_of = models.DateField()
    account = models.CharField(max_length=32)
    asset_type = models.CharField(max_length=8, choices=AssetType.choices)
    asset = models.CharField(max_length=12)
    kind = models.CharField(max_length=16, choices=DiscrepancyKind.choices)
    expected_category = models.CharField(max_length=17)
    detail = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["as_of", "account", "asset_type", "asset"], name="uniq_injected_discrepancy"
            ),
            models.CheckConstraint(
                condition=in_choices("kind", DiscrepancyKind), name="discrepancy_kind"
            ),
            models.CheckConstraint(condition=~Q(asset=""), name="discrepancy_asset"),
        ]

    def __str__(self) -> str:
        return f"{self.as_of} {self.account} {self.asset} {self.kind}"
