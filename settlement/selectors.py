"""Every read the settlement API, reports and tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum

from backoffice.audit.models import AuditEntry
from settlement import fails as pure_fails
from settlement.models import (
    Break,
    ChainMember,
    Fail,
    FailPenalty,
    Instruction,
    Obligation,
    Payment,
    SettlementMovement,
)
from settlement.models.breaks import OPEN_STATUSES
from settlement.netting import NettingRatio, ratio_of
from settlement.policy import PENALTY_RATES
from settlement.reference import settlement_reference
from settlement.services.fails import as_pure
from settlement.services.recon import BREAK_OBJECT


def instructions_list(
    *,
    account: str | None = None,
    counterparty: str | None = None,
    instrument: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    settle_date: date | None = None,
    chain_id: str | None = None,
) -> QuerySet[Instruction]:
    filters = {
        "account": account,
        "counterparty": counterparty,
        "instrument": instrument,
        "status": status,
        "kind": kind,
        "settle_date": settle_date,
        "chain_id": chain_id,
    }
    return Instruction.objects.filter(**{k: v for k, v in filters.items() if v is not None})


def instruction_get(instruction_id: str) -> Instruction | None:
    return Instruction.objects.filter(instruction_id=instruction_id).first()


def _nets(version: Any) -> Q:
    """Members whose interval covers ``version`` (a number or an ``OuterRef``)."""
    return Q(joined_version__lte=version) & (
        Q(left_version__isnull=True) | Q(left_version__gt=version)
    )


def instruction_obligation_ids(instruction: Instruction) -> list[str]:
    """The obligations (trade ids) ``instruction``'s version nets, in code-point order."""
    members = ChainMember.objects.filter(_nets(instruction.version), chain_id=instruction.chain_id)
    return sorted(members.values_list("trade_id", flat=True))


def instructions_netting(trade_id: str) -> QuerySet[Instruction]:
    """Every version that nets ``trade_id``'s obligation (one query: the trade's chains by the
    members' trade index, their versions by the chain's, each checked against the interval)."""
    mine = ChainMember.objects.filter(trade_id=trade_id)
    return Instruction.objects.filter(
        Exists(mine.filter(_nets(OuterRef("version")), chain_id=OuterRef("chain_id"))),
        chain_id__in=mine.values("chain_id"),
    )


def obligations_netted() -> Subquery:
    """How many obligations an instruction row's version nets (to annotate instructions)."""
    return Subquery(
        ChainMember.objects.filter(_nets(OuterRef("version")), chain_id=OuterRef("chain_id"))
        .order_by()
        .values("chain_id")
        .annotate(n=Count("*"))
        .values("n")
    )


def netting_ratios(*, date_from: date, date_to: date) -> list[NettingRatio]:
    """Per settle date: live obligations / instructions in force (not withdrawn, not CANCEL)."""
    obligations = dict(
        Obligation.objects.filter(
            status=Obligation.Status.ACTIVE, settle_date__range=(date_from, date_to)
        )
        .values_list("settle_date")
        .annotate(n=Count("id"))
        .values_list("settle_date", "n")
    )
    instructions = dict(
        Instruction.objects.filter(settle_date__range=(date_from, date_to))
        .exclude(status=Instruction.Status.CANCELLED)
        .exclude(kind=Instruction.Kind.CANCEL)
        .values_list("settle_date")
        .annotate(n=Count("id"))
        .values_list("settle_date", "n")
    )
    return [
        NettingRatio(
            day,
            obligations.get(day, 0),
            instructions.get(day, 0),
            ratio_of(obligations.get(day, 0), instructions.get(day, 0)),
        )
        for day in sorted(obligations.keys() | instructions.keys())
    ]


@dataclass(frozen=True)
class FailRow:
    fail: Fail
    age: int  # failing business days as of the report date (0: not failing then)
    bucket: pure_fails.AgeBucket | None
    penalties: Decimal  # accrued to date (booked rows)


def fails_list(
    *, as_of: date, account: str | None = None, status: str | None = None
) -> list[FailRow]:
    """Fails with their age, bucket and accrued penalties as of ``as_of`` (two queries)."""
    fails = Fail.objects.filter(intended_settle_date__lte=as_of)
    if account:
        fails = fails.filter(account=account)
    if status:
        fails = fails.filter(status=status)
    penalties = dict(
        FailPenalty.objects.filter(fail__in=fails, accrual_date__lte=as_of)
        .values_list("fail_id")
        .annotate(total=Sum("penalty"))
        .values_list("fail_id", "total")
    )
    calendars = settlement_reference().calendars
    rows = []
    for fail in fails:
        age = pure_fails.fail_age(as_pure(fail), as_of, calendars[fail.calendar_code])
        rows.append(
            FailRow(fail, age, pure_fails.age_bucket(age), penalties.get(fail.pk, Decimal(0)))
        )
    return rows


def fails_report(*, as_of: date) -> pure_fails.FailsReport:
    """Aging buckets per currency and penalties to date (``settlement.fails.fails_report``)."""
    fails = [as_pure(f) for f in Fail.objects.filter(intended_settle_date__lte=as_of)]
    calendars = settlement_reference().calendars
    return pure_fails.fails_report(fails, as_of, calendars, PENALTY_RATES)


def payments_list(
    *,
    account: str | None = None,
    source: str | None = None,
    status: str | None = None,
    value_date: date | None = None,
) -> QuerySet[Payment]:
    filters = {"account": account, "source": source, "status": status, "value_date": value_date}
    return Payment.objects.filter(**{k: v for k, v in filters.items() if v is not None})


def breaks_list(
    *,
    today: date,
    category: str | None = None,
    account: str | None = None,
    owner: str | None = None,
    status: str | None = None,
    open_only: bool = False,
    min_age: int | None = None,
) -> QuerySet[Break]:
    """Breaks filtered; ``min_age`` in days since the as-of date the break opened."""
    filters = {"category": category, "account": account, "owner": owner, "status": status}
    breaks = Break.objects.filter(**{k: v for k, v in filters.items() if v is not None})
    if open_only:
        breaks = breaks.filter(status__in=OPEN_STATUSES)
    if min_age is not None:
        breaks = breaks.filter(opened_as_of__lte=today - timedelta(days=min_age))
    return breaks


def break_age(b: Break, today: date) -> int:
    """Days from the as-of date a break opened to ``today`` (or to its closing, if closed)."""
    end = b.closed_at.date() if b.closed_at is not None else today
    return max(0, (end - b.opened_as_of).days)


def break_history(break_id: int) -> QuerySet[AuditEntry]:
    """The break's audit trail in the order it was written: opening, assignments, closing."""
    return AuditEntry.objects.filter(object_type=BREAK_OBJECT, object_id=str(break_id)).order_by(
        "id"
    )


def holdings(*, account: str, as_of: date) -> dict[tuple[str, str], Decimal]:
    """Internal settled holdings of ``account`` as of a date: (asset type, asset) -> amount."""
    rows = (
        SettlementMovement.objects.filter(account=account, value_date__lte=as_of)
        .values_list("asset_type", "asset")
        .annotate(total=Sum("amount"))
        .filter(~Q(total=0))
        .values_list("asset_type", "asset", "total")
    )
    return {(t, a): total for t, a, total in rows}
