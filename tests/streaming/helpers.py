"""Trades for runtime tests, counting what the probe stages wrote, and reading the outbox."""

from __future__ import annotations

from typing import Any

from django.db import connection

from backoffice.streaming.emitter import unpack_events
from backoffice.streaming.envelope import Encoded
from backoffice.streaming.models import OutboxBatch, OutboxEvent


def trade(n: int, *, account: str = "ACC-001", version: int = 1) -> dict[str, Any]:
    return {
        "trade_id": f"T{n:07d}",
        "trade_version": version,
        "action": "NEW" if version == 1 else "AMEND",
        "account": account,
        "counterparty": "CP-GS",
        "instrument": "US0378331005",
        "side": "BUY" if n % 2 else "SELL",
        "quantity": f"{100 + n}",
        "price": "187.25",
        "currency": "USD",
        "trade_date": "2026-11-20",
        "trade_time": "2026-11-20T14:30:00Z",
        "venue": "XNAS",
        "trader": "jdoe",
    }


def scalar(sql: str, params: list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        row = cursor.fetchone()
    return row[0] if row else None


def effect_stats() -> tuple[int, int]:
    """(rows, distinct trades) in probe_effect."""
    return scalar("SELECT count(*) FROM probe_effect"), scalar(
        "SELECT count(DISTINCT trade_id) FROM probe_effect"
    )


def downstream_stats() -> tuple[int, int]:
    return scalar("SELECT count(*) FROM probe_downstream"), scalar(
        "SELECT count(DISTINCT trade_id) FROM probe_downstream"
    )


def outbox_events(topic: str | None = None) -> list[Encoded]:
    """The events not yet on Kafka (``topic``: only that physical topic): the stage batches'
    in their order, then the services' in theirs."""
    events = [e for row in OutboxBatch.objects.order_by("id") for e in unpack_events(row.events)]
    events += [
        Encoded(
            e.topic,
            bytes(e.key) if e.key is not None else None,
            bytes(e.value),
            e.headers,
            e.event_id,
        )
        for e in OutboxEvent.objects.order_by("id")
    ]
    return [e for e in events if topic is None or e.topic == topic]
