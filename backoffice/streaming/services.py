"""Writes on the runtime's own tables that people trigger: replaying and discarding dead letters."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django.db import connection, transaction

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
        headers["replay_of"] = str(letter.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO streaming_outboxevent (topic, key, value, headers, event_id, created_at)"
                " VALUES (%s, %s, %s, %s, %s, now())",
                [
                    topics.topic(letter.source_topic),
                    bytes(letter.key) if letter.key is not None else None,
                    bytes(letter.value),
                    json.dumps(headers),
                    uuid.uuid4(),
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
