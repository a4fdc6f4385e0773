"""Compliance fixtures: named actors, captured trades, and a feed through the real runtime.

``captured(...)`` builds a trades.captured payload as capture emits it (defaults: AAPL bought by
ACC-0001 from CP-NRTH on Wednesday 2026-11-25, settling Friday 11-27 after Thanksgiving).
``feed(...)`` applies payloads through ``store.apply_batch`` with the compliance handler, exactly
as the consumer does, minus Kafka.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from backoffice.money import quantize_money
from backoffice.streaming import topics
from backoffice.streaming.envelope import Outbound, Subscription, decode, encode
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import BatchOutcome, Record, apply_batch
from compliance.models import ComplianceRule
from compliance.rules import DEFAULT_RULES
from compliance.stage import handle
from tests.streaming.helpers import outbox_events
from trades.management.commands.create_demo_users import GROUPS

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
CAPTURED = Subscription("trades.captured", "trades.captured")
AAPL = "US0378331005"
SAP = "DE0007164600"
MSFT = "US5949181045"


def captured(trade_id: str = "T1", version: int = 1, action: str | None = None, **overrides: Any):
    """A schema-valid trades.captured payload; gross and net follow quantity x price."""
    payload: dict[str, Any] = {
        "trade_id": trade_id,
        "trade_version": version,
        "action": action or ("NEW" if version == 1 else "AMEND"),
        "previous_version": None if version == 1 else version - 1,
        "account": "ACC-0001",
        "book": "EQ-US",
        "book_base_currency": "USD",
        "pnl_method": "FIFO",
        "counterparty": "CP-NRTH",
        "instrument": AAPL,
        "symbol": "AAPL",
        "asset_class": "EQUITY",
        "csdr_class": "LIQUID_SHARES",
        "market": "XNAS",
        "side": "BUY",
        "quantity": "100",
        "price": "231.40",
        "currency": "USD",
        "fees": "0.00",
        "trade_date": "2026-11-25",
        "trade_time": "2026-11-25T15:00:00Z",
        "settle_date": "2026-11-27",
        "settle_date_computed": True,
        "venue": "XNAS",
        "trader": "jdoe",
        "payment_type": "DVP",
        "ssi": {
            "custodian_bic": "IRVTUS3N",
            "safekeeping_account": "NRTH-XNAS-SK1857929",
            "cash_account": "NRTH-USD-CA0890754",
        },
    }
    payload.update(overrides)
    if "gross_amount" not in overrides:
        gross = Decimal(payload["quantity"]) * Decimal(payload["price"])
        payload["gross_amount"] = f"{quantize_money(gross, payload['currency']):f}"
    if "net_amount" not in overrides:
        payload["net_amount"] = payload["gross_amount"]
    return payload


def sap(trade_id: str = "E1", version: int = 1, **overrides: Any) -> dict[str, Any]:
    """A SAP trade in EUR on Xetra by a European account."""
    fields = {
        "account": "ACC-0007",
        "book": "EQ-EU",
        "book_base_currency": "EUR",
        "pnl_method": "AVERAGE",
        "instrument": SAP,
        "symbol": "SAP",
        "market": "XETR",
        "venue": "XETR",
        "currency": "EUR",
        "price": "228.45",
        "settle_date": "2026-11-27",
        "ssi": None,
    }
    return captured(trade_id, version, **{**fields, **overrides})


def envelope_bytes(payload: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The bytes and headers capture would publish for ``payload``."""
    event = Outbound(
        topic=topics.TRADES_CAPTURED,
        key=payload["account"],
        schema="trades.captured",
        payload=payload,
    )
    encoded = encode(event, registry=registry(), event_id=uuid.uuid4(), occurred_at=NOW)
    return encoded.value, [(k, v.encode()) for k, v in encoded.headers.items()]


class Feed:
    """Applies payloads as consecutive offsets of one partition, one batch per call."""

    def __init__(self, partition: int = 0) -> None:
        self.partition = partition  # a consumer of another partition applies its own offsets
        self.offset = 0

    def __call__(self, *payloads: dict[str, Any], now: datetime = NOW) -> BatchOutcome:
        records = []
        for payload in payloads:
            value, headers = envelope_bytes(payload)
            key = payload["account"].encode()
            message = decode(
                subscription=CAPTURED,
                partition=self.partition,
                offset=self.offset,
                key=key,
                value=value,
                headers=headers,
                registry=registry(),
            )
            records.append(
                Record(
                    "trades.captured",
                    self.partition,
                    self.offset,
                    key,
                    value,
                    headers,
                    message=message,
                )
            )
            self.offset += 1
        return apply_batch(
            stage="compliance", group="compliance-test", handler=handle, records=records, now=now
        )


def rules_seed() -> None:
    """The default rule rows (transactional tests flush what the data migration seeded)."""
    if not ComplianceRule.objects.exists():
        ComplianceRule.objects.bulk_create(
            ComplianceRule(
                code=d.code,
                description=d.description,
                threshold=d.threshold,
                params=dict(d.params),
                enabled=d.enabled,
            )
            for d in DEFAULT_RULES
        )


@pytest.fixture
def reference(db):
    call_command("load_reference_data", verbosity=0)
    rules_seed()


@pytest.fixture
def feed(reference) -> Feed:
    return Feed()


def events(topic: str) -> list[dict[str, Any]]:
    """Envelopes in the outbox for a logical topic, oldest first."""
    return [json.loads(e.value) for e in outbox_events(topics.topic(topic))]


def validated() -> list[dict[str, Any]]:
    return [e["payload"] for e in events(topics.TRADES_VALIDATED)]


def rejected() -> list[dict[str, Any]]:
    return [e["payload"] for e in events(topics.TRADES_REJECTED)]


# -- named actors --------------------------------------------------------------------------


ACTORS = {
    "analyst": "operations",
    "approver": "approver",
    "approver2": "approver",
    "viewer": "viewer",
    "outsider": None,
}


@pytest.fixture
def users(db) -> dict[str, User]:
    """analyst (operations), approver and approver2 (two approvers), viewer, outsider (no role).

    Created without a password (hashing one costs seconds per test); tests authenticate with
    tokens or ``force_login``.
    """
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in GROUPS}
    users = {}
    for username, group in ACTORS.items():
        user = User.objects.create(username=username)
        if group is not None:
            user.groups.set([groups[group]])
        users[username] = user
    return users


@pytest.fixture
def analyst(users) -> User:
    return users["analyst"]


@pytest.fixture
def approver(users) -> User:
    return users["approver"]


@pytest.fixture
def approver2(users) -> User:
    return users["approver2"]


@pytest.fixture
def viewer(users) -> User:
    return users["viewer"]
