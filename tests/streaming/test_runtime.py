"""The streaming runtime end to end: real broker, real database, real consumer processes."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from backoffice.streaming import topics
from backoffice.streaming.lag import group_lag
from backoffice.streaming.models import DeadLetter
from backoffice.streaming.selectors import outbox_backlog
from tests.conftest import send_json, wait_until
from tests.streaming.helpers import downstream_stats, effect_stats, scalar, trade
from tests.streaming.stages import CREATE_TABLES

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PROBE = ("consume", "--stage", "tests.streaming.stages:probe")
DOWNSTREAM = ("consume", "--stage", "tests.streaming.stages:downstream")


@pytest.fixture(autouse=True)
def probe_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLES)


def test_it_applies_each_message_once_and_forwards_its_event(processes, kafka_producer):
    for n in range(200):
        send_json(kafka_producer, topics.topic("trades.executed"), trade(n), key="ACC-001")
    kafka_producer.flush()
    processes.start(*PROBE, name="probe")  # no relay: the stage publishes its own output
    processes.start(*DOWNSTREAM, name="downstream")

    wait_until(lambda: downstream_stats() == (200, 200), what="200 trades downstream")
    assert effect_stats() == (200, 200)
    wait_until(lambda: outbox_backlog() == 0, what="published outbox rows deleted once idle")
    # every forwarded event carries its cause's trace and a unique id
    assert scalar("SELECT count(DISTINCT event_id) FROM probe_downstream") == 200


def test_malformed_and_invalid_messages_are_dead_lettered_and_the_rest_flow(
    processes, kafka_producer
):
    topic = topics.topic("trades.executed")
    sent = 0
    for n in range(300):
        if n % 100 == 7:
            kafka_producer.send(topic, value=b"\xff\xfe not json")
        elif n % 100 == 50:
            bad = trade(n)
            bad["quantity"] = 12.5  # a JSON number, not a decimal string
            send_json(kafka_producer, topic, bad)
        else:
            send_json(kafka_producer, topic, trade(n))
        sent += 1
    kafka_producer.flush()
    processes.start(*PROBE, name="probe")

    wait_until(
        lambda: effect_stats()[0] + DeadLetter.objects.count() == sent,
        what="all messages accounted for",
    )
    assert effect_stats() == (294, 294)
    letters = {d.offset: d for d in DeadLetter.objects.all()}
    assert len(letters) == 6
    reasons = sorted({(d.error_class, d.reason.split(":")[0]) for d in letters.values()})
    assert (
        "UndecodableMessage",
        "value is not UTF-8 text (invalid start byte at byte 0)",
    ) in reasons
    assert any(
        d.error_class == "SchemaViolation" and "quantity" in d.reason for d in letters.values()
    )
    assert all(bytes(d.value) for d in letters.values())  # original bytes kept


def test_redelivered_copies_of_an_event_are_applied_once(processes, kafka_producer):
    topic = topics.topic("trades.executed")
    for n in range(30):
        event_id = str(uuid.uuid4()).encode()
        for _copy in range(1 + n % 3):  # delivered 1, 2 or 3 times
            send_json(kafka_producer, topic, trade(n), headers=[("event_id", event_id)])
    kafka_producer.flush()
    processes.start(*PROBE, name="probe")

    wait_until(
        lambda: scalar(
            'SELECT count(*) FROM streaming_consumeroffset WHERE next_offset > 0 AND "group" = %s',
            [topics.group("probe")],
        ),
        what="offsets stored",
    )
    wait_until(
        lambda: (
            scalar(
                'SELECT coalesce(sum(next_offset), 0) FROM streaming_consumeroffset WHERE "group" = %s',
                [topics.group("probe")],
            )
            == 60
        ),
        what="all 60 copies consumed",
    )
    assert effect_stats() == (30, 30)


def test_a_message_that_makes_the_stage_raise_is_isolated(processes, kafka_producer):
    topic = topics.topic("trades.executed")
    for n in range(50):
        send_json(
            kafka_producer,
            topic,
            trade(n, account="POISON" if n == 25 else "ACC-001"),
            key="ACC-001",
        )
    kafka_producer.flush()
    processes.start(*PROBE, name="probe")

    wait_until(
        lambda: effect_stats()[0] == 49 and DeadLetter.objects.count() == 1,
        what="49 applied, 1 dead",
    )
    letter = DeadLetter.objects.get()
    assert letter.error_class == "RuntimeError"
    assert letter.reason == "stage probe raised RuntimeError: poison trade T0000025"


def test_replay_dlq_re_drives_a_rejected_message_once_after_the_fix(processes, kafka_producer):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO probe_blocklist VALUES ('ACC-NEW')")
    topic = topics.topic("trades.executed")
    send_json(kafka_producer, topic, trade(1, account="ACC-NEW"), key="ACC-NEW")
    send_json(kafka_producer, topic, trade(2), key="ACC-001")
    kafka_producer.flush()
    processes.start(*PROBE, name="probe")
    processes.start("relay_outbox", name="relay")
    wait_until(
        lambda: DeadLetter.objects.count() == 1 and effect_stats()[0] == 1,
        what="one rejected, one applied",
    )
    letter = DeadLetter.objects.get()
    assert (letter.error_class, letter.reason) == ("UnknownAccount", "unknown account 'ACC-NEW'")

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM probe_blocklist")  # the fix
    first = processes.run("replay_dlq", str(letter.pk))
    second = processes.run("replay_dlq", str(letter.pk))
    assert first.stdout.strip() == "replayed 1 dead letter(s)", first.stderr
    assert second.stdout.strip() == "replayed 0 dead letter(s)"

    wait_until(lambda: effect_stats() == (2, 2), what="the replayed trade applied")
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.REPLAYED


def test_a_caught_up_stage_shows_no_lag_past_the_relays_transaction_markers(
    processes, kafka_producer, topic_prefix
):
    """Stages publish in Kafka transactions: each ends with a commit marker a consumer never
    receives. A stage that has applied everything must still store the topic's end offset, or its
    lag (end offset minus stored offset) stays at one and a drain never finishes."""
    for n in range(50):
        send_json(kafka_producer, topics.topic("trades.executed"), trade(n), key=f"ACC-{n % 7}")
    kafka_producer.flush()
    processes.start(*PROBE, name="probe")
    processes.start(*DOWNSTREAM, name="downstream")

    wait_until(lambda: downstream_stats() == (50, 50), what="50 trades downstream")
    wait_until(
        lambda: group_lag(topic_prefix).get(topics.group("downstream")) == 0,
        what="downstream's stored offsets at the end of probe.out",
    )
    assert group_lag(topic_prefix)[topics.group("probe")] == 0
