"""A stage publishes its own output, right after the batch that emitted it commits.

The batch's events are written in its transaction as one ``OutboxBatch`` row (``queue_batch``),
so they exist if and only if the effects that caused them do. Once the transaction commits the
stage publishes the row in one Kafka transaction (``Emitter.publish``) and deletes it in its next
transaction. No relay process, no row per event, no second read of what the stage just wrote.

Why the consumers' high-water marks (``store._claim``) still see every source's events in
increasing position with no gaps: a row's ``sources`` are the batch's input partitions, and
batches of one input partition are serialised by its offset row lock, so rows of one source are
committed in id order. Whoever publishes a row publishes, in the same Kafka transaction and
before it, every older row still here that shares a source with it — the crashed predecessor's
row a zombie never sent, the batch whose publish failed. A row is deleted only after its
transaction committed in Kafka. So a source's events reach each partition in row order; a second
publisher (a zombie that wakes up, a restart that re-sends) can only repeat rows already
published, which the marks drop.

A row a crash left behind is re-sent when a consumer is assigned one of its sources
(``Emitter.resend``), and after a failed publish at the next step.
"""

from __future__ import annotations

import logging
import struct
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import orjson
import psycopg
from confluent_kafka import KafkaException, Producer
from django.db import connection

from backoffice.streaming import metrics, topics
from backoffice.streaming.envelope import Encoded
from backoffice.streaming.failpoints import failpoint
from backoffice.streaming.relay import pg_connect, produce, transactional_producer

log = logging.getLogger("backoffice.streaming")

# Pending rows: ids with their events (topics physical), oldest first.
Pending = list[tuple[int, list[Encoded]]]

# -- the row's format ------------------------------------------------------------------------
# Per event: its id, then the lengths of topic, key (-1: none), value and headers, then those bytes.
_HEAD = struct.Struct(">16sHiII")


def physical(events: Iterable[Encoded]) -> list[Encoded]:
    """``events`` addressed to their physical topics (``<prefix><logical>``), as they are stored
    and published."""
    return [replace(event, topic=topics.topic(event.topic)) for event in events]


def pack_events(events: Iterable[Encoded]) -> bytes:
    """Events as one blob, in order."""
    parts: list[bytes] = []
    for event in events:
        name = event.topic.encode("utf-8")
        headers = orjson.dumps(event.headers)
        key = event.key
        parts.append(
            _HEAD.pack(
                event.event_id.bytes,
                len(name),
                -1 if key is None else len(key),
                len(event.value),
                len(headers),
            )
        )
        parts += [name, key or b"", event.value, headers]
    return b"".join(parts)


def unpack_events(blob: bytes | memoryview) -> list[Encoded]:
    view = memoryview(blob)
    events: list[Encoded] = []
    at = 0
    while at < len(view):
        event_id, topic_len, key_len, value_len, headers_len = _HEAD.unpack_from(view, at)
        at += _HEAD.size
        topic = bytes(view[at : at + topic_len]).decode("utf-8")
        at += topic_len
        key = None if key_len < 0 else bytes(view[at : at + key_len])
        at += max(key_len, 0)
        value = bytes(view[at : at + value_len])
        at += value_len
        headers = orjson.loads(view[at : at + headers_len])
        at += headers_len
        events.append(Encoded(topic, key, value, headers, uuid.UUID(bytes=event_id)))
    return events


def source(group: str, physical_topic: str, partition: int) -> str:
    """An input partition of ``group``, spelt like the ``source`` of an event's origin."""
    return f"{group}|{physical_topic}|{partition}"


# -- the rows ----------------------------------------------------------------------------------
def _cursor() -> psycopg.Cursor[Any]:
    """A cursor binding its parameters on the server: the blob travels as bytes, not as a
    hex-escaped literal in the statement (Django's connection binds on the client)."""
    raw = connection.connection
    assert raw is not None
    return psycopg.Cursor(raw)


