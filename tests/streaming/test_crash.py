"""Crash tests: kill a consumer or the relay at each crash point, restart it, and compare.

The final database must hold every effect exactly once: zero lost, zero duplicated.
"""

from __future__ import annotations

import json
import os
import random
import signal
import uuid

import pytest
from django.conf import settings
from django.db import connection, transaction

from backoffice.streaming import topics
from backoffice.streaming.failpoints import CRASH_EXIT_CODE
from backoffice.streaming.outbox import outbox_publish_raw
from tests.conftest import send_json, wait_until
from tests.streaming.helpers import downstream_stats, effect_stats, trade
from tests.streaming.stages import CREATE_TABLES

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROBE = ("consume", "--stage", "tests.streaming.stages:probe")
DOWNSTREAM = ("consume", "--stage", "tests.streaming.stages:downstream")
TRADES = 400
SMALL_BATCHES = {"STREAM_BATCH_SIZE": "25", "STREAM_LINGER_MS": "0", "RELAY_BATCH_SIZE": "25"}


@pytest.fixture(autouse=True)
def probe_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLES)


def publish(producer, count: int = TRADES) -> None:
    for n in range(count):
        send_json(
            producer,
            topics.topic("trades.executed"),
            trade(n, account=f"ACC-{n % 7}"),
            key=f"ACC-{n % 7}",
        )
    producer.flush()


@pytest.mark.parametrize(
    "point",
    ["after_poll", "mid_effects", "after_commit", "stage_mid_publish", "stage_after_publish"],
)
def test_a_consumer_killed_at_a_crash_point_loses_and_duplicates_nothing(
    point, processes, kafka_producer
):
    """No relay runs: the stage publishes what it emits itself, and a restarted stage re-sends
    what its predecessor committed but did not get onto Kafka."""
    publish(kafka_producer)
    crashing = processes.start(
        *PROBE, env={**SMALL_BATCHES, "FAILPOINTS": f"{point}=3"}, name="probe-crash"
    )
    assert crashing.wait(timeout=60) == CRASH_EXIT_CODE

    processes.start(*PROBE, env=SMALL_BATCHES, name="probe")
    processes.start(*DOWNSTREAM, env=SMALL_BATCHES, name="downstream")
    wait_until(
        lambda: downstream_stats() == (TRADES, TRADES), timeout=90, what="every trade downstream"
    )
    assert effect_stats() == (TRADES, TRADES)


def test_a_stage_killed_between_publish_and_delete_duplicates_nothing_downstream(
    processes, kafka_producer
):
    publish(kafka_producer)
    crashing = processes.start(
        *PROBE, env={**SMALL_BATCHES, "FAILPOINTS": "stage_after_publish=2"}, name="probe-crash"
    )
    assert crashing.wait(timeout=60) == CRASH_EXIT_CODE

    processes.start(*PROBE, env=SMALL_BATCHES, name="probe")
    processes.start(*DOWNSTREAM, env=SMALL_BATCHES, name="downstream")
    wait_until(
        lambda: downstream_stats() == (TRADES, TRADES),
        timeout=90,
        what="every trade downstream once",
    )
    assert effect_stats() == (TRADES, TRADES)
    # The crashed stage published its second batch and never deleted it: the restarted one
    # re-sent it, so those copies are on Kafka twice, and downstream applied them once.
    assert committed_records(topics.topic("probe.out")) == TRADES + 25


def test_a_relay_killed_between_publish_and_delete_duplicates_nothing_downstream(
    processes, kafka_producer
):
    """The relay publishes what services write to the outbox (the API's trades, approvals)."""
    with transaction.atomic():
        for n in range(TRADES):
            outbox_publish_raw(
                topic="trades.executed",
                key=f"ACC-{n % 7}",
                value=json.dumps(trade(n, account=f"ACC-{n % 7}")).encode(),
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"crash-test|{n}"),
            )
    relay = processes.start(
        "relay_outbox",
        env={**SMALL_BATCHES, "FAILPOINTS": "relay_after_publish=2"},
        name="relay-crash",
    )
    assert relay.wait(timeout=60) == CRASH_EXIT_CODE

    processes.start("relay_outbox", env=SMALL_BATCHES, name="relay")
    processes.start(*PROBE, env=SMALL_BATCHES, name="probe")
    wait_until(lambda: effect_stats()[0] == TRADES, timeout=90, what="every trade applied")
    assert effect_stats() == (TRADES, TRADES)
    # The crashed relay published its second batch and never deleted it: the next relay published
    # it again, so those copies are on Kafka twice, and the probe applied them once.
    assert committed_records(topics.topic("trades.executed")) == TRADES + 25


def test_consumers_killed_with_sigkill_at_random_moments_lose_and_duplicate_nothing(
    processes, kafka_producer
):
    publish(kafka_producer, 1500)
    rng = random.Random(20261123)
    processes.start(*DOWNSTREAM, env=SMALL_BATCHES, name="downstream")
    for round_ in range(4):
        victim = processes.start(*PROBE, env=SMALL_BATCHES, name=f"probe-{round_}")
        target = min(1500, effect_stats()[0] + rng.randint(50, 300))
        wait_until(effects_reach(target), timeout=60, what=f"{target} effects")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    processes.start(*PROBE, env=SMALL_BATCHES, name="probe-final")
    wait_until(lambda: downstream_stats() == (1500, 1500), timeout=120, what="all 1500 downstream")
    assert effect_stats() == (1500, 1500)


def effects_reach(target: int):
    return lambda: effect_stats()[0] >= target


def committed_records(topic: str) -> int:
    """Records a ``read_committed`` reader finds in ``topic`` (transaction markers not counted)."""
    from kafka import KafkaConsumer, TopicPartition

    from backoffice.streaming.kafka_admin import end_offsets

    ends = end_offsets([topic])
    consumer = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    try:
        partitions = [TopicPartition(t, p) for t, p in ends]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        count = 0

        def read_to_the_end() -> bool:
            nonlocal count
            count += sum(len(batch) for batch in consumer.poll(timeout_ms=200).values())
            return all(consumer.position(tp) >= ends[(tp.topic, tp.partition)] for tp in partitions)

        wait_until(read_to_the_end, timeout=30, what=f"{topic} read to its end")
        return count
    finally:
        consumer.close()


def test_consumers_joining_and_leaving_mid_stream_apply_everything_once(processes, kafka_producer):
    publish(kafka_producer, 2000)
    first = processes.start(*PROBE, env=SMALL_BATCHES, name="probe-1")
    wait_until(lambda: effect_stats()[0] >= 200, what="the first consumer under way")
    second = processes.start(*PROBE, env=SMALL_BATCHES, name="probe-2")  # a rebalance mid-stream
    wait_until(lambda: effect_stats()[0] >= 800, what="both consumers under way")
    first.send_signal(signal.SIGTERM)  # another rebalance: the leaver finishes its batch first
    assert first.wait(timeout=60) == 0
    wait_until(lambda: effect_stats()[0] >= 2000, timeout=120, what="all 2000 applied")
    assert effect_stats() == (2000, 2000)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0
