"""The one PostgreSQL transaction a batch is applied in.

Within a single transaction the runtime (1) locks the group's offset rows for the batch's
partitions and drops records below them — another consumer (a zombie, or the one before a
rebalance) already applied those; (2) drops events whose id the group's inbox has seen; (3) runs
the stage handler; (4) writes emitted events and dead letters to the outbox; (5) advances the
offsets. Either all of it commits or none of it does, which is the exactly-once guarantee: there
is no instant at which effects exist without their offsets, or offsets without their effects.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

from backoffice.streaming import topics
from backoffice.streaming.envelope import (
    DecodeError,
    Encoded,
    Message,
    Outbound,
    derived_event_id,
    encode,
)
from backoffice.streaming.failpoints import failpoint
from backoffice.streaming.schemas import registry
from core import clock


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed record: decoded into ``message``, or carrying the ``error`` that stopped it."""

    topic: str  # logical
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    message: Message | None = None
    error: DecodeError | None = None

    @property
    def event_id(self) -> uuid.UUID | None:
        return self.message.event_id if self.message else None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message the stage refuses (unknown instrument, ...): it is dead-lettered, not retried."""

    message: Message
    error_class: str
    reason: str


@dataclass
class StageResult:
    events: list[Outbound] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True)
class StageContext:
    stage: str
    group: str
    now: datetime


Handler = Callable[[Sequence[Message], StageContext], StageResult]


@dataclass(frozen=True)
class BatchOutcome:
    applied: int
    skipped: int
    dead_lettered: int
    emitted: int
    next_offsets: dict[tuple[str, int], int]


def apply_batch(
    *, stage: str, group: str, handler: Handler, records: Sequence[Record], now: datetime
) -> BatchOutcome:
    """Apply ``records`` exactly once for ``group`` (see the module docstring) and commit."""
    with transaction.atomic():
        fresh, skipped = _claim(group, records)
        messages = [r.message for r in fresh if r.message is not None]
        result = handler(messages, StageContext(stage, group, now)) if messages else StageResult()
        failpoint("mid_effects")
        dead = [(r, r.error.error_class, r.error.reason) for r in fresh if r.error is not None]
        by_offset = {(r.topic, r.partition, r.offset): r for r in fresh}
        dead += [
            (
                by_offset[(j.message.topic, j.message.partition, j.message.offset)],
                j.error_class,
                j.reason,
            )
            for j in result.rejections
        ]
        encoded = encode_events(group, result.events, now)
        encoded += [
            _dead_letter_event(stage, group, record, cls, reason, now)
            for record, cls, reason in dead
        ]
        _insert_dead_letters(stage, group, dead)
        _forget_dead_event_ids(group, [r.event_id for r, _, _ in dead if r.event_id is not None])
        insert_outbox(encoded)
        next_offsets = _advance(group, records)
    return BatchOutcome(
        applied=len(messages) - len(result.rejections),
        skipped=skipped,
        dead_lettered=len(dead),
        emitted=len(result.events),
        next_offsets=next_offsets,
    )


def _claim(group: str, records: Sequence[Record]) -> tuple[list[Record], int]:
    partitions = sorted({(topics.topic(r.topic), r.partition) for r in records})
    with connection.cursor() as cursor:
        cursor.executemany(
            'INSERT INTO streaming_consumeroffset ("group", topic, partition, next_offset, updated_at)'
            ' VALUES (%s, %s, %s, 0, now()) ON CONFLICT ("group", topic, partition) DO NOTHING',
            [(group, t, p) for t, p in partitions],
        )
        # Row locks serialise two consumers that both believe they own a partition.
        cursor.execute(
            "SELECT topic, partition, next_offset FROM streaming_consumeroffset"
            ' WHERE "group" = %s AND (topic, partition) IN (SELECT * FROM unnest(%s::text[], %s::int[]))'
            " ORDER BY topic, partition FOR UPDATE",
            [group, [t for t, _ in partitions], [p for _, p in partitions]],
        )
        stored = {(t, p): o for t, p, o in cursor.fetchall()}
        unseen = [r for r in records if r.offset >= stored[(topics.topic(r.topic), r.partition)]]
        ids = list({r.event_id for r in unseen if r.event_id is not None})
        fresh_ids: set[uuid.UUID] = set()
        if ids:
            cursor.execute(
                'INSERT INTO streaming_processedevent ("group", event_id, processed_at)'
                " SELECT %s, unnest(%s::uuid[]), now() ON CONFLICT DO NOTHING RETURNING event_id",
                [group, ids],
            )
            fresh_ids = {row[0] for row in cursor.fetchall()}
    fresh: list[Record] = []
    for record in unseen:
        event_id = record.event_id
        if event_id is None:
            fresh.append(record)
        elif event_id in fresh_ids:
            fresh_ids.discard(event_id)  # a second copy inside the same batch is a duplicate too
            fresh.append(record)
    return fresh, len(records) - len(fresh)


def _advance(group: str, records: Sequence[Record]) -> dict[tuple[str, int], int]:
    next_offsets: dict[tuple[str, int], int] = {}
    for record in records:
        key = (topics.topic(record.topic), record.partition)
        next_offsets[key] = max(next_offsets.get(key, 0), record.offset + 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE streaming_consumeroffset AS o SET next_offset = GREATEST(o.next_offset, v.n),"
            " updated_at = now() FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS v(t, p, n)"
            ' WHERE o."group" = %s AND o.topic = v.t AND o.partition = v.p',
            [
                [t for t, _ in next_offsets],
                [p for _, p in next_offsets],
                list(next_offsets.values()),
                group,
            ],
        )
    return next_offsets


def encode_events(group: str, events: Sequence[Outbound], now: datetime) -> list[Encoded]:
    schemas = registry()
    sequence: dict[tuple[str, int, int], int] = {}
    encoded = []
    for event in events:
        event_id = event.event_id
        if event_id is None and event.cause is not None:
            cause = event.cause
            slot = (cause.topic, cause.partition, cause.offset)
            sequence[slot] = sequence.get(slot, -1) + 1
            event_id = derived_event_id(group, cause, sequence[slot])
        encoded.append(
            encode(event, registry=schemas, event_id=event_id or uuid.uuid4(), occurred_at=now)
        )
    return encoded


def _dead_letter_event(
    stage: str, group: str, record: Record, error_class: str, reason: str, now: datetime
) -> Encoded:
    value = record.value or b""
    try:
        text: str | None = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    payload = {
        "stage": stage,
        "source_topic": topics.topic(record.topic),
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "error_class": error_class,
        "reason": reason,
        "original_base64": base64.b64encode(value).decode("ascii"),
        "original_text": text,
    }
    event = Outbound(
        topic=topics.dead_letter_topic(record.topic),
        key=record.key.decode("utf-8", "replace") if record.key is not None else None,
        schema="dead_letter",
        payload=payload,
        event_id=uuid.uuid5(
            uuid.NAMESPACE_URL, f"dlq|{group}|{record.topic}|{record.partition}|{record.offset}"
        ),
    )
    encoded = encode(
        event, registry=registry(), event_id=event.event_id or uuid.uuid4(), occurred_at=now
    )
    encoded.headers.update(
        {"dlq_reason": reason[:500], "dlq_error_class": error_class, "dlq_stage": stage}
    )
    return encoded


def _insert_dead_letters(stage: str, group: str, dead: Sequence[tuple[Record, str, str]]) -> None:
    if not dead:
        return
    created_at = clock.now()
    with connection.cursor() as cursor:
        cursor.executemany(
            'INSERT INTO streaming_deadletter (stage, "group", source_topic, partition, "offset",'
            " key, value, headers, error_class, reason, status, created_at, replay_count)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'NEW', %s, 0)"
            ' ON CONFLICT ("group", source_topic, partition, "offset") DO NOTHING',
            [
                (
                    stage,
                    group,
                    r.topic,
                    r.partition,
                    r.offset,
                    r.key,
                    r.value or b"",
                    _headers_json(r.headers),
                    cls,
                    reason,
                    created_at,
                )
                for r, cls, reason in dead
            ],
        )


def _forget_dead_event_ids(group: str, event_ids: list[uuid.UUID]) -> None:
    """A dead-lettered event was not applied: its id must not block its replay."""
    if event_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                'DELETE FROM streaming_processedevent WHERE "group" = %s AND event_id = ANY(%s::uuid[])',
                [group, event_ids],
            )


def _headers_json(headers: Sequence[tuple[str, bytes | None]]) -> str:
    return json.dumps(
        {k: (v.decode("utf-8", "replace") if v is not None else None) for k, v in headers}
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
                        json.dumps(event.headers),
                        event.event_id,
                        "now",
                    )
                )
        cursor.execute("SELECT pg_notify('outbox', '')")
