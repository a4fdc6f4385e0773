"""Reads of the runtime's tables shared by the dashboard, status and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Sum

from backoffice.streaming.models import ConsumerHeartbeat, DeadLetter
from core import clock

STALE_AFTER = timedelta(seconds=15)


@dataclass(frozen=True)
class StageRow:
    stage: str
    consumers: int
    alive: int
    processed: int
    dead_lettered: int
    lag: int
    last_seen: datetime | None


def stage_overview() -> list[StageRow]:
    """One row per stage: consumers alive, counters and lag from the heartbeats."""
    cutoff = clock.now() - STALE_AFTER
    rows: dict[str, StageRow] = {}
    for beat in ConsumerHeartbeat.objects.order_by("stage"):
        old = rows.get(beat.stage)
        alive = beat.last_seen >= cutoff
        rows[beat.stage] = StageRow(
            stage=beat.stage,
            consumers=(old.consumers if old else 0) + 1,
            alive=(old.alive if old else 0) + int(alive),
            processed=(old.processed if old else 0) + beat.processed,
            dead_lettered=(old.dead_lettered if old else 0) + beat.dead_lettered,
            lag=(old.lag if old else 0) + (beat.lag if alive else 0),
            last_seen=max(filter(None, [old.last_seen if old else None, beat.last_seen])),
        )
    return list(rows.values())


def dead_letter_counts() -> dict[str, int]:
    return dict(
        DeadLetter.objects.filter(status=DeadLetter.Status.NEW)
        .values_list("stage")
        .annotate(n=Count("id"))
        .values_list("stage", "n")
    )


def outbox_backlog() -> int:
    """Events not yet on Kafka: stage batches' and services'."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT coalesce(sum(event_count), 0) FROM streaming_outboxbatch)"
            " + (SELECT count(*) FROM streaming_outboxevent)"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def total_processed() -> int:
    return int(ConsumerHeartbeat.objects.aggregate(n=Sum("processed"))["n"] or 0)
