"""The batch transaction on its own (PostgreSQL, no Kafka): what a zombie or a redelivery sees."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from backoffice.streaming.consumer import Stage, StageRunner
from backoffice.streaming.envelope import Subscription, decode
from backoffice.streaming.models import (
    ConsumerOffset,
    DeadLetter,
    InboxMark,
    OutboxBatch,
    ProcessedEvent,
)
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import Record, apply_batch
from tests.streaming.helpers import effect_stats, outbox_events, trade
from tests.streaming.stages import CREATE_TABLES, handle_probe

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
INBOUND = Subscription("trades.executed", "trades.executed", enveloped=False)


@pytest.fixture(autouse=True)
def probe_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLES)


def record(
    offset: int,
    *,
    partition: int = 0,
    n: int | None = None,
    event_id: uuid.UUID | None = None,
    account: str = "ACC-001",
) -> Record:
    value = json.dumps(trade(offset if n is None else n, account=account)).encode()
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
    assert len(outbox_events()) == 10


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
    from backoffice.streaming.envelope import DecodeError

    bad = replace(bad, error=DecodeError("UndecodableMessage", "value is not JSON"))
    apply([bad])
    apply([bad])
    assert DeadLetter.objects.count() == 1
    [event] = outbox_events()
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


# -- de-duplication by high-water mark -------------------------------------------------------
SOURCE = "g-up|trades.captured|3"


def derived(
    offset: int,
    *,
    position: tuple[int, int],
    source: str = SOURCE,
    partition: int = 0,
    headers: tuple[tuple[str, str], ...] = (),
    account: str = "ACC-001",
) -> Record:
    """A record another stage derived from its input: it carries an ``origin``, not an inbox id."""
    n = position[0] * 1000 + position[1]
    event_id = uuid.uuid5(uuid.NAMESPACE_OID, str(n))
    base = record(offset, partition=partition, n=n, event_id=event_id, account=account)
    extra = [("origin", f"{source}|{position[0]}|{position[1]}"), *headers]
    return replace(base, headers=[*base.headers, *((k, v.encode()) for k, v in extra)])


def test_a_relayed_copy_at_or_below_the_mark_is_skipped_without_an_inbox_row():
    first = apply([derived(o, position=(10, o)) for o in range(5)])
    # The relay died after its commit and before its DELETE: the same five events again, at new
    # offsets (new event ids would not matter: the position says they are copies) ...
    copies = apply([derived(5 + o, position=(10, o)) for o in range(5)])
    # ... then the next batch of the source.
    later = apply([derived(10, position=(25, 0)), derived(11, position=(25, 1))])
    assert (first.applied, copies.applied, copies.skipped, later.applied) == (5, 0, 5, 2)
    assert effect_stats() == (7, 7)
    assert ProcessedEvent.objects.count() == 0
    mark = InboxMark.objects.get()
    assert (mark.topic, mark.partition, mark.source) == ("trades.executed", 0, SOURCE)
    assert (mark.source_offset, mark.source_seq) == (25, 1)


def test_marks_are_kept_per_source_and_per_partition():
    apply([derived(0, position=(10, 0)), derived(1, position=(10, 0), source="g-up|x|0")])
    other_partition = apply([derived(0, partition=1, position=(10, 0))])
    assert other_partition.applied == 1
    assert effect_stats()[0] == 3  # one position, three different events
    assert InboxMark.objects.count() == 3


def test_a_copy_inside_the_same_batch_is_skipped():
    outcome = apply([derived(0, position=(10, 0)), derived(1, position=(10, 0))])
    assert (outcome.applied, outcome.skipped) == (1, 1)


def test_a_replayed_dead_letter_below_the_mark_is_applied_once_by_its_event_id():
    blocked = derived(1, position=(10, 1), account="ACC-NEW")
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO probe_blocklist VALUES ('ACC-NEW')")
    first = apply([derived(0, position=(10, 0)), blocked, derived(2, position=(10, 2))])
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM probe_blocklist")  # the reference data is fixed
    # The replay keeps the dead letter's headers and bytes: its position is below the mark.
    replayed = replace(blocked, offset=3, headers=[*blocked.headers, ("replay_of", b"42")])
    outcome = apply([replayed])
    again = apply([replace(replayed, offset=4)])  # the relay's second copy of the replay
    assert (first.applied, first.dead_lettered) == (2, 1)
    assert (outcome.applied, again.skipped) == (1, 1)
    assert effect_stats() == (3, 3)


def test_events_a_batch_emits_carry_growing_positions_whatever_order_the_handler_emits_them():
    """The relay publishes in outbox order: if positions went down along it, a consumer would take
    a later event for a copy of one it had seen and drop it."""

    def backwards(messages, ctx):
        result = handle_probe(messages, ctx)
        result.events.reverse()
        return result

    apply_batch(
        stage="probe",
        group="g",
        handler=backwards,
        records=[record(o) for o in range(6)],
        now=NOW,
    )
    apply_batch(
        stage="probe", group="g", handler=backwards, records=[record(6), record(7)], now=NOW
    )
    origins = [e.headers["origin"] for e in outbox_events()]
    positions = [tuple(int(x) for x in o.rsplit("|", 2)[1:]) for o in origins]
    assert {o.rsplit("|", 2)[0] for o in origins} == {"g|trades.executed|0"}
    assert positions == [(5, 0), (5, 1), (5, 2), (5, 3), (5, 4), (5, 5), (7, 0), (7, 1)]


def test_a_service_emission_carries_no_origin():
    from backoffice.streaming.envelope import Outbound
    from backoffice.streaming.store import encode_events

    message = record(0).message
    assert message is not None
    event = Outbound(
        topic="probe.out", key="k", schema="trades.executed", payload=trade(1), cause=message
    )
    [encoded] = encode_events("svc", [event], NOW)
    assert "origin" not in encoded.headers


def test_between_batches_a_stage_forgets_the_queries_debug_logged(settings):
    """A stage runs for days: with DEBUG on, each query is logged with its arrays written out,
    and nothing but a request boundary clears the log. A batch is the stage's boundary."""
    settings.DEBUG = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM unnest(%s::text[])", [[f"T{n}" for n in range(500)]])
    assert len(connection.queries) == 1
    runner = StageRunner(Stage("probe", [INBOUND], handle_probe), consumer_id="test:debug")
    runner._between_batches()
    assert connection.queries == []


