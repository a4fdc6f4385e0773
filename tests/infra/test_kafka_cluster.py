"""Three-node KRaft cluster survives a kill -9 of a partition leader.

Starts `scripts/kafka/kafka.sh start --cluster 3` in its own VAR_DIR (a tmp dir) on ports
KAFKA_CLUSTER_PORT_BASE.. (default 29092/29094/29096, controllers +1), so the developer's
single broker on 9092 keeps running. The fixture always stops the cluster.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from tests.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "scripts" / "kafka" / "kafka.sh"
PORT_BASE = int(os.environ.get("KAFKA_CLUSTER_PORT_BASE", "29092"))
NODES = 3
SCRIPT_TIMEOUT_S = 180


def _port_in_use(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Cluster:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.env = {
            **os.environ,
            "ROOT": str(ROOT),
            "VAR_DIR": str(var_dir),
            "KAFKA_PORT_BASE": str(PORT_BASE),
        }
        self.bootstrap = ",".join(f"127.0.0.1:{PORT_BASE + 2 * i}" for i in range(NODES))

    def sh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["bash", str(KAFKA_SH), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=SCRIPT_TIMEOUT_S,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"kafka.sh {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def client_port(self, node_id: int) -> int:
        return PORT_BASE + 2 * (node_id - 1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    busy = [p for p in range(PORT_BASE, PORT_BASE + 2 * NODES) if _port_in_use(p)]
    if busy:
        pytest.fail(f"ports {busy} already in use; set KAFKA_CLUSTER_PORT_BASE to a free range")
    c = Cluster(tmp_path_factory.mktemp("kafka-cluster-var"))
    try:
        c.sh("start", "--cluster", str(NODES))
        assert (c.var_dir / "kafka" / "bootstrap").read_text().strip() == c.bootstrap
        yield c
    finally:
        stop = c.sh("stop", check=False)
        assert stop.returncode == 0, stop.stdout + stop.stderr


def _partition_leaders(admin: KafkaAdminClient, topic: str) -> dict[int, int]:
    (desc,) = admin.describe_topics([topic])
    return {p["partition_index"]: p["leader_id"] for p in desc["partitions"]}


def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 90.0) -> list[bytes]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(r.value for r in records)
        # Anything beyond `expected` (duplicates) would show up in one more short poll.
        for records in consumer.poll(timeout_ms=1000).values():
            values.extend(r.value for r in records)
    finally:
        consumer.close()
    return values


def _produce(producer: KafkaProducer, topic: str, values: list[bytes]) -> None:
    futures = [producer.send(topic, v) for v in values]
    producer.flush(timeout=120)
    for f in futures:
        f.get(timeout=120)  # raises if the write was not acknowledged by min.insync.replicas


def test_cluster_survives_kill_9_of_a_leader(cluster: Cluster) -> None:
    status = cluster.sh("status").stdout
    assert status.count(": up") == NODES, status

    topic = f"test-cluster-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    producer = KafkaProducer(
        bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    try:
        admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 3}})
        admin.wait_for_topics([topic], timeout_ms=60_000)
        (desc,) = admin.describe_topics([topic])
        assert all(len(p["replica_nodes"]) == NODES for p in desc["partitions"]), desc

        before = [f"before-{i}".encode() for i in range(300)]
        _produce(producer, topic, before)

        victim = _partition_leaders(admin, topic)[0]
        killed = cluster.sh("kill-node", str(victim)).stdout
        assert "killed" in killed, killed
        assert not _port_in_use(cluster.client_port(victim))
        status = cluster.sh("status").stdout
        assert f"node {victim}: down" in status, status

        # Writes with acks=all keep succeeding on the 2 survivors (min.insync.replicas=2).
        after = [f"after-{i}".encode() for i in range(300)]
        _produce(producer, topic, after)

        def moved_off_victim() -> dict[int, int] | None:
            leaders = _partition_leaders(admin, topic)
            return leaders if victim not in leaders.values() else None

        leaders = wait_until(moved_off_victim, what=f"leadership to move off killed node {victim}")
        assert set(leaders) == {0, 1, 2}

        survivors = ",".join(
            f"127.0.0.1:{cluster.client_port(n)}" for n in range(1, NODES + 1) if n != victim
        )
        got = _consume_all(survivors, topic, expected=len(before) + len(after))
        assert sorted(got) == sorted(before + after)  # every message, exactly once

        # The killed node comes back and rejoins.
        cluster.sh("start-node", str(victim))
        status = cluster.sh("status").stdout
        assert status.count(": up") == NODES, status
        more = [f"rejoined-{i}".encode() for i in range(30)]
        _produce(producer, topic, more)
        got = _consume_all(cluster.bootstrap, topic, expected=len(before + after + more))
        assert sorted(got) == sorted(before + after + more)
    finally:
        producer.close(timeout=10)
        admin.close()
