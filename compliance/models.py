"""Compliance tables: the editable rules, the facts the rules need across trades, every verdict,
and the four-eyes exception queue.

Invariants live in PostgreSQL: one row per trade, one verdict per trade version (holding every
rule row's result), one exception per trade version and at most one OPEN exception per trade, at
most one ACTIVE proposal per exception, non-empty reasons, and states that can only hold listed
values. Amounts are ``NUMERIC``; notional in the base currency keeps full precision (it is
compared with limits, never booked, so it is not rounded).
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from compliance.rules import REGISTRY

ISIN_PATTERN = r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$"
NOT_BLANK = r"\S"
PRICE_DIGITS, PRICE_PLACES = 20, 8
QUANTITY_DIGITS, QUANTITY_PLACES = 24, 6
# gross amount (2 places) x FX rate (10 places) is exact in 12 places.
NOTIONAL_DIGITS, NOTIONAL_PLACES = 32, 12
RULE_CODES = [(code, code) for code in REGISTRY]


def _in(field: str, choices: type[models.TextChoices]) -> Q:
    return Q(**{f"{field}__in": choices.values})


class ComplianceRule(models.Model):
    """One configured rule: a registry code with its threshold, parameters and scope.

    Empty scope lists mean "all"; several rows may share a code (a tighter limit for one book).
    The admin form refuses a row ``compliance.rules.validate_config`` finds fault with; a row that
    is broken anyway (edited in SQL) fails every trade it applies to rather than passing them.
    """

    code = models.CharField(max_length=40, choices=RULE_CODES)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    threshold = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text='Parameter name to value, e.g. {"window_seconds": "300"}',
    )
    scope_books = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    scope_accounts = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    scope_instruments = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code__in=list(REGISTRY)), name="compliance_rule_code_known"
            ),
            models.CheckConstraint(
                condition=Q(threshold__isnull=True) | Q(threshold__gte=0),
                name="compliance_rule_threshold_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} #{self.pk}"


class RestrictedInstrument(models.Model):
    """An instrument the firm must not trade, and who put it on the list and why."""

    isin = models.CharField("ISIN", max_length=12)
    reason = models.TextField()
    added_by = models.CharField(max_length=150, help_text="Username, frozen when added")
    added_at = models.DateTimeField()

    class Meta:
        ordering = ["isin"]
        constraints = [
            models.UniqueConstraint(fields=["isin"], name="uniq_restricted_isin"),
            models.CheckConstraint(condition=Q(isin__regex=ISIN_PATTERN), name="restricted_isin"),
            models.CheckConstraint(condition=Q(reason__regex=NOT_BLANK), name="restricted_reason"),
        ]

    def __str__(self) -> str:
        return self.isin


class PriceSource(models.TextChoices):
    TRADE = "TRADE", "Last passed trade"
    MARKET_DATA = "MARKET_DATA", "Market data"


class ReferencePrice(models.Model):
    """The latest reference price per instrument, the fat-finger rule's yardstick.

    Any writer (the compliance stage from passed trades, a future ``marketdata.prices``
    consumer) upserts through ``services.reference_prices_record``: the observation with the
    latest ``as_of`` wins whichever writer commits last, so writers need no coordination.
    """

    Source = PriceSource

    isin = models.CharField("ISIN", max_length=12)
    price = models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES)
    currency = models.CharField(max_length=3)
    as_of = models.DateTimeField()
    source = models.CharField(max_length=12, choices=Source.choices)

    class Meta:
        ordering = ["isin"]
        constraints = [
            models.UniqueConstraint(fields=["isin"], name="uniq_reference_price_isin"),
            models.CheckConstraint(condition=Q(price__gt=0), name="reference_price_positive"),
            models.CheckConstraint(
                condition=_in("source", PriceSource), name="reference_price_source"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.isin} {self.price} @ {self.as_of:%Y-%m-%d %H:%M:%S}"


class TradeStatus(models.TextChoices):
    WAITING = "WAITING", "Waiting in an exception"
    VALIDATED = "VALIDATED", "Validated"
    REJECTED = "REJECTED", "Rejected"
    CANCELLED = "CANCELLED", "Cancelled"


class ComplianceTrade(models.Model):
    """What compliance holds about one trade: its latest version's facts and where it stands.

    ``version`` is the newest version seen (older ones are stale). ``validated_*`` describe the
    version in force downstream (the last one emitted on trades.validated), which can be older
    than ``version`` while a newer version waits in an exception.
    """

    Status = TradeStatus

    trade_id = models.CharField(max_length=64)
    version = models.IntegerField()
    action = models.CharField(max_length=6)
    account = models.CharField(max_length=32)
    book = models.CharField(max_length=32)
    counterparty = models.CharField(max_length=32)
    instrument = models.CharField(max_length=12)
    side = models.CharField(max_length=4)
    quantity = models.DecimalField(max_digits=QUANTITY_DIGITS, decimal_places=QUANTITY_PLACES)
    price = models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES)
    currency = models.CharField(max_length=3)
    notional_base = models.DecimalField(max_digits=NOTIONAL_DIGITS, decimal_places=NOTIONAL_PLACES)
    trade_time = models.DateTimeField()
    trade_date = models.DateField()
    settle_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices)
    validated_version = models.IntegerField(null=True, blank=True)
    validated_counterparty = models.CharField(max_length=32, blank=True)
    validated_notional_base = models.DecimalField(
        max_digits=NOTIONAL_DIGITS, decimal_places=NOTIONAL_PLACES, null=True, blank=True
    )
    validated_settle_date = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trade_id"], name="uniq_compliance_trade"),
            models.CheckConstraint(condition=Q(version__gte=1), name="ctrade_version_positive"),
            models.CheckConstraint(condition=_in("status", TradeStatus), name="ctrade_status"),
            models.CheckConstraint(condition=Q(side__in=["BUY", "SELL"]), name="ctrade_side_valid"),
            models.CheckConstraint(
                condition=Q(notional_base__gte=0), name="ctrade_notional_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(validated_version__isnull=True)
                | (
                    Q(validated_version__lte=models.F("version"))
                    & Q(validated_notional_base__isnull=False)
                    & Q(validated_settle_date__isnull=False)
                ),
                name="ctrade_validated_complete",
            ),
            models.CheckConstraint(
                condition=~Q(status="VALIDATED") | Q(validated_version=models.F("version")),
                name="ctrade_validated_is_current",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "trade_date"], name="ctrade_account_day_idx"),
            models.Index(
                fields=["validated_counterparty", "validated_settle_date"], name="ctrade_cp_idx"
            ),
            # The window checks' read: one account and instrument at one price, over a time range.
            models.Index(
                fields=["account", "instrument", "price", "trade_time"], name="ctrade_recent_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id} v{self.version} {self.status}"


TOTAL_DIGITS = NOTIONAL_DIGITS + 6  # a day's or a counterparty's sum of trade notionals


class AccountDayTotal(models.Model):
    """The running account-day notional of (account, trade date): ``ledger.day_contribution``
    summed over every ``ComplianceTrade``.

    Kept by the database, not by the code paths that write trades: statement-level triggers on
    ``compliance_compliancetrade`` (migration 0003) add each statement's new contributions and
    take away its old ones, so the stage's bulk upserts, four-eyes decisions and any other write
    keep it exact, and a batch reads one row per key instead of re-adding the whole day.
    """

    account = models.CharField(max_length=32)
    trade_date = models.DateField()
    total = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=NOTIONAL_PLACES)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "trade_date"], name="uniq_account_day_total")
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.trade_date}: {self.total}"


class ExposureTotal(models.Model):
    """The running counterparty exposure per settle date: ``ledger.exposure_contribution``
    summed over every ``ComplianceTrade`` (kept by the same triggers as ``AccountDayTotal``)."""

    counterparty = models.CharField(max_length=32)
    settle_date = models.DateField()
    total = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=NOTIONAL_PLACES)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["counterparty", "settle_date"], name="uniq_exposure_total"
            )
        ]

    def __str__(self) -> str:
        return f"{self.counterparty} {self.settle_date}: {self.total}"


class VersionVerdict(models.Model):
    """Compliance's verdict on one trade version: every applicable rule row's result in one row.

    One row per version rather than one per rule row, which was most of what the stage wrote per
    trade: with the nine default rules a judged version costs one row and two index entries
    (primary key, unique index) instead of nine rows and 27. The unique (trade id, version) index
    is the only index besides the primary key; it also serves every lookup by trade.

    ``results`` keeps each rule row's id next to its code because several rows may share a code
    (per-book limits); ``rule_id`` is a plain id so deleting a rule never rewrites history.
    ``failed_rules`` repeats the failing codes, in evaluation order, so a query can filter on
    them without opening ``results``.
    """

    trade_id = models.CharField(max_length=64)
    trade_version = models.IntegerField()
    passed = models.BooleanField(help_text="Every applicable rule passed")
    failed_rules = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    # [{"rule_id": int, "code": str, "passed": bool, "detail": str}, ...] in evaluation order
    results = models.JSONField()
    evaluated_at = models.DateTimeField()

    class Meta:
        ordering = ["trade_id", "trade_version"]
        constraints = [
            models.UniqueConstraint(
                fields=["trade_id", "trade_version"], name="uniq_version_verdict"
            ),
            models.CheckConstraint(
                condition=Q(passed=True, failed_rules=[]) | (Q(passed=False) & ~Q(failed_rules=[])),
                name="verdict_passed_iff_none_failed",
            ),
        ]

    def __str__(self) -> str:
        verdict = "pass" if self.passed else "FAIL " + ", ".join(self.failed_rules)
        return f"{self.trade_id} v{self.trade_version} {verdict}"


class ExceptionStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    APPROVED = "APPROVED", "Approved"
    REJECTED = "REJECTED", "Rejected"
    SUPERSEDED = "SUPERSEDED", "Superseded"
    CANCELLED = "CANCELLED", "Cancelled"


class ComplianceException(models.Model):
    """A trade version that failed compliance and waits for a four-eyes decision.

    OPEN is the only non-terminal status: APPROVED and REJECTED are decisions, SUPERSEDED means a
    newer version replaced it, CANCELLED that the trade was cancelled while it waited.
    ``payload`` is the captured version, re-emitted on approval.
    """

    Status = ExceptionStatus

    trade_id = models.CharField(max_length=64)
    trade_version = models.IntegerField()
    account = models.CharField(max_length=32)
    book = models.CharField(max_length=32)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    failed_rules = ArrayField(models.CharField(max_length=40))
    payload = models.JSONField()
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["trade_id", "trade_version"], name="uniq_exception_version"
            ),
            models.UniqueConstraint(
                fields=["trade_id"], condition=Q(status="OPEN"), name="one_open_exception"
            ),
            models.CheckConstraint(
                condition=_in("status", ExceptionStatus), name="exception_status"
            ),
            models.CheckConstraint(
                condition=Q(status="OPEN", resolved_at__isnull=True)
                | (~Q(status="OPEN") & Q(resolved_at__isnull=False)),
                name="exception_resolved_iff_closed",
            ),
            models.CheckConstraint(
                condition=~Q(failed_rules=[]), name="exception_has_failed_rules"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="exception_status_idx"),
            models.Index(fields=["trade_id"], name="exception_trade_idx"),
        ]

    def __str__(self) -> str:
        return f"exception {self.pk}: {self.trade_id} v{self.trade_version} {self.status}"


class ProposalAction(models.TextChoices):
    APPROVE = "APPROVE", "Approve"
    REJECT = "REJECT", "Reject"


class ProposalStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Awaiting confirmation"
    CONFIRMED = "CONFIRMED", "Confirmed"
    INVALIDATED = "INVALIDATED", "Invalidated"
    WITHDRAWN = "WITHDRAWN", "Withdrawn"


class ExceptionProposal(models.Model):
    """The maker's half of a four-eyes decision on an exception, awaiting a different checker."""

    Action = ProposalAction
    Status = ProposalStatus

    exception = models.ForeignKey(
        ComplianceException, on_delete=models.PROTECT, related_name="proposals"
    )
    action = models.CharField(max_length=7, choices=Action.choices)
    reason = models.TextField()
    # Plain ids and frozen names, like the audit trail: a renamed or deleted user keeps history.
    proposed_by_id = models.BigIntegerField()
    proposed_by_name = models.CharField(max_length=150)
    proposed_at = models.DateTimeField()
    status = models.CharField(max_length=11, choices=Status.choices, default=Status.ACTIVE)
    resolved_by_id = models.BigIntegerField(null=True, blank=True)
    resolved_by_name = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["proposed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["exception"], condition=Q(status="ACTIVE"), name="one_active_proposal"
            ),
            models.CheckConstraint(condition=_in("action", ProposalAction), name="proposal_action"),
            models.CheckConstraint(condition=_in("status", ProposalStatus), name="proposal_status"),
            models.CheckConstraint(condition=Q(reason__regex=NOT_BLANK), name="proposal_reason"),
            models.CheckConstraint(
                condition=Q(status="ACTIVE", resolved_at__isnull=True)
                | (~Q(status="ACTIVE") & Q(resolved_at__isnull=False)),
                name="proposal_resolved_iff_closed",
            ),
            # The four-eyes rule itself, in the database: nobody confirms their own proposal.
            models.CheckConstraint(
                condition=~Q(status="CONFIRMED") | ~Q(resolved_by_id=models.F("proposed_by_id")),
                name="proposal_checker_is_not_maker",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} exception {self.exception_id} by {self.proposed_by_name}"