def test_a_batch_is_one_outbox_row_published_after_the_rows_its_sources_left_behind():
    """A row left by a batch whose publish never happened (a crash, a failed publish) goes out
    before the next batch of the same input partition, in the same publish; another partition's
    row does not; rows this process published are deleted by its next batch."""
    left = apply([record(0), record(1)])
    other = apply([record(0, partition=1, n=50)])
    [(left_id, _)] = left.pending
    [(other_id, _)] = other.pending
    assert OutboxBatch.objects.get(pk=left_id).event_count == 2

    after = apply([record(2)])
    assert [i for i, _ in after.pending] == [left_id, after.pending[-1][0]]
    assert [e.headers["origin"] for _, events in after.pending for e in events] == [
        "g|trades.executed|0|1|0",
        "g|trades.executed|0|1|1",
        "g|trades.executed|0|2|0",
    ]

    published = [i for i, _ in after.pending]
    apply_batch(
        stage="probe",
        group="g",
        handler=handle_probe,
        records=[record(3)],
        now=NOW,
        published=published,
    )
    remaining = set(OutboxBatch.objects.values_list("id", flat=True))
    assert other_id in remaining
    assert not remaining & set(published)


def test_a_batch_that_emits_nothing_writes_no_outbox_row():
    from backoffice.streaming.store import StageResult

    outcome = apply_batch(
        stage="probe",
        group="g",
        handler=lambda messages, ctx: StageResult(),
        records=[record(0)],
        now=NOW,
    )
    assert outcome.pending == []
    assert not OutboxBatch.objects.exists()
