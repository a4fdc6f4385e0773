"""The project's single Kafka broker (scripts/kafka/kafka.sh start) really works.

Runs against KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092): kcat round-trips a JSON
message, and kafka-python transactions commit and abort with read_committed isolation.
Every test uses its own uuid-suffixed topic; waits are polls with a deadline, never sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from tests.conftest import wait_until

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
DEADLINE_S = 30.0


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _reachable(bootstrap: str) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
                return True
        except OSError:
            continue
    return False


@pytest.fixture(scope="module")
def bootstrap() -> str:
    if not _reachable(BOOTSTRAP):
        pytest.fail(f"no Kafka broker at {BOOTSTRAP}: start it with 'scripts/kafka/kafka.sh start'")
    return BOOTSTRAP


@pytest.fixture
def admin(bootstrap: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=_unique("test-admin"))
    yield client
    client.close()


def _create_topic(admin: KafkaAdminClient, partitions: int = 1) -> str:
    topic = _unique("test-infra")
    admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}})
    admin.wait_for_topics([topic], timeout_ms=int(DEADLINE_S * 1000))
    return topic


def _consume(
    bootstrap: str, topic: str, expected: int, isolation_level: str, timeout: float = DEADLINE_S
) -> list[bytes]:
    """Read `topic` from the beginning until `expected` records arrived (or the deadline)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
    )
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(r.value for r in records)
    finally:
        consumer.close()
    return values


def test_kcat_produces_and_consumes_json(bootstrap: str) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is not installed: apt-get install -y kcat")
    topic = _unique("test-kcat")
    trade = {"trade_id": str(uuid.uuid4()), "isin": "US0378331005", "qty": 100, "px": "187.25"}
    payload = json.dumps(trade, sort_keys=True)

    # -P waits for the delivery report before exiting; the topic is auto-created.
    subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic, "-K", "|"],
        input=f"{trade['trade_id']}|{payload}\n",
        text=True,
        check=True,
        timeout=DEADLINE_S,
    )

    fmt = ["-f", "%k|%s\\n"]  # key|value per line

    def read_back() -> list[str]:
        out = subprocess.run(
            [kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", *fmt],
            capture_output=True,
            text=True,
            check=False,
            timeout=DEADLINE_S,
        )
        return [line for line in out.stdout.splitlines() if line]

    lines = wait_until(read_back, what=f"kcat to read the message back from {topic}")
    assert len(lines) == 1
    key, _, value = lines[0].partition("|")
    assert key == trade["trade_id"]
    assert json.loads(value) == trade


def test_transactions_commit_and_abort_with_read_committed(
    bootstrap: str, admin: KafkaAdminClient
) -> None:
    # One partition, so "committed-2 visible" proves the consumer read past the aborted batch.
    topic = _create_topic(admin, partitions=1)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=_unique("test-tx"),
        acks="all",
        enable_idempotence=True,
    )
    try:
        producer.init_transactions()

        producer.begin_transaction()
        producer.send(topic, b"committed-1")
        producer.commit_transaction()

        producer.begin_transaction()
        producer.send(topic, b"aborted-1")
        producer.send(topic, b"aborted-2")
        producer.flush()  # the aborted records really reach the log before the abort
        producer.abort_transaction()

        producer.begin_transaction()
        producer.send(topic, b"committed-2")
        producer.commit_transaction()
    finally:
        producer.close()

    committed = _consume(bootstrap, topic, expected=2, isolation_level="read_committed")
    assert committed == [b"committed-1", b"committed-2"]

    # Sanity: the aborted records are in the log, only hidden from read_committed readers.
    everything = _consume(bootstrap, topic, expected=4, isolation_level="read_uncommitted")
    assert everything == [b"committed-1", b"aborted-1", b"aborted-2", b"committed-2"]
