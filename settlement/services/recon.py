"""Reconciliation of custodian statements against the internal settled ledger (bulk, per batch).

Internal holdings are the sums of ``SettlementMovement`` rows with a value date on or before the
statement's as-of date — settlement-date books, as the custodian keeps them. When nothing is
wrong the two agree exactly; a difference is TIMING when our unsettled instructions due within
the timing window explain it exactly (the custodian settled before we heard), and otherwise
what ``settlement.recon`` says it is.

Break identity: while open, (account, asset, category). A finding on date D for a key is the
open break of that key if there is one (``last_seen_as_of`` moves to D), or nothing at all when a
break of that key already covered D (``opened_as_of <= D <= last_seen_as_of``, even if closed
since): so re-running a statement changes nothing. Otherwise a break opens on D. An open break
the statement no longer shows closes as AUTO_RESOLVED, unless it was seen after D.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q

from backoffice.audit.models import AuditEntry
from backoffice.streaming.envelope import Message, jsonable
from backoffice.streaming.store import Rejection
from settlement import recon
from settlement.models import Break, Instruction, ReconciliationRun
from settlement.models.breaks import OPEN_STATUSES
from settlement.policy import TIMING_LAG_DAYS, TOLERANCES
from settlement.reference import settlement_reference
from settlement.services.renet import LIVE

BREAK_OBJECT = "settlement.break"
MALFORMED_STATEMENT = "MalformedStatement"

BreakIdentity = tuple[str, str, str]  # (account, asset, category)


@dataclass(frozen=True)
class _Statement:
    message: Message
    statement_id: str
    as_of: date
    account: str
    revision: int
    custodian: recon.Holdings


@dataclass
class _Outcome:
    new: list[Break] = field(default_factory=list)
    seen: dict[int, Break] = field(default_factory=dict)
    resolved: dict[int, tuple[Break, str]] = field(default_factory=dict)
    runs: list[ReconciliationRun] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def _parse(message: Message) -> _Statement:
    p = message.payload
    as_of = date.fromisoformat(p["as_of"])
    account = p["account"]
    positions = [
        recon.PositionLine(
            account, line["instrument"], Decimal(line["quantity"]), Decimal(line["market_value"])
        )
        for line in p["positions"]
    ]
    cash = [recon.CashLine(account, c["currency"], Decimal(c["amount"])) for c in p["cash"]]
    holdings = recon.Holdings(as_of, tuple(positions), tuple(cash))
    return _Statement(message, p["statement_id"], as_of, account, p["revision"], holdings)


def statements_reconcile(*, messages: Sequence[Message], now: datetime) -> list[Rejection]:
    """Reconcile each custodian statement in ``messages`` against the internal ledger.

    Guarantee: per statement, breaks are exactly ``settlement.recon.reconcile``'s findings under
    the identity rule of the module docstring, so re-running a statement creates, changes and
    closes nothing; opened and auto-resolved breaks are audited (actor ``system``); each
    statement is recorded once in ``ReconciliationRun``. One query per kind of thing for the
    batch (plus one ledger sum per distinct as-of date). A statement with duplicate lines is
    rejected with the reason.
    """
    done = set(
        ReconciliationRun.objects.filter(
            statement_id__in=[m.payload["statement_id"] for m in messages]
        ).values_list("statement_id", flat=True)
    )
    statements = [_parse(m) for m in messages if m.payload["statement_id"] not in done]
    if not statements:
        return []
    accounts = sorted({s.account for s in statements})
    internal = _internal_holdings(statements)
    pending = _pending(accounts, max(s.as_of for s in statements))
    instruments = _instrument_refs()
    index = _BreakIndex(_breaks_for(accounts, statements))
    outcome = _Outcome()
    for statement in sorted(statements, key=lambda s: (s.as_of, s.account, s.revision)):
        _reconcile_one(statement, internal, pending, instruments, index, outcome, now)
    _write(outcome, now)
    return outcome.rejections


def _internal_holdings(statements: Sequence[_Statement]) -> dict[tuple[date, str], recon.Holdings]:
    by_date: dict[date, set[str]] = defaultdict(set)
    for s in statements:
        by_date[s.as_of].add(s.account)
    holdings = {}
    for as_of, accounts in by_date.items():
        positions: dict[str, list[recon.PositionLine]] = defaultdict(list)
        cash: dict[str, list[recon.CashLine]] = defaultdict(list)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT account, asset_type, asset, sum(amount) FROM settlement_settlementmovement"
                " WHERE account = ANY(%s::text[]) AND value_date <= %s"
                " GROUP BY account, asset_type, asset HAVING sum(amount) <> 0",
                [sorted(accounts), as_of],
            )
            for account, asset_type, asset, amount in cursor.fetchall():
                if asset_type == "CASH":
                    cash[account].append(recon.CashLine(account, asset, amount))
                else:
                    positions[account].append(recon.PositionLine(account, asset, amount))
        for account in accounts:
            holdings[as_of, account] = recon.Holdings(
                as_of, tuple(positions[account]), tuple(cash[account])
            )
    return holdings


def _pending(accounts: list[str], latest: date) -> list[recon.PendingMovement]:
    """What our unsettled instructions would move, as seen from settlement-date books.

    ``settlement.recon`` calls a difference TIMING when ``internal - custodian`` equals the
    pending movements. Our books are settlement-date, so a pending instruction explains the
    custodian being *ahead* of us (it settled, we have not heard yet): the amounts are the
    negated remainders.
    """
    horizon = latest + timedelta(days=TIMING_LAG_DAYS)
    rows = Instruction.objects.filter(
        account__in=accounts, status__in=LIVE, settle_date__lte=horizon
    ).exclude(kind=Instruction.Kind.CANCEL)
    moves = []
    for row in rows:
        for asset, amount in (
            (row.instrument, row.remaining_quantity),
            (row.currency, row.remaining_cash),
        ):
            if amount:
                moves.append(recon.PendingMovement(row.account, asset, row.settle_date, -amount))
    return moves


def _instrument_refs() -> dict[str, recon.InstrumentRef]:
    return {
        isin: recon.InstrumentRef(isin, s.asset_class, s.currency, s.unit_price)
        for isin, s in settlement_reference().securities.items()
    }


def _breaks_for(accounts: list[str], statements: Sequence[_Statement]) -> list[Break]:
    first = min(s.as_of for s in statements)
    last = max(s.as_of for s in statements)
    return list(
        Break.objects.filter(account__in=accounts).filter(
            Q(status__in=OPEN_STATUSES) | Q(opened_as_of__lte=last, last_seen_as_of__gte=first)
        )
    )


class _BreakIndex:
    """The breaks of the batch's accounts, kept current as the batch's statements apply."""

    def __init__(self, breaks: Iterable[Break]):
        self.open: dict[BreakIdentity, Break] = {}
        self.all: dict[BreakIdentity, list[Break]] = defaultdict(list)
        for b in breaks:
            self.add(b)

    def add(self, b: Break) -> None:
        identity = (b.account, b.asset, b.category)
        self.all[identity].append(b)
        if b.status in OPEN_STATUSES:
            self.open[identity] = b

    def covered(self, identity: BreakIdentity, as_of: date) -> bool:
        return any(b.opened_as_of <= as_of <= b.last_seen_as_of for b in self.all[identity])


def _reconcile_one(
    statement: _Statement,
    internal: dict[tuple[date, str], recon.Holdings],
    pending: list[recon.PendingMovement],
    instruments: dict[str, recon.InstrumentRef],
    index: _BreakIndex,
    outcome: _Outcome,
    now: datetime,
) -> None:
    try:
        findings = recon.reconcile(
            internal[statement.as_of, statement.account],
            statement.custodian,
            instruments,
            TOLERANCES,
            [p for p in pending if p.account == statement.account],
            TIMING_LAG_DAYS,
        )
    except ValueError as error:
        outcome.rejections.append(Rejection(statement.message, MALFORMED_STATEMENT, str(error)))
        return
    found: set[BreakIdentity] = set()
    opened = 0
    for f in findings:
        identity = (f.account, f.instrument_or_currency, str(f.category))
        found.add(identity)
        current = index.open.get(identity)
        if current is not None:
            if statement.as_of > current.last_seen_as_of:
                _refresh(current, f)
                if current.pk is not None:
                    outcome.seen[current.pk] = current
        elif not index.covered(identity, statement.as_of):
            b = _new_break(f, now)
            index.add(b)
            outcome.new.append(b)
            opened += 1
    gone = _close_gone(statement, found, index, outcome, now)
    outcome.runs.append(
        ReconciliationRun(
            statement_id=statement.statement_id,
            as_of=statement.as_of,
            account=statement.account,
            revision=statement.revision,
            positions=len(statement.custodian.positions),
            cash_lines=len(statement.custodian.cash),
            findings=len(findings),
            opened=opened,
            auto_resolved=len(gone),
            processed_at=now,
        )
    )


def _close_gone(
    statement: _Statement,
    found: set[BreakIdentity],
    index: _BreakIndex,
    outcome: _Outcome,
    now: datetime,
) -> list[Break]:
    """Open breaks of the statement's account it no longer shows: they resolved themselves."""
    gone = [
        b
        for identity, b in index.open.items()
        if b.account == statement.account
        and identity not in found
        and b.opened_as_of <= statement.as_of
        and b.last_seen_as_of <= statement.as_of
    ]
    for b in gone:
        del index.open[(b.account, b.asset, b.category)]
        if b.pk is not None:  # else opened earlier in this batch: it is created closed
            outcome.resolved[b.pk] = (b, b.status)
            outcome.seen.pop(b.pk, None)
        b.status = Break.Status.AUTO_RESOLVED
        b.closed_at = now
        b.resolution = f"not on the custodian statement of {statement.as_of}"
    return gone


