"""The one PostgreSQL transaction a batch is applied in.

Within a single transaction the runtime (1) locks the group's offset rows for the batch's
partitions and drops records below them — another consumer (a zombie, or the one before a
rebalance) already applied those; (2) drops copies it has already applied: an event another stage
derived from a consumed record carries an ``origin`` (its source and a position in it) and is a
copy when its position is at or below the group's high-water mark for that source on this
partition (``InboxMark``), any other event with an id is a copy when the group's inbox has seen
the id; (3) runs the stage handler; (4) writes emitted events and dead letters to the outbox, as
one row for the batch, which the stage publishes itself once the transaction commits; (5)
advances the offsets. Either all of it commits or none of it does, which is the exactly-once
guarantee: there is no instant at which effects exist without their offsets, or offsets without
their effects.

Why a mark is enough: an origin's source is the emitting group's input partition, and its
position is ``(the batch's last offset on that partition, the event's index among the batch's
events from it)``. Batches of one input partition are serialised by its offset row lock, so
positions grow in commit order; the batch's outbox row keeps that order (ids are assigned in it),
and whoever publishes a row publishes every older row of its sources first, in one Kafka
transaction, read ``read_committed`` (``emitter``). A source's events therefore reach each
partition in increasing position with no gaps, and a re-send can only repeat rows already
published — at or below the mark.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from backoffice.streaming import topics
from backoffice.streaming.emitter import Pending, queue_batch, source
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
    # Outbox rows to publish now that the batch has committed, oldest first (``emitter``).
    pending: Pending = field(default_factory=list)


def apply_batch(
    *,
    stage: str,
    group: str,
    handler: Handler,
    records: Sequence[Record],
    now: datetime,
    published: Sequence[int] = (),
) -> BatchOutcome:
    """Apply ``records`` exactly once for ``group`` (see the module docstring) and commit.

    ``published``: outbox rows this process has published since its last batch, deleted here.
    """
    with transaction.atomic():
        fresh, skipped = _claim(group, records)
        messages = [r.message for r in fresh if r.message is not None]
        result = handler(messages, StageContext(stage, group, now)) if messages else StageResult()
        batch_ends: dict[tuple[str, int], int] = {}
        for m in messages:
            slot = (m.topic, m.partition)
            batch_ends[slot] = max(batch_ends.get(slot, m.offset), m.offset)
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
        encoded = encode_events(group, result.events, now, batch_ends=batch_ends)
        encoded += [
            _dead_letter_event(stage, group, record, cls, reason, now)
            for record, cls, reason in dead
        ]
        _insert_dead_letters(stage, group, dead)
        _forget_dead_event_ids(group, [r.event_id for r, _, _ in dead if r.event_id is not None])
        sources = sorted({source(group, topics.topic(r.topic), r.partition) for r in records})
        pending = queue_batch(encoded, sources, published=published)
        next_offsets = _advance(group, records)
    return BatchOutcome(
        applied=len(messages) - len(result.rejections),
        skipped=skipped,
        dead_lettered=len(dead),
        emitted=len(result.events),
        next_offsets=next_offsets,
        pending=pending,
    )


def _claim(group: str, records: Sequence[Record]) -> tuple[list[Record], int]:
    partitions = sorted({(topics.topic(r.topic), r.partition) for r in records})
    with connection.cursor() as cursor:
        cursor.executemany(
            'INSERT INTO streaming_consumeroffset ("group", topic, partition, next_offset, updated_at)'
            ' VALUES (%s, %s, %s, 0, now()) ON CONFLICT ("group", topic, partition) DO NOTHING',
            [(group, t, p) for t, p in partitions],
        )
        # Row locks serialise two consumers that both believe they own a partition; they also
        # guard this group's marks on these partitions.
        cursor.execute(
            "SELECT topic, partition, next_offset FROM streaming_consumeroffset"
            ' WHERE "group" = %s AND (topic, partition) IN (SELECT * FROM unnest(%s::text[], %s::int[]))'
            " ORDER BY topic, partition FOR UPDATE",
            [group, [t for t, _ in partitions], [p for _, p in partitions]],
        )
        stored = {(t, p): o for t, p, o in cursor.fetchall()}
        unseen = [
            (r, origin_of(r))
            for r in records
            if r.offset >= stored[(topics.topic(r.topic), r.partition)]
        ]
        marks = _read_marks(cursor, group, {_mark_key(r, o) for r, o in unseen if o is not None})
        ids = list({r.event_id for r, o in unseen if o is None and r.event_id is not None})
        fresh_ids: set[uuid.UUID] = set()
        if ids:
            cursor.execute(
                'INSERT INTO streaming_processedevent ("group", event_id, processed_at)'
                " SELECT %s, unnest(%s::uuid[]), now() ON CONFLICT DO NOTHING RETURNING event_id",
                [group, ids],
            )
            fresh_ids = {row[0] for row in cursor.fetchall()}
        fresh: list[Record] = []
        raised: dict[tuple[str, int, str], tuple[int, int]] = {}
        for record, origin in unseen:
            if origin is not None:
                key = _mark_key(record, origin)
                position = (origin.offset, origin.seq)
                mark = marks.get(key)
                if mark is None or position > mark:
                    marks[key] = raised[key] = position
                    fresh.append(record)
                continue
            event_id = record.event_id
            if event_id is None:
                fresh.append(record)
            elif event_id in fresh_ids:
                # A second copy inside the same batch is a duplicate too.
                fresh_ids.discard(event_id)
                fresh.append(record)
        _raise_marks(cursor, group, raised)
    return fresh, len(records) - len(fresh)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a derived event came from: ``source`` (group|topic|partition) and its position."""

    source: str
    offset: int
    seq: int

    def header(self) -> str:
        return f"{self.source}|{self.offset}|{self.seq}"


