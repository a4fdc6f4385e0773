"""``produce_trades``: simulated trades from the database's reference data onto Kafka."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime

import pytest
from django.conf import settings
from kafka import KafkaConsumer

from backoffice import preflight
from backoffice.streaming import topics
from tests.conftest import wait_until
from trades.management.commands.load_reference_data import reference_data_load
from trades.management.commands.produce_trades import (
    default_start,
    mean_gap,
    simulation_reference,
)
from trades.selectors import market_calendar, reference_snapshot
from trades.simulator import SimConfig, TradeSimulator


@pytest.mark.django_db
def test_only_active_reference_data_is_simulated():
    reference_data_load()
    reference = simulation_reference(reference_snapshot())

    isins = {i.isin for i in reference.instruments}
    assert "US90184L1026" not in isins  # INACTIVE
    assert "FR0000051732" not in isins  # SUSPENDED
    assert len(isins) >= 50
    assert "ACC-0018" not in reference.accounts  # CLOSED
    assert "CP-IRON" not in {c.code for c in reference.counterparties}  # SUSPENDED
    assert all(len(c.markets) == 5 for c in reference.counterparties)
    assert reference.calendars["XNAS"].settlement_cycle == 1


@pytest.mark.django_db
def test_by_default_the_run_starts_at_the_last_us_open():
    reference_data_load()
    nyse = market_calendar("NYSE")
    thanksgiving, saturday = date(2026, 11, 26), date(2026, 11, 28)
    assert default_start(nyse, thanksgiving) == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    assert default_start(nyse, saturday) == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    # later business days skip the weekend and the holiday
    assert default_start(nyse, saturday, 1) == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
    assert default_start(nyse, date(2026, 11, 25), 1) == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    # earlier business days (the demo's settled trades) skip them too, walking back
    assert default_start(nyse, date(2026, 11, 30), -2) == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    assert default_start(nyse, saturday, -1) == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)


def test_a_run_fits_in_one_session_whatever_its_size():
    assert mean_gap(200).total_seconds() == 1
    assert mean_gap(1_000_000).total_seconds() * 1_000_000 <= 6.5 * 3600


def read_topic(topic: str, expected: int) -> list:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    received: list = []
    try:

        def all_read() -> bool:
            for records in consumer.poll(timeout_ms=500).values():
                received.extend(records)
            return len(received) >= expected

        wait_until(all_read, timeout=60, what=f"{expected} messages on {topic}")
        received.extend(r for rs in consumer.poll(timeout_ms=1000).values() for r in rs)
    finally:
        consumer.close()
    return received


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_it_publishes_the_seeded_trades_keyed_by_account(processes):
    reference_data_load()

    result = processes.run("produce_trades", "--count", "200", "--rate", "0", "--seed", "7")

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("sent 200 messages to ")
    records = read_topic(topics.topic("trades.executed"), 200)
    assert len(records) == 200
    # The run's start date shifts dates, never the draws: rebuild it and compare per key, in order.
    config = SimConfig(
        seed=7, start=datetime(2026, 11, 25, 14, 30, tzinfo=UTC), mean_gap=mean_gap(200)
    )
    expected = TradeSimulator(simulation_reference(reference_snapshot()), config).generate(200)
    wanted, got = defaultdict(list), defaultdict(list)
    for message in expected:
        trade = json.loads(message.value)
        wanted[message.key].append((trade["trade_id"], trade["trade_version"], trade["action"]))
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        trade = json.loads(record.value)
        assert record.key.decode() == trade["account"]
        got[record.key.decode()].append(
            (trade["trade_id"], trade["trade_version"], trade["action"])
        )
    assert got == wanted


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_without_kafka_it_says_so_in_one_line_and_fails(processes):
    result = processes.run(
        "produce_trades", "--count", "5", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    )

    assert result.returncode != 0
    assert result.stderr.strip() == "CommandError: " + preflight.KAFKA_MISSING.format(
        where="127.0.0.1:1"
    )
