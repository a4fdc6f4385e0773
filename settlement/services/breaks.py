"""The break workflow operations run by people: assign, comment, resolve, accept.

Every step is a compare-and-swap on the break's status (and owner, for assignment) read at the
start, and writes its audit row in the same transaction: two analysts acting on one break get
one outcome, and the loser is told the break changed. Resolving books a correcting entry as its
own rows (``BreakCorrection`` and an internal ledger movement dated the day the break opened),
never an edit of history; accepting needs a reason.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from backoffice.audit.services import audit_record
from settlement.models import Break, BreakComment, BreakCorrection, SettlementMovement
from settlement.models.breaks import OPEN_STATUSES
from settlement.services.recon import BREAK_OBJECT, break_snapshot

BREAK_NOT_FOUND = "There is no break {break_id}."
BREAK_CLOSED = "Break {break_id} is already {status}: it can no longer be changed."
BREAK_CHANGED = "Break {break_id} changed while you were working on it: reload it and try again."
OWNER_UNKNOWN = "There is no active user {owner!r} to assign break {break_id} to."
COMMENT_REQUIRED = "Write a comment first: it cannot be empty."
REASON_REQUIRED = "Give a reason to accept a break."
RESOLVE_REASON_REQUIRED = "Say why the correcting entry fixes the break."
NOT_CORRECTABLE = (
    "A {category} break is not fixed by a correcting entry: accept it with a reason, or wait "
    "for a later statement to clear it."
)
CORRECTION_ZERO = "A correcting entry of zero changes nothing: give the amount to book."

CORRECTABLE = (
    Break.Category.QUANTITY,
    Break.Category.CASH,
    Break.Category.MISSING_INTERNAL,
    Break.Category.MISSING_CUSTODIAN,
)

Actor = AbstractBaseUser | AnonymousUser


class BreakActionError(Exception):
    """The action is not possible; the message is for the user as it stands."""


class BreakNotFound(BreakActionError):
    pass


class BreakConflict(BreakActionError):
    """The break's state does not allow it (closed, or changed meanwhile)."""


class BreakInvalid(BreakActionError):
    """The request itself is wrong (empty reason, unknown owner, ...)."""


def _load_open(break_id: int) -> Break:
    b = Break.objects.filter(pk=break_id).first()
    if b is None:
        raise BreakNotFound(BREAK_NOT_FOUND.format(break_id=break_id))
    if b.status not in OPEN_STATUSES:
        raise BreakConflict(
            BREAK_CLOSED.format(break_id=break_id, status=b.get_status_display().lower())
        )
    return b


def _swap(b: Break, **changes: object) -> None:
    """CAS from the status and owner read; raise BREAK_CHANGED when someone else won."""
    moved = Break.objects.filter(pk=b.pk, status=b.status, owner=b.owner).update(**changes)
    if moved != 1:
        raise BreakConflict(BREAK_CHANGED.format(break_id=b.pk))


def break_assign(*, break_id: int, owner: str, actor: Actor, now: datetime) -> Break:
    """Make ``owner`` (an active user's name) responsible for an open break.

    Guarantee: the break is open and had the owner read when the change commits, else nothing
    changes and ``BreakActionError`` says why; the audit row records before and after.
    """
    with transaction.atomic():
        b = _load_open(break_id)
        if not get_user_model().objects.filter(username=owner, is_active=True).exists():
            raise BreakInvalid(OWNER_UNKNOWN.format(owner=owner, break_id=break_id))
        before = break_snapshot(b)
        _swap(b, status=Break.Status.ASSIGNED, owner=owner)
        b.refresh_from_db()
        audit_record(
            actor=actor,
            action="break_assigned",
            object_type=BREAK_OBJECT,
            object_id=b.pk,
            at=now,
            before=before,
            after=break_snapshot(b),
        )
    return b


