"""The compliance stage: trades.captured in, trades.validated out (or an exception that waits).

Per batch: load everything with a fixed number of queries (``selectors.batch_input``), decide
every message in memory (``compliance.batch.process``), then write the effects in bulk here.
The runtime wraps all of it in the batch's transaction with the offsets and the outbox.
``docs/compliance.md`` lists the outcome of every kind of message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import orjson

from backoffice.audit.models import AuditEntry
from backoffice.streaming import topics
from backoffice.streaming.bulk import copy_insert
from backoffice.streaming.consumer import Stage
from backoffice.streaming.envelope import Message, Outbound, Subscription, jsonable
from backoffice.streaming.store import Rejection, StageContext, StageResult
from compliance import selectors, services
from compliance.batch import OPEN, BatchWrites, NewException, process
from compliance.ledger import TradeState
from compliance.models import (
    ComplianceException,
    ComplianceTrade,
    ExceptionProposal,
    ReferencePrice,
    VersionVerdict,
)

STAGE_NAME = "compliance"
SYSTEM = "system"
CLOSED_BECAUSE = {
    "SUPERSEDED": "trade {trade_id} was amended to version {version}",
    "CANCELLED": "trade {trade_id} was cancelled in version {version}",
}
VERDICT_COLUMNS = (
    "trade_id",
    "trade_version",
    "passed",
    "failed_rules",
    "results",
    "evaluated_at",
)
STATE_FIELDS = tuple(f.name for f in fields(TradeState))
TRADE_COLUMNS = (*STATE_FIELDS, "updated_at")
EXCEPTION_COLUMNS = (
    "trade_id",
    "trade_version",
    "account",
    "book",
    "status",
    "failed_rules",
    "payload",
    "created_at",
    "resolved_at",
)
TRADE_UPDATES = ", ".join(f"{c} = EXCLUDED.{c}" for c in TRADE_COLUMNS if c != "trade_id")


class StageRaceError(RuntimeError):
    """An exception the stage holds locked changed under it: a locking bug, never expected."""


def handle(messages: Sequence[Message], ctx: StageContext) -> StageResult:
    """Evaluate a batch of captured versions; emit the ones that pass or cancel."""
    writes = process(messages, selectors.batch_input(messages))
    write_effects(writes, ctx.now)
    events = [
        Outbound(
            topic=topics.TRADES_VALIDATED,
            key=payload["account"],
            schema="trades.validated",
            payload=payload,
            cause=message,
        )
        for message, payload in writes.validated
    ]
    rejections = [Rejection(m, error_class, reason) for m, error_class, reason in writes.rejections]
    return StageResult(events=events, rejections=rejections)


def write_effects(writes: BatchWrites, now: datetime) -> None:
    """Write one batch's effects with a fixed number of bulk statements."""
    # One row per judged version, not one per rule row (nine with the default rules), COPYed
    # straight in: versions only move forward and the batch's trade rows are locked, so a version
    # is never judged twice. Should two consumers ever race on one, the unique constraint fails
    # the later batch, which is applied again message by message and finds the version held.
    copy_insert(
        VersionVerdict._meta.db_table,
        VERDICT_COLUMNS,
        (
            (
                v.trade_id,
                v.trade_version,
                v.passed,
                v.failed_rules,
                orjson.dumps([r.as_json() for r in v.results]).decode(),  # json's is 11x slower
                now,
            )
            for v in writes.verdicts
        ),
    )
    _upsert_trades(writes.trades.values(), now)
    audit = _close_existing(writes.closed, now)
    audit += _create_exceptions(writes.new_exceptions, now)
    AuditEntry.objects.bulk_create(audit)
    services.reference_prices_record(
        prices=writes.prices, source=ReferencePrice.Source.TRADE, now=now
    )


def _upsert_trades(states: Iterable[TradeState], now: datetime) -> None:
    rows = [(*(getattr(s, f) for f in STATE_FIELDS), now) for s in states]
    if rows:
        copy_insert(
            ComplianceTrade._meta.db_table,
            TRADE_COLUMNS,
            rows,
            on_conflict=f"(trade_id) DO UPDATE SET {TRADE_UPDATES}",
        )


