"""docs/pnl.md's worked example: through the stage handler, and through Kafka and a live consumer."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backoffice.streaming import topics
from reporting.models import MarginCall
from reporting.services import collateral_set, eod_snapshot_create
from tests.conftest import wait_until
from tests.reporting.conftest import fx_rate
from tests.reporting.helpers import encoded, run
from tests.reporting.worked_example import (
    accounts,
    business_date,
    margin_mismatches,
    position_mismatches,
    price_payloads,
    snapshot_mismatches,
    table,
    trade_payloads,
)

NOW = datetime(2024, 12, 20, 22, 0, tzinfo=UTC)


def reference_of_the_example() -> None:
    for row in table("fx"):
        fx_rate(row["as_of"], row["base"], row["quote"], row["rate"])
    for account, row in accounts().items():
        if Decimal(row["collateral"]):
            collateral_set(
                account=account,
                amount=Decimal(row["collateral"]),
                currency=row["base"],
                actor=None,
                reason="docs/pnl.md worked example",
                now=NOW,
            )


def assert_end_of_day_matches_the_doc() -> None:
    day = business_date()
    eod_snapshot_create(business_date=day, now=NOW)
    assert snapshot_mismatches(day) == []
    assert margin_mismatches(day) == []
    (call,) = MarginCall.objects.all()
    calls = [r for r in table("margin") if Decimal(r["margin_call"])]
    assert [(call.account, call.amount)] == [
        (r["account"], Decimal(r["margin_call"])) for r in calls
    ]
    assert call.value_date.isoformat() == "2024-12-23"


@pytest.mark.django_db
def test_the_worked_example_through_the_stage_matches_the_doc(instruments):
    reference_of_the_example()
    for payload in trade_payloads():  # one batch per message, in the doc's arrival order
        run(payload, now=NOW)
    run(*price_payloads(), now=NOW)

    assert position_mismatches() == []
    assert_end_of_day_matches_the_doc()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_worked_example_through_kafka_and_consume_reporting_matches_the_doc(
    reference, processes, kafka_producer
):
    reference_of_the_example()
    for payload in [*trade_payloads(), *price_payloads()]:
        topic, event = encoded(payload, occurred_at=NOW)
        kafka_producer.send(
            topics.topic(topic),
            key=event.key,
            value=event.value,
            headers=[(k, v.encode()) for k, v in event.headers.items()],
        )
    kafka_producer.flush()
    processes.start("consume_reporting", name="reporting")

    wait_until(lambda: position_mismatches() == [], timeout=90, what="the doc's positions")
    assert_end_of_day_matches_the_doc()
