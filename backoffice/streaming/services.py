"""Writes on the runtime's own tables that people trigger: replaying and discarding dead letters."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction

from backoffice.audit.services import audit_record
from backoffice.streaming import topics
from backoffice.streaming.models import DeadLetter


def dead_letter_replay(*, dead_letter_id: int, now: datetime) -> bool:
    """Re-drive a dead letter's original bytes to its source topic, once.

    The status flips NEW -> REPLAYED by compare-and-swap in the same transaction that writes the
    outbox row, so two replays of one dead letter publish it once. The copy carries a stable
    ``event_id`` header, so even a relay retry is applied only once downstream. Returns False when
    the dead letter was not NEW (already replayed or discarded).
    """
    with transaction.atomic():
        changed = DeadLetter.objects.filter(pk=dead_letter_id, status=DeadLetter.Status.NEW).update(
            status=DeadLetter.Status.REPLAYED, replayed_at=now, replay_count=1
        )
        if changed != 1:
            return False
        letter = DeadLetter.objects.get(pk=dead_letter_id)
        headers = {k: v for k, v in (letter.headers or {}).items() if v is not None}
        headers.setdefault("event_id", str(uuid.uuid5(uuid.NAMESPACE_URL, f"replay|{letter.pk}")))
        headers["replay_of"] = str(letter.pk)  # the runtime de-duplicates it by id, not by mark
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO streaming_outboxevent (topic, key, value, headers, event_id, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    topics.topic(letter.source_topic),
                    bytes(letter.key) if letter.key is not None else None,
                    bytes(letter.value),
                    json.dumps(headers),
                    uuid.uuid4(),
                    now,
                ],
            )
            cursor.execute("SELECT pg_notify('outbox', '')")
    return True


def dead_letter_discard(*, dead_letter_id: int, now: datetime) -> bool:
    """Mark a dead letter as deliberately not replayed (compare-and-swap from NEW)."""
    changed = DeadLetter.objects.filter(pk=dead_letter_id, status=DeadLetter.Status.NEW).update(
        status=DeadLetter.Status.DISCARDED, replayed_at=now
    )
    return changed == 1


DEAD_LETTER = "dead_letter"
REPLAYED = "dead_letter.replayed"
DISCARDED = "dead_letter.discarded"


def dead_letter_replay_by_user(
    *, dead_letter_id: int, actor: AbstractBaseUser, now: datetime, reason: str = ""
) -> bool:
    """Replay a dead letter on a person's behalf and audit it, in one transaction.

    Guarantee: the status change, the outbox copy and the audit entry commit together or not at
    all; a dead letter that is no longer NEW is left alone, nothing is audited and False returned.
    """
    with transaction.atomic():
        replayed = dead_letter_replay(dead_letter_id=dead_letter_id, now=now)
        if replayed:
            _audit(actor, REPLAYED, dead_letter_id, DeadLetter.Status.REPLAYED, now, reason)
    return replayed


def dead_letter_discard_by_user(
    *, dead_letter_id: int, actor: AbstractBaseUser, now: datetime, reason: str = ""
) -> bool:
    """Mark a dead letter as deliberately not replayed, audited in the same transaction.

    Guarantee as for ``dead_letter_replay_by_user``: only a NEW dead letter changes, and only a
    change is audited.
    """
    with transaction.atomic():
        discarded = dead_letter_discard(dead_letter_id=dead_letter_id, now=now)
        if discarded:
            _audit(actor, DISCARDED, dead_letter_id, DeadLetter.Status.DISCARDED, now, reason)
    return discarded


def _audit(
    actor: AbstractBaseUser,
    action: str,
    dead_letter_id: int,
    status: str,
    now: datetime,
    reason: str,
) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type=DEAD_LETTER,
        object_id=dead_letter_id,
        at=now,
        before={"status": DeadLetter.Status.NEW.value},
        after={"status": status},
        reason=reason,
    )