def _close_existing(closed: dict[int, tuple[str, int]], now: datetime) -> list[AuditEntry]:
    """Move OPEN exceptions to SUPERSEDED/CANCELLED; invalidate their ACTIVE proposals."""
    if not closed:
        return []
    by_status: dict[str, list[int]] = {}
    for exception_id, (status, _) in closed.items():
        by_status.setdefault(status, []).append(exception_id)
    for status, ids in by_status.items():
        changed = ComplianceException.objects.filter(id__in=ids, status=OPEN).update(
            status=status, resolved_at=now
        )
        if changed != len(ids):
            # The batch's trade rows are locked and a confirmation locks its trade row first.
            raise StageRaceError(f"exceptions {ids} changed while locked")
    trades = dict(ComplianceException.objects.filter(id__in=closed).values_list("id", "trade_id"))
    audit = [
        _system_entry(
            action=f"compliance.exception.{status.lower()}",
            object_type="compliance.exception",
            object_id=exception_id,
            at=now,
            before={"status": OPEN},
            after={"status": status},
            reason=CLOSED_BECAUSE[status].format(trade_id=trades[exception_id], version=version),
        )
        for exception_id, (status, version) in closed.items()
    ]
    return audit + _invalidate_proposals(closed, trades, now)


def _invalidate_proposals(
    closed: dict[int, tuple[str, int]], trades: dict[int, str], now: datetime
) -> list[AuditEntry]:
    active = ExceptionProposal.objects.filter(
        exception_id__in=closed, status=ExceptionProposal.Status.ACTIVE
    )
    proposals = list(active.values("id", "exception_id", "action", "proposed_by_name", "reason"))
    if not proposals:
        return []
    active.update(
        status=ExceptionProposal.Status.INVALIDATED, resolved_by_name=SYSTEM, resolved_at=now
    )
    entries = []
    for p in proposals:
        status, version = closed[p["exception_id"]]
        entries.append(
            _system_entry(
                action="compliance.exception.proposal_invalidated",
                object_type="compliance.exception",
                object_id=p["exception_id"],
                at=now,
                before={"proposal": {**p, "status": ExceptionProposal.Status.ACTIVE}},
                after={"proposal": {**p, "status": ExceptionProposal.Status.INVALIDATED}},
                reason=CLOSED_BECAUSE[status].format(
                    trade_id=trades[p["exception_id"]], version=version
                ),
            )
        )
    return entries


def _create_exceptions(new: list[NewException], now: datetime) -> list[AuditEntry]:
    if not new:
        return []
    copy_insert(
        ComplianceException._meta.db_table,
        EXCEPTION_COLUMNS,
        (
            (
                e.trade_id,
                e.trade_version,
                e.account,
                e.book,
                e.status,
                e.failed_rules,
                orjson.dumps(e.payload).decode(),
                now,
                None if e.status == OPEN else now,
            )
            for e in new
        ),
    )
    closed = [e for e in new if e.status != OPEN]
    if not closed:
        return []
    # Only exceptions created and closed within this batch need their ids (for the audit).
    rows = ComplianceException.objects.filter(
        trade_id__in={e.trade_id for e in closed}
    ).values_list("trade_id", "trade_version", "id")
    ids = {(trade_id, version): pk for trade_id, version, pk in rows}
    return [
        _system_entry(
            action=f"compliance.exception.{e.status.lower()}",
            object_type="compliance.exception",
            object_id=ids[(e.trade_id, e.trade_version)],
            at=now,
            before={"status": OPEN},
            after={"status": e.status},
            reason=CLOSED_BECAUSE[e.status].format(
                trade_id=e.trade_id, version=e.closed_by_version
            ),
        )
        for e in closed
    ]


def _system_entry(
    *,
    action: str,
    object_type: str,
    object_id: int,
    at: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
    reason: str,
) -> AuditEntry:
    # The same row backoffice.audit.services.audit_record writes for actor=None, built here so
    # a batch's system actions are inserted with one statement.
    return AuditEntry(
        at=at,
        actor_id=None,
        actor_name=SYSTEM,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=jsonable(before),
        after=jsonable(after),
        reason=reason,
        request_id="",
    )


STAGE = Stage(
    STAGE_NAME,
    [Subscription(topics.TRADES_CAPTURED, "trades.captured")],
    handle,
)