def _asset_type(asset: str) -> str:
    return "CASH" if len(asset) == 3 else "SECURITY"


def _new_break(f: recon.BreakFinding, now: datetime) -> Break:
    b = Break(
        account=f.account,
        asset=f.instrument_or_currency,
        asset_type=_asset_type(f.instrument_or_currency),
        category=str(f.category),
        status=Break.Status.OPEN,
        opened_as_of=f.as_of,
        last_seen_as_of=f.as_of,
        opened_at=now,
    )
    _refresh(b, f)
    return b


def _refresh(b: Break, f: recon.BreakFinding) -> None:
    """The latest statement's figures (the break's identity does not change)."""
    b.last_seen_as_of = f.as_of
    b.internal_value = f.internal_value
    b.custodian_value = f.custodian_value
    b.difference = f.difference
    b.amount = f.amount
    b.amount_currency = f.amount_currency or ""


def break_snapshot(b: Break) -> dict[str, Any]:
    return {
        "status": b.status,
        "owner": b.owner,
        "category": b.category,
        "account": b.account,
        "asset": b.asset,
        "opened_as_of": b.opened_as_of,
        "last_seen_as_of": b.last_seen_as_of,
        "difference": b.difference,
        "amount": b.amount,
    }


def _write(outcome: _Outcome, now: datetime) -> None:
    created = Break.objects.bulk_create(outcome.new)
    Break.objects.bulk_update(
        list(outcome.seen.values()),
        [
            "last_seen_as_of",
            "internal_value",
            "custodian_value",
            "difference",
            "amount",
            "amount_currency",
        ],
        batch_size=500,  # one CASE over every row is quadratic in PostgreSQL
    )
    resolved = _auto_resolve(list(outcome.resolved.values()), now)
    audit = []
    for b in created:
        closed = b.status == Break.Status.AUTO_RESOLVED
        opened = {**break_snapshot(b), "status": Break.Status.OPEN} if closed else break_snapshot(b)
        audit.append(_system_audit("break_opened", b, None, opened, now))
        if closed:
            before = {"status": Break.Status.OPEN}
            audit.append(
                _system_audit(
                    "break_auto_resolved", b, before, break_snapshot(b), now, b.resolution
                )
            )
    audit += [
        _system_audit(
            "break_auto_resolved", b, {"status": old}, break_snapshot(b), now, b.resolution
        )
        for b, old in outcome.resolved.values()
        if b.pk in resolved
    ]
    AuditEntry.objects.bulk_create(audit)
    ReconciliationRun.objects.bulk_create(outcome.runs, ignore_conflicts=True)


def _auto_resolve(breaks: list[tuple[Break, str]], now: datetime) -> set[int]:
    """CAS each break from the status read to AUTO_RESOLVED; a human action that won wins."""
    if not breaks:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE settlement_break AS b SET status = 'AUTO_RESOLVED', closed_at = %s,"
            " resolution = v.resolution FROM unnest(%s::bigint[], %s::text[], %s::text[])"
            " AS v(id, old, resolution) WHERE b.id = v.id AND b.status = v.old RETURNING b.id",
            [
                now,
                [b.pk for b, _ in breaks],
                [old for _, old in breaks],
                [b.resolution for b, _ in breaks],
            ],
        )
        return {row[0] for row in cursor.fetchall()}


def _system_audit(
    action: str,
    b: Break,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    now: datetime,
    reason: str = "",
) -> AuditEntry:
    return AuditEntry(
        at=now,
        actor_id=None,
        actor_name="system",
        action=action,
        object_type=BREAK_OBJECT,
        object_id=str(b.pk),
        before=jsonable(before) if before is not None else None,
        after=jsonable(after),
        reason=reason,
    )
