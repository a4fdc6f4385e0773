"""A simulated day through Kafka and consume_reporting equals the pure replay of its trades."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from backoffice.streaming import topics
from reporting.models import Position
from reporting.positions import TradeVersion, rebuild, state_to_json, trade_version
from tests.conftest import wait_until
from tests.reporting.helpers import encoded
from trades.management.commands.produce_trades import simulation_reference
from trades.selectors import reference_snapshot
from trades.simulator import SimConfig, TradeSimulator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

COUNT = int(os.environ.get("REPORTING_VOLUME", "5000"))
START = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def validated_stream(count: int) -> list[dict[str, Any]]:
    """The trade simulator's NEW/AMEND/CANCEL stream, enriched as compliance would pass it on."""
    snapshot = reference_snapshot()
    simulator = TradeSimulator(
        simulation_reference(snapshot),
        SimConfig(seed=11, start=START, amend_share=0.05, cancel_share=0.02),
    )
    stream = []
    for message in simulator.generate(count):
        raw = json.loads(message.value)
        account = snapshot.accounts[raw["account"]]
        instrument = snapshot.instruments[raw["instrument"]]
        stream.append(
            {
                **raw,
                "previous_version": raw["trade_version"] - 1 or None,
                "book": account.book.code,
                "book_base_currency": account.book.base_currency,
                "pnl_method": account.book.pnl_method,
                "symbol": instrument.symbol,
                "asset_class": instrument.asset_class,
                "csdr_class": instrument.csdr_class,
                "market": instrument.market.mic,
                "gross_amount": "0.00",
                "fees": raw.get("fees", "0.00"),
                "net_amount": "0.00",
                "settle_date": raw.get("settle_date", raw["trade_date"]),
                "settle_date_computed": "settle_date" not in raw,
                "payment_type": "DVP",
                "ssi": None,
                "compliance": {
                    "outcome": "PASSED",
                    "exception_id": None,
                    "approved_by": None,
                    "override_reason": None,
                },
            }
        )
    return stream


def consumed(group: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT coalesce(sum(next_offset), 0) FROM streaming_consumeroffset WHERE "group" = %s',
            [group],
        )
        return int(cursor.fetchone()[0])


def test_a_simulated_day_through_the_consumer_equals_the_replay_of_its_live_trades(
    reference, processes, kafka_producer
):
    stream = validated_stream(COUNT)
    live: dict[str, dict[str, Any]] = {}
    for payload in stream:
        if payload["action"] == "CANCEL":
            live.pop(payload["trade_id"], None)
        else:
            live[payload["trade_id"]] = payload
    for payload in stream:
        topic, event = encoded(payload)
        kafka_producer.send(
            topics.topic(topic),
            key=event.key,
            value=event.value,
            headers=[(k, v.encode()) for k, v in event.headers.items()],
        )
    kafka_producer.flush()

    started = time.monotonic()
    processes.start("consume_reporting", name="reporting")
    wait_until(
        lambda: consumed(topics.group("reporting")) == COUNT,
        timeout=300,
        what=f"{COUNT} trade versions consumed",
    )
    elapsed = time.monotonic() - started
    print(f"consume_reporting: {COUNT} messages in {elapsed:.1f} s ({COUNT / elapsed:.0f}/s)")

    by_key: dict[tuple[str, str], list[TradeVersion]] = {}
    for payload in live.values():
        version = trade_version(payload)
        by_key.setdefault(version.key, []).append(version)
    rows = {(p.account, p.instrument): p for p in Position.objects.all()}
    assert set(rows) == set(by_key)
    for key, versions in by_key.items():
        built = rebuild(versions)
        assert built is not None
        assert rows[key].state == state_to_json(built[0]), key
        assert rows[key].quantity == built[0].quantity
    assert sum(p.trade_count for p in rows.values()) == len(live)
    assert all(p.fx_rate_to_base > Decimal(0) for p in rows.values())
