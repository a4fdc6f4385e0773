"""Emitting events from a service (an approval, a replay), not from a stage handler.

The events are written to the outbox in the caller's transaction, so they are published if and
only if the action that caused them commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from backoffice.streaming.envelope import Outbound
from backoffice.streaming.store import encode_events, insert_outbox


def outbox_publish(*, events: Sequence[Outbound], now: datetime, group: str = "service") -> None:
    """Validate and enqueue ``events``; must run inside the action's ``transaction.atomic()``.

    Give each event a stable ``event_id`` (e.g. uuid5 of the action's identity) so that a retried
    action cannot publish it twice.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_publish must run inside the transaction of the action it records")
    insert_outbox(encode_events(group, events, now))
