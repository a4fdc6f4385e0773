"""Obligations, instruction versions, the settled-movement ledger and payments.

An ``Obligation`` is the trade version in force for one ``trade_id`` (one row per trade, moved
forward only to a newer version). ``Instruction`` rows are the append-only versions of each
netting key's chain (``settlement.netting``): amounts are never edited, only the status moves,
by compare-and-swap. ``SettlementMovement`` is the internal settled ledger that reconciliation
compares with the custodian: one row per settled increment or correcting entry.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

DIGITS, QTY_PLACES, MONEY_PLACES = 24, 6, 2


def in_choices(field: str, choices: type[models.TextChoices]) -> Q:
    return Q(**{f"{field}__in": choices.values})


def within(settled: str, net: str) -> Q:
    """``settled`` lies between zero and ``net``, on the same side of zero."""
    return Q(**{f"{net}__gte": 0, f"{settled}__gte": 0, f"{settled}__lte": F(net)}) | Q(
        **{f"{net}__lte": 0, f"{settled}__lte": 0, f"{settled}__gte": F(net)}
    )


class PaymentType(models.TextChoices):
    DVP = "DVP", "Delivery versus payment"
    FOP = "FOP", "Free of payment"


class ObligationStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    CANCELLED = "CANCELLED", "Cancelled"


class Obligation(models.Model):
    """What one trade, in its version in force, obliges the account to settle."""

    Status = ObligationStatus

    trade_id = models.CharField(max_length=64)
    trade_version = models.IntegerField()
    status = models.CharField(max_length=10, choices=ObligationStatus.choices)
    chain_id = models.CharField(max_length=32)
    account = models.CharField(max_length=32)
    counterparty = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    asset_class = models.CharField(max_length=8)
    csdr_class = models.CharField(max_length=16)
    market = models.CharField(max_length=8)
    settle_date = models.DateField()
    currency = models.CharField(max_length=3)
    payment_type = models.CharField(max_length=3, choices=PaymentType.choices)
    side = models.CharField(max_length=4)
    quantity = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    cash_amount = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    # The counterparty's standing settlement instruction, as the trade carried it.
    ssi_custodian_bic = models.CharField(max_length=11, blank=True)
    ssi_safekeeping_account = models.CharField(max_length=35, blank=True)
    ssi_cash_account = models.CharField(max_length=35, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trade_id"], name="uniq_obligation_trade"),
            models.CheckConstraint(condition=Q(trade_version__gte=1), name="obligation_version"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="obligation_quantity"),
            models.CheckConstraint(condition=Q(cash_amount__gte=0), name="obligation_cash"),
            models.CheckConstraint(
                condition=~Q(payment_type="FOP") | Q(cash_amount=0), name="obligation_fop_no_cash"
            ),
            models.CheckConstraint(condition=Q(side__in=["BUY", "SELL"]), name="obligation_side"),
            models.CheckConstraint(
                condition=in_choices("status", ObligationStatus), name="obligation_status"
            ),
        ]
        indexes = [models.Index(fields=["chain_id"], name="obligation_chain_idx")]

    def __str__(self) -> str:
        return f"{self.trade_id} v{self.trade_version} {self.status}"


class InstructionKind(models.TextChoices):
    NET = "NET", "Net"
    CORRECTING = "CORRECTING", "Correcting"
    CANCEL = "CANCEL", "Cancel"


class InstructionStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    INSTRUCTED = "INSTRUCTED", "Instructed"
    MATCHED = "MATCHED", "Matched"
    SETTLED = "SETTLED", "Settled"
    PARTIALLY_SETTLED = "PARTIALLY_SETTLED", "Partially settled"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class Instruction(models.Model):
    """One version of a netting key's settlement instruction (amounts signed, account side)."""

    Kind = InstructionKind
    Status = InstructionStatus

    instruction_id = models.CharField(max_length=40)
    chain_id = models.CharField(max_length=32)
    version = models.IntegerField()
    kind = models.CharField(max_length=10, choices=InstructionKind.choices)
    status = models.CharField(max_length=17, choices=InstructionStatus.choices)
    account = models.CharField(max_length=32)
    counterparty = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    asset_class = models.CharField(max_length=8)
    csdr_class = models.CharField(max_length=16)
    market = models.CharField(max_length=8)
    settle_date = models.DateField()
    currency = models.CharField(max_length=3)
    payment_type = models.CharField(max_length=3, choices=PaymentType.choices)
    net_quantity = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    net_cash = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    settled_quantity = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES, default=0)
    settled_cash = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES, default=0)
    supersedes = models.CharField(max_length=40, blank=True)
    superseded_by = models.CharField(max_length=40, blank=True)
    # The counterparty's standing settlement instruction, as the trades carried it.
    ssi_custodian_bic = models.CharField(max_length=11, blank=True)
    ssi_safekeeping_account = models.CharField(max_length=35, blank=True)
    ssi_cash_account = models.CharField(max_length=35, blank=True)
    reason_code = models.CharField(max_length=32, blank=True)
    reason = models.TextField(blank=True)
    status_sequence = models.IntegerField(default=0)
    settled_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()
    instructed_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField()

    class Meta:
        ordering = ["settle_date", "account", "instruction_id"]
        constraints = [
            models.UniqueConstraint(fields=["instruction_id"], name="uniq_instruction_id"),
            models.UniqueConstraint(
                fields=["chain_id", "version"], name="uniq_instruction_version"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="instruction_version"),
            models.CheckConstraint(
                condition=in_choices("kind", InstructionKind), name="instruction_kind"
            ),
            models.CheckConstraint(
                condition=in_choices("status", InstructionStatus), name="instruction_status"
            ),
            models.CheckConstraint(
                condition=~Q(kind="CANCEL") | Q(net_quantity=0, net_cash=0),
                name="instruction_cancel_no_amounts",
            ),
            models.CheckConstraint(
                condition=within("settled_quantity", "net_quantity"),
                name="instruction_settled_quantity_within_net",
            ),
            models.CheckConstraint(
                condition=within("settled_cash", "net_cash"),
                name="instruction_settled_cash_within_net",
            ),
            models.CheckConstraint(
                condition=~Q(status="SETTLED")
                | Q(settled_quantity=F("net_quantity"), settled_cash=F("net_cash")),
                name="instruction_settled_in_full",
            ),
        ]
        # (chain_id, version) lookups use uniq_instruction_version's index; a second index on
        # the same columns only cost a write per instruction.
        indexes = [
            models.Index(fields=["status", "settle_date"], name="instruction_status_idx"),
            models.Index(fields=["account", "settle_date"], name="instruction_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.instruction_id} {self.kind} {self.status}"

    @property
    def remaining_quantity(self) -> Decimal:
        return self.net_quantity - self.settled_quantity

    @property
    def remaining_cash(self) -> Decimal:
        return self.net_cash - self.settled_cash


class AssetType(models.TextChoices):
    SECURITY = "SECURITY", "Security"
    CASH = "CASH", "Cash"


class MovementSource(models.TextChoices):
    SETTLEMENT = "SETTLEMENT", "Settlement"
    CORRECTION = "CORRECTION", "Correcting entry"


class SettlementMovement(models.Model):
    """One settled change to an account's securities or cash: the internal settled ledger.

    Holdings as of a date are the sums of movements with ``value_date`` on or before it, so an
    old as-of date can be reconciled again with the books as they stood then.
    """

    AssetType = AssetType
    Source = MovementSource

    reference = models.CharField(max_length=64)
    source = models.CharField(max_length=10, choices=MovementSource.choices)
    account = models.CharField(max_length=32)
    asset_type = models.CharField(max_length=8, choices=AssetType.choices)
    asset = models.CharField(max_length=12, help_text="ISIN, or currency for cash")
    amount = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    value_date = models.DateField()
    instruction_id = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reference", "asset_type", "asset"], name="uniq_movement"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="movement_not_zero"),
            models.CheckConstraint(
                condition=in_choices("asset_type", AssetType), name="movement_asset_type"
            ),
            models.CheckConstraint(
                condition=in_choices("source", MovementSource), name="movement_source"
            ),
        ]
        indexes = [models.Index(fields=["account", "value_date"], name="movement_account_idx")]

    def __str__(self) -> str:
        return f"{self.account} {self.asset} {self.amount} on {self.value_date}"


class PaymentSource(models.TextChoices):
    SETTLEMENT = "SETTLEMENT", "Settled cash leg"
    MARGIN_CALL = "MARGIN_CALL", "Margin call"


class PaymentStatus(models.TextChoices):
    # ISO 20022 ExternalPaymentTransactionStatus1Code values.
    PDNG = "PDNG", "Pending"
    ACSP = "ACSP", "Accepted, settlement in process"
    ACSC = "ACSC", "Accepted, settlement completed"
    RJCT = "RJCT", "Rejected"


class Payment(models.Model):
    """A cash transfer shaped like an ISO 20022 credit transfer (pacs.008 / pain.001)."""

    Source = PaymentSource
    Status = PaymentStatus

    end_to_end_id = models.CharField(max_length=35)
    uetr = models.UUIDField("UETR")
    message_type = models.CharField(max_length=16, default="pacs.008.001.08")
    source = models.CharField(max_length=12, choices=PaymentSource.choices)
    reference = models.CharField(max_length=64)
    instruction_id = models.CharField(max_length=40, blank=True)
    account = models.CharField(max_length=32)
    debtor = models.CharField(max_length=140)
    debtor_account = models.CharField(max_length=35)
    debtor_agent = models.CharField(max_length=11, blank=True)
    creditor = models.CharField(max_length=140)
    creditor_account = models.CharField(max_length=35)
    creditor_agent = models.CharField(max_length=11, blank=True)
    amount = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    currency = models.CharField(max_length=3)
    value_date = models.DateField()
    status = models.CharField(max_length=4, choices=PaymentStatus.choices)
    remittance_information = models.CharField(max_length=140, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-value_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["end_to_end_id"], name="uniq_payment_e2e"),
            models.UniqueConstraint(fields=["uetr"], name="uniq_payment_uetr"),
            models.UniqueConstraint(fields=["source", "reference"], name="uniq_payment_reference"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=in_choices("status", PaymentStatus), name="payment_status"
            ),
            models.CheckConstraint(
                condition=in_choices("source", PaymentSource), name="payment_source"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="payment_currency"
            ),
        ]
        indexes = [models.Index(fields=["account", "value_date"], name="payment_account_idx")]

    def __str__(self) -> str:
        return f"{self.end_to_end_id} {self.amount} {self.currency} {self.status}"