def queue_batch(
    events: Sequence[Encoded], sources: Sequence[str], *, published: Sequence[int] = ()
) -> Pending:
    """In the batch's transaction: forget rows this process ``published``, write ``events`` as
    one row, and return what must be published once the transaction commits — older rows still
    pending for these sources, then this one (its events as given, not read back)."""
    forget_published(published)
    if not events:
        return []
    mine = physical(events)
    blob = pack_events(mine)
    with _cursor() as cursor:
        cursor.execute(
            "INSERT INTO streaming_outboxbatch (sources, events, event_count, created_at)"
            " VALUES (%s::varchar[], %b, %s, now()) RETURNING id",
            [list(sources), blob, len(events)],
        )
        row = cursor.fetchone()
        assert row is not None
        # The batch holds its sources' offset row locks: no older row of theirs can commit later.
        older = cursor.execute(
            "SELECT id, events FROM streaming_outboxbatch WHERE sources && %s::varchar[] AND id < %s"
            " ORDER BY id",
            [list(sources), row[0]],
        ).fetchall()
    return [(i, unpack_events(b)) for i, b in older] + [(row[0], mine)]


def pending_for(sources: Sequence[str], *, published: Sequence[int] = ()) -> Pending:
    """Rows still to publish for ``sources`` (not the ones this process already published)."""
    if not sources:
        return []
    with _cursor() as cursor:
        rows = cursor.execute(
            "SELECT id, events FROM streaming_outboxbatch"
            " WHERE sources && %s::varchar[] AND NOT id = ANY(%s::bigint[]) ORDER BY id",
            [list(sources), list(published)],
        ).fetchall()
    return [(i, unpack_events(b)) for i, b in rows]


def forget_published(published: Sequence[int]) -> None:
    """Delete rows this process published: in its next batch's transaction, or on its own when
    the stage is idle or stopping."""
    if published:
        with _cursor() as cursor:
            cursor.execute(
                "DELETE FROM streaming_outboxbatch WHERE id = ANY(%s::bigint[])", [list(published)]
            )


# -- the producer ------------------------------------------------------------------------------
COMMIT_TIMEOUT_SECONDS = 60


class Emitter:
    """One stage process's transactional producer and what it has published but not deleted.

    Its transactional id is ``<group>#<slot>``, the slot the lowest one free, held by a
    PostgreSQL advisory lock for the life of the process: a consumer restarted after kill -9
    takes the dead one's slot, and its ``init_transactions`` aborts the transaction the dead one
    left open at once, instead of ``read_committed`` readers of those partitions waiting for the
    transaction's timeout.
    """

    def __init__(self, stage: str, group: str):
        self.stage = stage
        self.group = group
        self.producer: Producer | None = None
        self.slot_connection: psycopg.Connection[Any] | None = None
        self.published: list[int] = []
        self.resend = False  # re-send what is pending for every assigned source at the next step

    def publish(self, rows: Pending) -> bool:
        """Publish ``rows`` in one Kafka transaction; False (and a re-send due) if it failed."""
        if not rows:
            return True
        try:
            producer = self._producer()
            producer.begin_transaction()
            count = 0
            for _, events in rows:
                for event in events:
                    produce(producer, event.topic, event.key, event.value, event.headers)
                count += len(events)
            failpoint("stage_mid_publish")
            producer.commit_transaction(COMMIT_TIMEOUT_SECONDS)
        except (KafkaException, psycopg.Error) as error:
            metrics.PUBLISH_FAILED.labels(self.stage).inc()
            log.warning("publishing the batch's events failed; re-sending next step: %s", error)
            self.close()  # the next producer aborts the transaction this one left open
            self.resend = True
            return False
        failpoint("stage_after_publish")
        metrics.PUBLISHED.labels(self.stage).inc(count)
        self.published.extend(i for i, _ in rows)
        return True

    def forget(self, deleted: Sequence[int]) -> None:
        gone = set(deleted)
        self.published = [i for i in self.published if i not in gone]

    def _producer(self) -> Producer:
        if self.producer is None:
            self.producer = transactional_producer(
                transactional_id=f"{self.group}#{self._claim_slot()}",
                client_id=f"backoffice-{self.group}",
            )
        return self.producer

    def _claim_slot(self) -> int:
        if self.slot_connection is not None and self.slot_connection.closed:
            self.slot_connection = None
        if self.slot_connection is None:
            self.slot_connection = pg_connect()
            self.slot_connection.autocommit = True
        key = zlib.crc32(f"emitter|{self.group}".encode()) - 2**31  # int4
        slot = 0
        while True:
            row = self.slot_connection.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", [key, slot]
            ).fetchone()
            if row and row[0]:
                return slot
            slot += 1

    def close(self, timeout: float = 0) -> None:
        """Forget the producer (and the slot: a fenced producer's slot is another's now)."""
        if self.producer is not None:
            self.producer.flush(timeout)
            self.producer = None
        if self.slot_connection is not None:
            self.slot_connection.close()
            self.slot_connection = None
