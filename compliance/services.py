"""Writes made by people: the four-eyes decisions on exceptions and the restricted list; and
the reference-price upsert every price writer shares.

Four-eyes: an operations user (the maker) proposes APPROVE or REJECT with a reason; a
different user with the approver role (the checker) confirms it. The maker can withdraw an
unconfirmed proposal; nobody can confirm their own. Each action is one transaction with its audit
entry, and a confirmation writes its event to the outbox in that same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction

from backoffice import roles
from backoffice.audit.services import audit_record
from backoffice.streaming import topics
from backoffice.streaming.envelope import EVENT_NAMESPACE, Outbound
from backoffice.streaming.outbox import outbox_publish
from compliance import errors, selectors
from compliance.batch import validated_payload
from compliance.ledger import LastPrice
from compliance.models import (
    ComplianceException,
    ComplianceTrade,
    ExceptionProposal,
    ReferencePrice,
    RestrictedInstrument,
)

Actor = AbstractBaseUser | AnonymousUser
EXCEPTION = "compliance.exception"
Status = ComplianceException.Status
Proposal = ExceptionProposal


def _require_role(actor: Actor, role: str) -> None:
    if not roles.has_role(actor, role):
        raise errors.Forbidden(roles.NOT_ALLOWED.format(role=role))


def _user_id(actor: Actor) -> int:
    return int(actor.pk) if actor.pk is not None else 0


def _username(actor: Actor) -> str:
    return str(actor.get_username())


def _lock_exception(exception_id: int) -> ComplianceException:
    found = ComplianceException.objects.select_for_update().filter(pk=exception_id).first()
    if found is None:
        raise errors.NotFound(errors.EXCEPTION_NOT_FOUND.format(exception_id=exception_id))
    return found


def _active(exception: ComplianceException) -> ExceptionProposal | None:
    return exception.proposals.filter(status=Proposal.Status.ACTIVE).first()


def _snapshot(proposal: ExceptionProposal) -> dict[str, Any]:
    return {
        "id": proposal.pk,
        "action": proposal.action,
        "status": proposal.status,
        "proposed_by": proposal.proposed_by_name,
        "reason": proposal.reason,
    }


def exception_propose(
    *, exception_id: int, actor: Actor, action: str, reason: str, now: datetime
) -> ExceptionProposal:
    """Record ``actor``'s proposal to APPROVE or REJECT an OPEN exception, awaiting a checker.

    Guarantee: the actor has the operations role or above, the reason is not blank, the
    exception is OPEN and had no ACTIVE proposal (a pending proposal is never replaced: it must
    be confirmed or withdrawn first); the proposal and its audit entry commit together.
    """
    _require_role(actor, roles.OPERATIONS)
    action = action.strip().upper()
    if action not in Proposal.Action.values:
        raise errors.Invalid(errors.UNKNOWN_ACTION.format(action=action))
    if not reason.strip():
        raise errors.Invalid(errors.REASON_REQUIRED)
    with transaction.atomic():
        exception = _lock_exception(exception_id)
        if exception.status != Status.OPEN:
            raise errors.Conflict(errors.NOT_OPEN.format(status=exception.status))
        pending = _active(exception)
        if pending is not None:
            raise errors.Conflict(
                errors.PROPOSAL_PENDING.format(
                    action=pending.action, maker=pending.proposed_by_name
                )
            )
        proposal = ExceptionProposal.objects.create(
            exception=exception,
            action=action,
            reason=reason.strip(),
            proposed_by_id=_user_id(actor),
            proposed_by_name=_username(actor),
            proposed_at=now,
        )
        audit_record(
            actor=actor,
            action="compliance.exception.propose",
            object_type=EXCEPTION,
            object_id=exception.pk,
            at=now,
            before={"status": exception.status, "proposal": None},
            after={"status": exception.status, "proposal": _snapshot(proposal)},
            reason=proposal.reason,
        )
    return proposal


def exception_confirm(*, exception_id: int, actor: Actor, now: datetime) -> ComplianceException:
    """Confirm the ACTIVE proposal as a second pair of eyes: the exception is decided, once.

    Guarantee: the actor has the approver role and is not the proposal's maker; the exception
    moves OPEN -> APPROVED or REJECTED by compare-and-swap under the trade's row lock, so two
    checkers confirming at once produce exactly one decision (the other gets a conflict). On
    approval the captured version is emitted on trades.validated (outcome APPROVED, approved_by
    [maker, checker], override_reason); on rejection it is emitted on trades.rejected. The
    event (with an id derived from the decision), the trade's new status and the audit entry
    commit together with the decision.
    """
    _require_role(actor, roles.APPROVER)
    with transaction.atomic():
        exception = _lock_exception_and_trade(exception_id)
        if exception.status != Status.OPEN:
            raise errors.Conflict(errors.NOT_OPEN.format(status=exception.status))
        proposal = _active(exception)
        if proposal is None:
            raise errors.Conflict(errors.NO_ACTIVE_PROPOSAL)
        if proposal.proposed_by_id == _user_id(actor):
            raise errors.Forbidden(errors.MAKER_CANNOT_CONFIRM)
        approve = proposal.action == Proposal.Action.APPROVE
        decided = Status.APPROVED if approve else Status.REJECTED
        _swap_exception(exception, decided, now)
        _swap_proposal(proposal, Proposal.Status.CONFIRMED, actor, now)
        _decide_trade(exception, approved=approve, now=now)
        makers = [proposal.proposed_by_name, _username(actor)]
        outbox_publish(events=[_decision_event(exception, proposal, makers)], now=now)
        audit_record(
            actor=actor,
            action="compliance.exception.confirm",
            object_type=EXCEPTION,
            object_id=exception.pk,
            at=now,
            before={"status": Status.OPEN, "proposal": _snapshot(proposal)},
            after={
                "status": decided,
                "decided_by": makers,
                "trade_version": exception.trade_version,
            },
            reason=proposal.reason,
        )
        exception.status, exception.resolved_at = decided, now
    return exception


def exception_withdraw(*, exception_id: int, actor: Actor, now: datetime) -> ExceptionProposal:
    """Withdraw the maker's own ACTIVE proposal, leaving the exception OPEN for a new one.

    Guarantee: only the user who proposed it can withdraw it, and only while it awaits
    confirmation (compare-and-swap ACTIVE -> WITHDRAWN); the audit entry commits with it.
    """
    _require_role(actor, roles.OPERATIONS)
    with transaction.atomic():
        exception = _lock_exception(exception_id)
        proposal = _active(exception)
        if proposal is None:
            raise errors.Conflict(errors.NO_ACTIVE_PROPOSAL)
        if proposal.proposed_by_id != _user_id(actor):
            raise errors.Forbidden(
                errors.ONLY_MAKER_WITHDRAWS.format(maker=proposal.proposed_by_name)
            )
        before = _snapshot(proposal)
        _swap_proposal(proposal, Proposal.Status.WITHDRAWN, actor, now)
        audit_record(
            actor=actor,
            action="compliance.exception.withdraw",
            object_type=EXCEPTION,
            object_id=exception.pk,
            at=now,
            before={"status": exception.status, "proposal": before},
            after={"status": exception.status, "proposal": _snapshot(proposal)},
            reason=proposal.reason,
        )
    return proposal


def _lock_exception_and_trade(exception_id: int) -> ComplianceException:
    # Lock order trade row -> exception row, the same as the stage's, so they cannot deadlock.
    found = ComplianceException.objects.filter(pk=exception_id).values_list("trade_id").first()
    if found is None:
        raise errors.NotFound(errors.EXCEPTION_NOT_FOUND.format(exception_id=exception_id))
    list(ComplianceTrade.objects.select_for_update().filter(trade_id=found[0]))
    return _lock_exception(exception_id)


def _swap_exception(exception: ComplianceException, status: str, now: datetime) -> None:
    changed = ComplianceException.objects.filter(pk=exception.pk, status=Status.OPEN).update(
        status=status, resolved_at=now
    )
    if changed != 1:
        raise errors.Conflict(errors.NOT_OPEN.format(status="already decided"))


def _swap_proposal(proposal: ExceptionProposal, status: str, actor: Actor, now: datetime) -> None:
    changed = ExceptionProposal.objects.filter(
        pk=proposal.pk, status=Proposal.Status.ACTIVE
    ).update(
        status=status,
        resolved_by_id=_user_id(actor),
        resolved_by_name=_username(actor),
        resolved_at=now,
    )
    if changed != 1:
        raise errors.Conflict(errors.NO_ACTIVE_PROPOSAL)
    proposal.status, proposal.resolved_at = status, now
    proposal.resolved_by_id, proposal.resolved_by_name = _user_id(actor), _username(actor)


def _decide_trade(exception: ComplianceException, *, approved: bool, now: datetime) -> None:
    waiting = ComplianceTrade.objects.filter(
        trade_id=exception.trade_id,
        version=exception.trade_version,
        status=ComplianceTrade.Status.WAITING,
    )
    row = waiting.first()
    if row is None:
        current = ComplianceTrade.objects.filter(trade_id=exception.trade_id).first()
        raise errors.Conflict(
            errors.TRADE_MOVED_ON.format(
                trade_id=exception.trade_id,
                version=current.version if current else "?",
                exception_version=exception.trade_version,
            )
        )
    # A decision moves the trade's account-day notional and, when approved, its counterparty's
    # exposure: it waits for a batch reading those totals, as that batch would wait for it.
    selectors.limits_lock(accounts={row.account}, counterparties={row.counterparty})
    if approved:
        changed = waiting.update(
            status=ComplianceTrade.Status.VALIDATED,
            validated_version=row.version,
            validated_counterparty=row.counterparty,
            validated_notional_base=row.notional_base,
            validated_settle_date=row.settle_date,
            updated_at=now,
        )
    else:
        changed = waiting.update(status=ComplianceTrade.Status.REJECTED, updated_at=now)
    if changed != 1:  # pragma: no cover - the row is locked since _lock_exception_and_trade
        raise errors.Conflict(errors.NOT_OPEN.format(status="already decided"))


def _decision_event(
    exception: ComplianceException, proposal: ExceptionProposal, makers: list[str]
) -> Outbound:
    payload: Mapping[str, Any] = exception.payload
    event_id = uuid.uuid5(EVENT_NAMESPACE, f"compliance.exception|{exception.pk}|decision")
    if proposal.action == Proposal.Action.APPROVE:
        block = {
            "outcome": "APPROVED",
            "exception_id": exception.pk,
            "approved_by": makers,
            "override_reason": proposal.reason,
        }
        return Outbound(
            topic=topics.TRADES_VALIDATED,
            key=payload["account"],
            schema="trades.validated",
            payload=validated_payload(payload, block),
            correlation_id=exception.trade_id,
            event_id=event_id,
        )
    return Outbound(
        topic=topics.TRADES_REJECTED,
        key=payload["account"],
        schema="trades.rejected",
        payload={
            **payload,
            "exception_id": exception.pk,
            "rejected_by": makers,
            "reason": proposal.reason,
            "failed_rules": list(exception.failed_rules),
        },
        correlation_id=exception.trade_id,
        event_id=event_id,
    )


# -- restricted list and reference prices ----------------------------------------------------


def restricted_instrument_add(
    *, isin: str, reason: str, actor: Actor, now: datetime
) -> RestrictedInstrument:
    """Put ``isin`` on the restricted list (audited); from the next batch on, trades fail."""
    if not reason.strip():
        raise errors.Invalid(errors.REASON_REQUIRED)
    with transaction.atomic():
        entry = RestrictedInstrument.objects.create(
            isin=isin, reason=reason.strip(), added_by=_username(actor), added_at=now
        )
        audit_record(
            actor=actor,
            action="compliance.restricted.add",
            object_type="compliance.restricted",
            object_id=isin,
            at=now,
            after={"isin": isin, "reason": entry.reason},
            reason=entry.reason,
        )
    return entry


def restricted_instrument_remove(*, isin: str, actor: Actor, reason: str, now: datetime) -> bool:
    """Take ``isin`` off the restricted list (audited); False when it was not on it."""
    with transaction.atomic():
        entry = RestrictedInstrument.objects.select_for_update().filter(isin=isin).first()
        if entry is None:
            return False
        before = {"isin": isin, "reason": entry.reason, "added_by": entry.added_by}
        entry.delete()
        audit_record(
            actor=actor,
            action="compliance.restricted.remove",
            object_type="compliance.restricted",
            object_id=isin,
            at=now,
            before=before,
            reason=reason,
        )
    return True


def reference_prices_record(*, prices: Mapping[str, LastPrice], source: str, now: datetime) -> None:
    """Upsert reference prices in one statement; per ISIN the latest ``as_of`` wins.

    Guarantee: whichever writers (this stage, a market-data consumer) commit in whatever order,
    an ISIN's row ends with the observation that has the latest ``as_of``, never an older one.
    ``now`` is unused today: ``as_of`` is the observation's own time.
    """
    if not prices:
        return
    table = ReferencePrice._meta.db_table
    ordered = sorted(prices.items())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS held (isin, price, currency, as_of, source)"
            " SELECT isin, price, currency, as_of, %s FROM unnest("
            " %s::text[], %s::numeric[], %s::text[], %s::timestamptz[]"
            " ) AS v(isin, price, currency, as_of)"
            " ON CONFLICT (isin) DO UPDATE SET price = EXCLUDED.price,"
            " currency = EXCLUDED.currency, as_of = EXCLUDED.as_of, source = EXCLUDED.source"
            " WHERE held.as_of <= EXCLUDED.as_of",
            [
                source,
                [isin for isin, _ in ordered],
                [p.price for _, p in ordered],
                [p.currency for _, p in ordered],
                [p.as_of for _, p in ordered],
            ],
        )
