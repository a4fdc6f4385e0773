"""The batch transaction on its own (PostgreSQL, no Kafka): what a zombie or a redelivery sees."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from backoffice.streaming.consumer import Stage, StageRunner
from backoffice.streaming.envelope import Subscription, decode
from backoffice.streaming.models import ConsumerOffset, DeadLetter, OutboxEvent
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import Record, apply_batch
from tests.streaming.helpers import effect_stats, trade
from tests.streaming.stages import CREATE_TABLES, handle_probe

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
INBOUND = Subscription("trades.executed", "trades.executed", enveloped=False)


@pytest.fixture(autouse=True)
def probe_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLES)


def record(
    offset: int, *, partition: int = 0, n: int | None = None, event_id: uuid.UUID | None = None
) -> Record:
    value = json.dumps(trade(offset if n is None else n)).encode()
    headers = [("event_id", str(event_id).encode())] if event_id else []
    message = decode(
        subscription=INBOUND,
        partition=partition,
        offset=offset,
        key=b"ACC-001",
        value=value,
        headers=headers,
        registry=registry(),
    )
    return Record("trades.executed", partition, offset, b"ACC-001", value, headers, message=message)


def apply(records):
    return apply_batch(stage="probe", group="g", handler=handle_probe, records=records, now=NOW)


def test_a_batch_applied_twice_takes_effect_once():
    batch = [record(o) for o in range(10)]
    first = apply(batch)
    second = apply(batch)  # a zombie that still holds the same batch
    assert (first.applied, second.applied, second.skipped) == (10, 0, 10)
    assert effect_stats() == (10, 10)
    assert OutboxEvent.objects.count() == 10


def test_an_overlapping_batch_applies_only_the_new_offsets():
    apply([record(o) for o in range(10)])
    outcome = apply([record(o) for o in range(5, 15)])
    assert (outcome.applied, outcome.skipped) == (5, 5)
    assert effect_stats() == (15, 15)
    assert ConsumerOffset.objects.get(group="g", partition=0).next_offset == 15


def test_the_same_event_id_at_another_offset_is_applied_once():
    event_id = uuid.uuid4()
    outcome = apply(
        [record(0, n=1, event_id=event_id), record(1, n=1, event_id=event_id), record(2, n=2)]
    )
    later = apply([record(3, n=1, event_id=event_id)])
    assert (outcome.applied, outcome.skipped, later.skipped) == (2, 1, 1)
    assert effect_stats() == (2, 2)


def test_partitions_keep_separate_offsets():
    apply([record(0, partition=0), record(0, partition=1, n=100)])
    assert effect_stats() == (2, 2)
    assert sorted(ConsumerOffset.objects.values_list("partition", "next_offset")) == [
        (0, 1),
        (1, 1),
    ]


def test_a_dead_letter_is_stored_once_and_published_to_the_dlq_topic():
    bad = Record("trades.executed", 0, 0, None, b"{not json", [])
    from dataclasses import replace

    from backoffice.streaming.envelope import DecodeError

    bad = replace(bad, error=DecodeError("UndecodableMessage", "value is not JSON"))
    apply([bad])
    apply([bad])
    assert DeadLetter.objects.count() == 1
    event = OutboxEvent.objects.get()
    assert event.topic == "trades.executed.dlq"
    body = json.loads(bytes(event.value))
    assert body["payload"]["reason"] == "value is not JSON"
    assert body["payload"]["original_text"] == "{not json"


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_inside_raw_psycopg_retries_the_whole_batch():
    """A terminated backend seen by the raw-connection COPY writers (psycopg's AdminShutdown, not
    Django's wrapper) is transient: the batch is retried as it is, not split into single messages
    as if the handler had failed on one of them."""
    calls: list[int] = []

    def flaky(messages, ctx):
        calls.append(len(messages))
        if len(calls) == 1:
            raise psycopg.errors.AdminShutdown(
                "terminating connection due to administrator command"
            )
        return handle_probe(messages, ctx)

    runner = StageRunner(Stage("probe", [INBOUND], flaky), consumer_id="test:flaky")
    outcome = runner._apply_with_retry([record(o) for o in range(10)])
    assert calls == [10, 10]
    assert (outcome.applied, outcome.dead_lettered) == (10, 0)
    assert effect_stats() == (10, 10)
    assert DeadLetter.objects.count() == 0
