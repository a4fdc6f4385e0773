"""The capture stage against the real database, and once end to end through Kafka."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from django.conf import settings
from django.core.management import call_command
from kafka import KafkaConsumer
from psycopg.errors import UniqueViolation

from backoffice.streaming import topics
from backoffice.streaming.envelope import Subscription, decode
from backoffice.streaming.models import DeadLetter
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import Record, apply_batch
from tests.conftest import send_json, wait_until
from tests.streaming.helpers import outbox_events
from trades.models import Trade, TradeRefusal, TradeVersion
from trades.stage import handle_capture

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
INBOUND = Subscription("trades.executed", "trades.executed", enveloped=False)


def trade(trade_id="T1", version=1, action="NEW", **overrides):
    base = {
        "trade_id": trade_id,
        "trade_version": version,
        "action": action,
        "account": "ACC-0001",
        "counterparty": "CP-NRTH",
        "instrument": "US0378331005",
        "side": "BUY",
        "quantity": "100",
        "price": "231.40",
        "currency": "USD",
        "trade_date": "2026-11-25",
        "trade_time": "2026-11-25T15:00:00Z",
        "venue": "XNAS",
        "trader": "jdoe",
    }
    return {**base, **overrides}


class Feed:
    """Applies payloads through the capture handler as consecutive offsets of one partition."""

    def __init__(self):
        self.offset = 0

    def __call__(self, *payloads):
        records = []
        for payload in payloads:
            value = json.dumps(payload).encode()
            message = decode(
                subscription=INBOUND,
                partition=0,
                offset=self.offset,
                key=b"ACC-0001",
                value=value,
                headers=[],
                registry=registry(),
            )
            records.append(
                Record("trades.executed", 0, self.offset, b"ACC-0001", value, [], message=message)
            )
            self.offset += 1
        return apply_batch(
            stage="capture", group="capture-test", handler=handle_capture, records=records, now=NOW
        )


@pytest.fixture
def feed(db):
    call_command("load_reference_data", verbosity=0)
    return Feed()


def captured_events():
    return [json.loads(e.value) for e in outbox_events("trades.captured")]


def refusals():
    return list(
        TradeRefusal.objects.order_by("id").values_list("trade_id", "version", "reason", "detail")
    )


def test_a_new_trade_is_captured_enriched_and_emitted(feed):
    feed(trade())
    version = TradeVersion.objects.get()
    assert (version.book, version.settle_date, version.gross_amount) == (
        "EQ-US",
        date(2026, 11, 27),
        23140,
    )
    [event] = captured_events()
    assert event["schema"] == "trades.captured"
    assert event["correlation_id"] == "T1"
    payload = event["payload"]
    assert (payload["settle_date"], payload["gross_amount"], payload["previous_version"]) == (
        "2026-11-27",
        "23140.00",
        None,
    )
    assert payload["ssi"]["custodian_bic"]


def test_an_amendment_supersedes_and_nothing_is_edited_in_place(feed):
    feed(trade())
    feed(trade(version=2, action="AMEND", quantity="150"))
    assert list(TradeVersion.objects.order_by("version").values_list("version", "quantity")) == [
        (1, 100),
        (2, 150),
    ]
    assert Trade.objects.get().current_version == 2
    assert [e["payload"]["previous_version"] for e in captured_events()] == [None, 1]


def test_the_same_version_delivered_again_is_refused_as_a_duplicate(feed):
    feed(trade(), trade())
    feed(trade())
    assert TradeVersion.objects.count() == 1
    assert refusals() == [
        ("T1", 1, "DUPLICATE", "version 1 was already captured with identical content"),
        ("T1", 1, "DUPLICATE", "version 1 was already captured with identical content"),
    ]
    assert len(captured_events()) == 1


def test_a_writer_that_missed_a_version_committed_under_it_fails_its_batch(feed, monkeypatch):
    feed(trade())
    # A second capture consumer that read the heads before the first one committed this version
    # (only possible when an amendment moved the trade to another partition): versions are
    # COPYed with no conflict clause, so its batch fails instead of emitting a second version 1.
    monkeypatch.setattr("trades.stage.selectors.trade_heads", lambda ids: {})
    monkeypatch.setattr("trades.stage.selectors.version_hashes", lambda ids: {})
    with pytest.raises(UniqueViolation, match="trade_id, version"):
        feed(trade(quantity="150"))
    assert list(TradeVersion.objects.values_list("version", "quantity")) == [(1, 100)]
    assert len(captured_events()) == 1


def test_an_amend_arriving_before_its_new_wins_and_the_late_new_is_refused_as_stale(feed):
    feed(trade(version=2, action="AMEND", quantity="150"))
    feed(trade())
    assert Trade.objects.get().current_version == 2
    assert refusals() == [("T1", 1, "STALE", "version 1 is older than the current version 2")]


def test_a_cancel_of_an_unknown_trade_is_kept_as_a_cancelled_trade(feed):
    feed(trade(version=2, action="CANCEL"))
    feed(trade(), trade(version=3, action="AMEND"))
    head = Trade.objects.get()
    assert (head.status, head.current_version) == ("CANCELLED", 2)
    assert refusals() == [
        ("T1", 1, "STALE", "version 1 is older than the current version 2"),
        ("T1", 3, "CANCELLED", "the trade was cancelled at version 2"),
    ]


def test_unknown_reference_data_goes_to_the_dead_letter_queue_with_the_reason(feed):
    outcome = feed(trade(instrument="US5949181045"), trade("T2", instrument="XS0000000009"))
    assert outcome.dead_lettered == 1
    letter = DeadLetter.objects.get()
    assert (letter.error_class, letter.reason) == (
        "UnknownInstrument",
        "unknown instrument 'XS0000000009'",
    )


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_consume_capture_end_to_end_through_kafka(processes, kafka_producer):
    call_command("load_reference_data", verbosity=0)
    source = topics.topic("trades.executed")
    send_json(kafka_producer, source, trade(), key="ACC-0001")
    send_json(
        kafka_producer, source, trade(version=2, action="AMEND", quantity="120"), key="ACC-0001"
    )
    kafka_producer.send(source, key=b"ACC-0001", value=b"not json at all")
    kafka_producer.flush()
    processes.start("consume_capture", name="capture")
    processes.start("relay_outbox", name="relay")

    consumer = KafkaConsumer(
        topics.topic("trades.captured"),
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        auto_offset_reset="earliest",
        consumer_timeout_ms=500,
    )
    received: list = []

    def two_received() -> bool:
        received.extend(consumer)
        return len(received) >= 2

    wait_until(two_received, timeout=60, what="two captured events")
    consumer.close()
    versions = sorted(json.loads(r.value)["payload"]["trade_version"] for r in received)
    assert versions == [1, 2]
    assert {r.key for r in received} == {b"ACC-0001"}
    assert DeadLetter.objects.get().error_class == "UndecodableMessage"