def break_comment(*, break_id: int, text: str, actor: Actor, now: datetime) -> BreakComment:
    """Add a comment to a break (open or closed); comments are never edited.

    Guarantee: a non-empty comment is stored with the author's name frozen, and audited.
    """
    text = text.strip()
    if not text:
        raise BreakInvalid(COMMENT_REQUIRED)
    with transaction.atomic():
        b = Break.objects.filter(pk=break_id).first()
        if b is None:
            raise BreakNotFound(BREAK_NOT_FOUND.format(break_id=break_id))
        comment = BreakComment.objects.create(
            break_record=b, author=_name(actor), text=text, at=now
        )
        audit_record(
            actor=actor,
            action="break_commented",
            object_type=BREAK_OBJECT,
            object_id=b.pk,
            at=now,
            after={"comment": text},
        )
    return comment


def break_resolve(
    *,
    break_id: int,
    reason: str,
    actor: Actor,
    now: datetime,
    amount: Decimal | None = None,
) -> BreakCorrection:
    """Resolve a break by booking a correcting entry to the internal ledger.

    ``amount`` is the signed quantity (or cash) to book on the break's account and asset; by
    default ``-difference``, which brings the books to what the custodian reported. Guarantee:
    the break is open and correctable (QUANTITY, CASH, MISSING_*); the correction is a new
    ``BreakCorrection`` row and a ledger movement valued on the day the break opened, so
    reconciling that date again agrees; the status moves by CAS; all of it is audited in one
    transaction.
    """
    reason = reason.strip()
    if not reason:
        raise BreakInvalid(RESOLVE_REASON_REQUIRED)
    with transaction.atomic():
        b = _load_open(break_id)
        if b.category not in CORRECTABLE:
            raise BreakInvalid(NOT_CORRECTABLE.format(category=b.get_category_display()))
        booked = -b.difference if amount is None else amount
        if booked == 0:
            raise BreakInvalid(CORRECTION_ZERO)
        before = break_snapshot(b)
        _swap(b, status=Break.Status.RESOLVED, closed_at=now, resolution=reason)
        correction = _book_correction(b, booked, reason, actor, now)
        b.refresh_from_db()
        audit_record(
            actor=actor,
            action="break_resolved",
            object_type=BREAK_OBJECT,
            object_id=b.pk,
            at=now,
            before=before,
            after={
                **break_snapshot(b),
                "correction": {"reference": correction.reference, "amount": booked},
            },
            reason=reason,
        )
    return correction


def _book_correction(
    b: Break, amount: Decimal, reason: str, actor: Actor, now: datetime
) -> BreakCorrection:
    """The correcting entry as its own rows: a ledger movement and the correction record."""
    reference = f"BRK-{b.pk}"
    SettlementMovement.objects.create(
        reference=reference,
        source=SettlementMovement.Source.CORRECTION,
        account=b.account,
        asset_type=b.asset_type,
        asset=b.asset,
        amount=amount,
        value_date=b.opened_as_of,
        created_at=now,
    )
    return BreakCorrection.objects.create(
        break_record=b,
        reference=reference,
        account=b.account,
        asset_type=b.asset_type,
        asset=b.asset,
        amount=amount,
        value_date=b.opened_as_of,
        author=_name(actor),
        reason=reason,
        at=now,
    )


def break_accept(*, break_id: int, reason: str, actor: Actor, now: datetime) -> Break:
    """Close a break as accepted (a known, explained difference); the reason is required.

    Guarantee: only an open break is accepted, by CAS, with the reason stored on it and in its
    audit row; nothing is booked.
    """
    reason = reason.strip()
    if not reason:
        raise BreakInvalid(REASON_REQUIRED)
    with transaction.atomic():
        b = _load_open(break_id)
        before = break_snapshot(b)
        _swap(b, status=Break.Status.ACCEPTED, closed_at=now, resolution=reason)
        b.refresh_from_db()
        audit_record(
            actor=actor,
            action="break_accepted",
            object_type=BREAK_OBJECT,
            object_id=b.pk,
            at=now,
            before=before,
            after=break_snapshot(b),
            reason=reason,
        )
    return b


def _name(actor: Actor) -> str:
    return actor.get_username() if isinstance(actor, AbstractBaseUser) else "system"