ORIGIN_HEADER = "origin"
REPLAY_HEADER = "replay_of"


def origin_of(record: Record) -> Origin | None:
    """The record's origin, or None when its copies are told apart by event id instead.

    A replayed dead letter keeps its original headers but is a new delivery of an event that was
    never applied: it goes through the event-id inbox, never through a mark it is already below.
    """
    raw = None
    for name, value in record.headers:
        if name == REPLAY_HEADER:
            return None
        if name == ORIGIN_HEADER:
            raw = value
    if raw is None:
        return None
    try:
        source, offset, seq = raw.decode("utf-8").rsplit("|", 2)
        return Origin(source, int(offset), int(seq))
    except (UnicodeDecodeError, ValueError):
        return None  # not ours: the event-id inbox still de-duplicates it


def _mark_key(record: Record, origin: Origin) -> tuple[str, int, str]:
    return (topics.topic(record.topic), record.partition, origin.source)


def _read_marks(
    cursor: Any, group: str, keys: set[tuple[str, int, str]]
) -> dict[tuple[str, int, str], tuple[int, int]]:
    if not keys:
        return {}
    cursor.execute(
        "SELECT topic, partition, source, source_offset, source_seq FROM streaming_inboxmark"
        ' WHERE "group" = %s AND (topic, partition, source) IN'
        " (SELECT * FROM unnest(%s::text[], %s::int[], %s::text[]))",
        [group, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]],
    )
    return {(t, p, s): (o, q) for t, p, s, o, q in cursor.fetchall()}


def _raise_marks(
    cursor: Any, group: str, raised: dict[tuple[str, int, str], tuple[int, int]]
) -> None:
    if not raised:
        return
    cursor.execute(
        "INSERT INTO streaming_inboxmark"
        ' ("group", topic, partition, source, source_offset, source_seq, updated_at)'
        " SELECT %s, v.t, v.p, v.s, v.o, v.q, now()"
        " FROM unnest(%s::text[], %s::int[], %s::text[], %s::bigint[], %s::int[]) AS v(t, p, s, o, q)"
        ' ON CONFLICT ("group", topic, partition, source) DO UPDATE'
        " SET source_offset = EXCLUDED.source_offset, source_seq = EXCLUDED.source_seq,"
        " updated_at = EXCLUDED.updated_at"
        " WHERE (streaming_inboxmark.source_offset, streaming_inboxmark.source_seq)"
        " < (EXCLUDED.source_offset, EXCLUDED.source_seq)",
        [
            group,
            [k[0] for k in raised],
            [k[1] for k in raised],
            [k[2] for k in raised],
            [p[0] for p in raised.values()],
            [p[1] for p in raised.values()],
        ],
    )


def _advance(group: str, records: Sequence[Record]) -> dict[tuple[str, int], int]:
    next_offsets: dict[tuple[str, int], int] = {}
    for record in records:
        key = (topics.topic(record.topic), record.partition)
        next_offsets[key] = max(next_offsets.get(key, 0), record.offset + 1)
    advance_offsets(group, next_offsets)
    return next_offsets


def advance_offsets(group: str, next_offsets: dict[tuple[str, int], int]) -> None:
    """Raise the group's stored offsets to ``next_offsets`` (physical topic, partition): never
    lowered, so a late writer of an older offset changes nothing."""
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO streaming_consumeroffset ("group", topic, partition, next_offset, updated_at)'
            " SELECT %s, v.t, v.p, v.n, now()"
            " FROM unnest(%s::text[], %s::int[], %s::bigint[]) AS v(t, p, n)"
            ' ON CONFLICT ("group", topic, partition) DO UPDATE'
            " SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at"
            " WHERE streaming_consumeroffset.next_offset < EXCLUDED.next_offset",
            [
                group,
                [t for t, _ in next_offsets],
                [p for _, p in next_offsets],
                list(next_offsets.values()),
            ],
        )


def encode_events(
    group: str,
    events: Sequence[Outbound],
    now: datetime,
    *,
    batch_ends: dict[tuple[str, int], int] | None = None,
) -> list[Encoded]:
    """Encode ``events`` in order; one derived from a record of the batch gets its ``origin``.

    ``batch_ends`` holds the batch's last applied offset per input (logical topic, partition);
    events emitted outside a batch (services) pass none and are de-duplicated by event id.
    """
    schemas = registry()
    sequence: dict[tuple[str, int, int], int] = {}
    emitted: dict[tuple[str, int], int] = {}
    encoded = []
    for event in events:
        event_id = event.event_id
        cause = event.cause
        if event_id is None and cause is not None:
            slot = (cause.topic, cause.partition, cause.offset)
            sequence[slot] = sequence.get(slot, -1) + 1
            event_id = derived_event_id(group, cause, sequence[slot])
        item = encode(event, registry=schemas, event_id=event_id or uuid.uuid4(), occurred_at=now)
        if cause is not None and batch_ends and event.event_id is None:
            input_partition = (cause.topic, cause.partition)
            end = batch_ends.get(input_partition)
            if end is not None:
                seq = emitted.get(input_partition, 0)
                emitted[input_partition] = seq + 1
                origin = Origin(source(group, topics.topic(cause.topic), cause.partition), end, seq)
                item.headers[ORIGIN_HEADER] = origin.header()
        encoded.append(item)
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
