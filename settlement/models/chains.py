"""Each netting key's running state and which obligations each of its versions nets.

``NettingChain`` is a key's chain head, kept by delta in the transaction that changes it: the
signed net of its obligations in force, their number, the latest version issued and what has
settled on its versions. Re-netting a key reads this one row (and its latest version), however
long its day has been; before it, every batch re-read every obligation of every chain it touched,
and each version stored the ids of all of them, so a chain of L trades cost O(L^2).

``ChainMember`` says which versions net a trade's obligation: versions ``joined_version`` up to,
not including, ``left_version`` (open while the trade is still in the chain). A trade joining
or leaving a chain writes one row; an amendment that keeps it in the chain writes none. The
version numbers are those the chain's next version will carry when the change happens, since
every change of membership is instructed by the next version.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from settlement.models.instructions import DIGITS, MONEY_PLACES, QTY_PLACES, PaymentType


class NettingChain(models.Model):
    """A netting key's head: its target net, latest version and settled totals."""

    chain_id = models.CharField(max_length=32, primary_key=True)
    account = models.CharField(max_length=32)
    counterparty = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    settle_date = models.DateField()
    currency = models.CharField(max_length=3)
    payment_type = models.CharField(max_length=3, choices=PaymentType.choices)
    # What a new version copies: from the obligation written last (a cancelled key keeps it).
    asset_class = models.CharField(max_length=8)
    csdr_class = models.CharField(max_length=16)
    market = models.CharField(max_length=8)
    ssi_custodian_bic = models.CharField(max_length=11, blank=True)
    ssi_safekeeping_account = models.CharField(max_length=35, blank=True)
    ssi_cash_account = models.CharField(max_length=35, blank=True)
    # The signed net (account side) of the obligations in force, and how many there are.
    target_quantity = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    target_cash = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    obligations = models.IntegerField()
    # A trade joined or left since the latest version: the next re-net must instruct it.
    members_changed = models.BooleanField()
    version = models.IntegerField()  # the latest version issued; 0 before the first
    # Signed amounts settled on all its versions but CANCELs (settled in full or in part).
    settled_quantity = models.DecimalField(max_digits=DIGITS, decimal_places=QTY_PLACES)
    settled_cash = models.DecimalField(max_digits=DIGITS, decimal_places=MONEY_PLACES)
    any_settled = models.BooleanField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "settlement_chain"
        constraints = [
            models.CheckConstraint(condition=Q(obligations__gte=0), name="chain_obligations"),
            models.CheckConstraint(condition=Q(version__gte=0), name="chain_version"),
        ]

    def __str__(self) -> str:
        return f"{self.chain_id} v{self.version}"


class ChainMember(models.Model):
    """A trade's obligation is netted by versions [joined_version, left_version) of a chain."""

    pk = models.CompositePrimaryKey("chain_id", "trade_id", "joined_version")
    chain_id = models.CharField(max_length=32)
    trade_id = models.CharField(max_length=64)
    joined_version = models.IntegerField()
    left_version = models.IntegerField(null=True, blank=True)

    class Meta:
        db_table = "settlement_chain_member"
        constraints = [
            models.CheckConstraint(
                condition=Q(joined_version__gte=1)
                & (Q(left_version__isnull=True) | Q(left_version__gt=F("joined_version"))),
                name="chain_member_interval",
            ),
        ]
        # The trade timeline asks which versions net one trade.
        indexes = [models.Index(fields=["trade_id"], name="chain_member_trade_idx")]

    def __str__(self) -> str:
        end = self.left_version or "now"
        return f"{self.trade_id} in {self.chain_id} v{self.joined_version}..{end}"
