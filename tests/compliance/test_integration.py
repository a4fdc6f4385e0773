"""consume_compliance end to end: real broker, real database, real consumer and relay processes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from kafka import KafkaConsumer

from backoffice.streaming import topics
from compliance.models import (
    ComplianceException,
    ComplianceTrade,
    ExceptionProposal,
    RestrictedInstrument,
)
from compliance.services import exception_confirm, exception_propose
from tests.compliance.conftest import AAPL, MSFT, NOW, captured, envelope_bytes
from tests.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Received:
    """Everything published on trades.validated and trades.rejected, by (topic, trade, version)."""

    def __init__(self) -> None:
        self.consumer = KafkaConsumer(
            topics.topic(topics.TRADES_VALIDATED),
            topics.topic(topics.TRADES_REJECTED),
            bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
            auto_offset_reset="earliest",
            consumer_timeout_ms=200,
        )
        self.events: list[tuple[str, dict[str, Any]]] = []

    def poll(self) -> list[tuple[str, dict[str, Any]]]:
        for record in self.consumer:
            self.events.append((topics.logical(record.topic), json.loads(record.value)["payload"]))
        return self.events

    def has(self, count: int) -> bool:
        return len(self.poll()) >= count

    def summary(self) -> list[tuple[str, str, int, str, str | None]]:
        return sorted(
            (
                topic,
                p["trade_id"],
                p["trade_version"],
                p["action"],
                p["compliance"]["outcome"] if "compliance" in p else None,
            )
            for topic, p in self.events
        )


@pytest.fixture
def pipeline(reference, users, processes, kafka_producer):
    """Publishes captured trades; consume_compliance and the relay run in their own processes."""
    processes.start("consume_compliance", name="compliance")
    processes.start("relay_outbox", name="relay")
    received = Received()

    def publish(*payloads: dict[str, Any]) -> None:
        for payload in payloads:
            value, headers = envelope_bytes(payload)
            kafka_producer.send(
                topics.topic(topics.TRADES_CAPTURED),
                key=payload["account"].encode(),
                value=value,
                headers=headers,
            )
        kafka_producer.flush()

    yield publish, received
    received.consumer.close()


def restrict(isin: str) -> None:
    RestrictedInstrument.objects.create(isin=isin, reason="MNPI", added_by="cco", added_at=NOW)


def decide(trade_id: str, maker, checker, action: str, reason: str) -> None:
    exception = ComplianceException.objects.get(trade_id=trade_id, status="OPEN")
    exception_propose(exception_id=exception.pk, actor=maker, action=action, reason=reason, now=NOW)
    exception_confirm(exception_id=exception.pk, actor=checker, now=NOW)


def test_pass_approve_and_reject_reach_the_right_topics(pipeline, analyst, approver):
    publish, received = pipeline
    restrict(AAPL)
    publish(
        captured("T1", instrument=MSFT, symbol="MSFT", price="418.25"),
        captured("T2", trade_time="2026-11-25T15:10:00Z"),
        captured("T3", quantity="7", trade_time="2026-11-25T15:20:00Z"),
    )
    wait_until(
        lambda: ComplianceException.objects.filter(status="OPEN").count() == 2,
        what="two trades waiting in exceptions",
    )
    wait_until(lambda: received.has(1), what="the passed trade on trades.validated")

    decide("T2", analyst, approver, "APPROVE", "client order confirmed by phone")
    decide("T3", analyst, approver, "REJECT", "restricted: MNPI")

    wait_until(lambda: received.has(3), what="the approval and the rejection")
    assert received.summary() == [
        ("trades.rejected", "T3", 1, "NEW", None),
        ("trades.validated", "T1", 1, "NEW", "PASSED"),
        ("trades.validated", "T2", 1, "NEW", "APPROVED"),
    ]
    approved = next(p for t, p in received.events if p["trade_id"] == "T2")
    assert approved["compliance"]["approved_by"] == ["analyst", "approver"]
    assert approved["compliance"]["override_reason"] == "client order confirmed by phone"
    rejection = next(p for t, p in received.events if t == "trades.rejected")
    assert (rejection["rejected_by"], rejection["failed_rules"]) == (
        ["analyst", "approver"],
        ["RESTRICTED_LIST"],
    )


def test_amends_and_cancels_after_validation_and_while_waiting(pipeline, analyst):
    publish, received = pipeline
    restrict(AAPL)
    msft: dict[str, Any] = {"instrument": MSFT, "symbol": "MSFT", "price": "418.25"}
    publish(captured("T1", **msft), captured("T4", trade_time="2026-11-25T15:30:00Z"))
    wait_until(
        lambda: ComplianceException.objects.filter(trade_id="T4", status="OPEN").exists(),
        what="T4 waiting",
    )
    exception = ComplianceException.objects.get(trade_id="T4")
    exception_propose(
        exception_id=exception.pk, actor=analyst, action="APPROVE", reason="ok", now=NOW
    )

    publish(
        captured("T1", 2, quantity="120", **msft),  # amend of a validated trade: passes
        captured("T1", 3, "CANCEL", quantity="120", **msft),  # cancel after validation
        captured("T4", 2, trade_time="2026-11-25T15:30:00Z", **msft),  # amend of a waiting trade
    )

    wait_until(lambda: received.has(4), what="four validated events")
    assert received.summary() == [
        ("trades.validated", "T1", 1, "NEW", "PASSED"),
        ("trades.validated", "T1", 2, "AMEND", "PASSED"),
        ("trades.validated", "T1", 3, "CANCEL", "PASSED"),
        ("trades.validated", "T4", 2, "AMEND", "PASSED"),
    ]
    exception.refresh_from_db()
    assert exception.status == "SUPERSEDED"
    assert ExceptionProposal.objects.get().status == "INVALIDATED"
    assert dict(ComplianceTrade.objects.values_list("trade_id", "status")) == {
        "T1": "CANCELLED",
        "T4": "VALIDATED",
    }
