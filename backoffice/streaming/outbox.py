"""Emitting events from a service (an approval, a replay), not from a stage handler.

The events are written to the outbox in the caller's transaction, so they are published if and
only if the action that caused them commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson
from django.db import connection, transaction

from backoffice.streaming import topics
from backoffice.streaming.envelope import Encoded, Outbound
from backoffice.streaming.store import encode_events


def outbox_publish(*, events: Sequence[Outbound], now: datetime, group: str = "service") -> None:
    """Validate and enqueue ``events``; must run inside the action's ``transaction.atomic()``.

    Give each event a stable ``event_id`` (e.g. uuid5 of the action's identity) so that a retried
    action cannot publish it twice.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(
            "outbox_publish must run inside the transaction of the action it records"
        )
    insert_outbox(encode_events(group, events, now))


def outbox_publish_raw(
    *,
    topic: str,
    key: str | None,
    value: bytes,
    event_id: uuid.UUID,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Enqueue ``value`` exactly as given, for a topic read without an envelope (trades.executed).

    Validating ``value`` is the caller's job (the inbound topic's consumers validate again). The
    record carries ``event_id`` as a header, so consumers drop a relay's duplicate copy; must run
    inside the action's ``transaction.atomic()``, like ``outbox_publish``.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(
            "outbox_publish_raw must run inside the transaction of the action it records"
        )
    insert_outbox(
        [
            Encoded(
                topic=topic,
                key=key.encode() if key is not None else None,
                value=value,
                headers={
                    "content-type": "application/json",
                    **(headers or {}),
                    "event_id": str(event_id),
                },
                event_id=event_id,
            )
        ]
    )


def insert_outbox(events: Sequence[Encoded]) -> None:
    if not events:
        return
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY streaming_outboxevent (topic, key, value, headers, event_id, created_at)"
            " FROM STDIN"
        ) as copy:
            for event in events:
                copy.write_row(
                    (
                        topics.topic(event.topic),
                        event.key,
                        event.value,
                        orjson.dumps(event.headers).decode(),
                        event.event_id,
                        "now",
                    )
                )
        cursor.execute("SELECT pg_notify('outbox', '')")
