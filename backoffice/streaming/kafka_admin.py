"""Topic creation and end offsets, for ``ensure_topics``, status and tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from django.conf import settings
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from backoffice.streaming import topics

ALL_TOPICS = [
    topics.TRADES_EXECUTED,
    topics.TRADES_CAPTURED,
    topics.TRADES_VALIDATED,
    topics.TRADES_REJECTED,
    topics.SETTLEMENT_INSTRUCTIONS,
    topics.SETTLEMENT_STATUS,
    topics.CUSTODIAN_STATEMENTS,
    topics.MARKETDATA_PRICES,
]


def ensure_topics(
    names: Iterable[str], *, partitions: int | None = None, replication: int = 1
) -> list[str]:
    """Create the physical topics (and their .dlq) that do not exist yet; return those created."""
    partitions = partitions or settings.STREAMING.partitions
    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, client_id="backoffice-admin"
    )
    try:
        existing = set(admin.list_topics())
        wanted = []
        for name in names:
            wanted += [topics.topic(name), topics.topic(topics.dead_letter_topic(name))]
        missing = [t for t in wanted if t not in existing]
        if missing:
            # Created concurrently by another process: the goal is met all the same.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [
                        NewTopic(t, num_partitions=partitions, replication_factor=replication)
                        for t in missing
                    ]
                )
        return missing
    finally:
        admin.close()


def delete_topics_with_prefix(prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a test's or a bench run's own);
    return their names. Refuses an empty prefix: that would be every topic on the broker."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, client_id="backoffice-admin"
    )
    try:
        doomed = sorted(t for t in admin.list_topics() if t.startswith(prefix))
        if doomed:
            admin.delete_topics(doomed)
        return doomed
    finally:
        admin.close()


def end_offsets(physical_topics: Iterable[str]) -> dict[tuple[str, int], int]:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(t, p)
            for t in physical_topics
            for p in (consumer.partitions_for_topic(t) or [])
        ]
        return {(tp.topic, tp.partition): o for tp, o in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close(autocommit=False)
