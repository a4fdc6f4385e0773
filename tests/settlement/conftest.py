"""Settlement fixtures: validated trades, custodian statuses and statements, fed through the
real runtime (``store.apply_batch``) exactly as the consumers apply them, minus Kafka.

Defaults: ACC-0001 buys AAPL (XNAS, USD) from CP-NRTH, settling Friday 2026-11-27.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from backoffice.money import quantize_money
from backoffice.streaming import topics
from backoffice.streaming.envelope import Outbound, Subscription, decode, encode
from backoffice.streaming.models import DeadLetter
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import BatchOutcome, Handler, Record, apply_batch
from settlement.reference import reference_clear
from settlement.stages import handle_reconciliation, handle_settlement
from tests.streaming.helpers import outbox_events
from trades.management.commands.create_demo_users import GROUPS

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
AAPL = "US0378331005"
MSFT = "US5949181045"
SAP = "DE0007164600"
SD = "2026-11-27"


def trade(trade_id: str = "T1", version: int = 1, action: str | None = None, **overrides: Any):
    """A schema-valid trades.validated payload; gross and net follow quantity x price."""
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
        "price": "10.00",
        "currency": "USD",
        "fees": "0.00",
        "trade_date": "2026-11-25",
        "trade_time": "2026-11-25T15:00:00Z",
        "settle_date": SD,
        "settle_date_computed": True,
        "venue": "XNAS",
        "trader": "jdoe",
        "payment_type": "DVP",
        "ssi": {
            "custodian_bic": "IRVTUS3N",
            "safekeeping_account": "NRTH-XNAS-SK1857929",
            "cash_account": "NRTH-USD-CA0890754",
        },
        "compliance": {
            "outcome": "PASSED",
            "exception_id": None,
            "approved_by": None,
            "override_reason": None,
        },
    }
    payload.update(overrides)
    if "gross_amount" not in overrides:
        gross = Decimal(payload["quantity"]) * Decimal(payload["price"])
        payload["gross_amount"] = f"{quantize_money(gross, payload['currency']):f}"
    if "net_amount" not in overrides:
        payload["net_amount"] = payload["gross_amount"]
    return payload


def status(
    instruction_id: str,
    sequence: int,
    state: str,
    *,
    account: str = "ACC-0001",
    day: str | None = SD,
    quantity: str = "0",
    cash: str = "0",
    reason_code: str | None = None,
) -> dict[str, Any]:
    """A settlement.status payload; settled amounts are signed and cumulative."""
    return {
        "instruction_id": instruction_id,
        "account": account,
        "sequence": sequence,
        "status": state,
        "reason_code": reason_code,
        "reason": reason_code.lower().replace("_", " ") if reason_code else "",
        "business_date": None if state == "MATCHED" else day,
        "settled_quantity": quantity,
        "settled_cash": cash,
        "reported_at": "2026-11-27T18:00:00+00:00",
    }


def statement(
    account: str = "ACC-0001",
    as_of: str = SD,
    *,
    positions: Sequence[tuple[str, str, str, str]] = (),  # (isin, quantity, unit price, ccy)
    cash: Sequence[tuple[str, str]] = (),
    revision: int = 1,
) -> dict[str, Any]:
    """A custodian.statements payload; market value = quantity x unit price, booked."""
    return {
        "statement_id": f"CS-{as_of}-{account}-r{revision}",
        "as_of": as_of,
        "account": account,
        "revision": revision,
        "positions": [
            {
                "instrument": isin,
                "quantity": q,
                "price": p,
                "market_value": f"{quantize_money(Decimal(q) * Decimal(p), ccy):f}",
                "currency": ccy,
            }
            for isin, q, p, ccy in positions
        ],
        "cash": [{"currency": c, "amount": a} for c, a in cash],
    }


SCHEMAS = {
    topics.TRADES_VALIDATED: "trades.validated",
    topics.SETTLEMENT_STATUS: "settlement.status",
    topics.CUSTODIAN_STATEMENTS: "custodian.statements",
}


class Feed:
    """Applies payloads as consecutive offsets (one partition per topic), one batch per call."""

    def __init__(self, stage: str, handler: Handler) -> None:
        self.stage = stage
        self.handler = handler
        self.offsets: dict[str, int] = {}

    def __call__(self, *items: tuple[str, dict[str, Any]], now: datetime = NOW) -> BatchOutcome:
        records = []
        for topic, payload in items:
            schema = SCHEMAS[topic]
            event = Outbound(topic=topic, key=payload["account"], schema=schema, payload=payload)
            encoded = encode(event, registry=registry(), event_id=uuid.uuid4(), occurred_at=now)
            headers = [(k, v.encode()) for k, v in encoded.headers.items()]
            offset = self.offsets.get(topic, 0)
            self.offsets[topic] = offset + 1
            message = decode(
                subscription=Subscription(topic, schema),
                partition=0,
                offset=offset,
                key=encoded.key,
                value=encoded.value,
                headers=headers,
                registry=registry(),
            )
            records.append(
                Record(topic, 0, offset, encoded.key, encoded.value, headers, message=message)
            )
        return apply_batch(
            stage=self.stage,
            group=f"{self.stage}-test",
            handler=self.handler,
            records=records,
            now=now,
        )

    def trades(self, *payloads: dict[str, Any], now: datetime = NOW) -> BatchOutcome:
        return self(*((topics.TRADES_VALIDATED, p) for p in payloads), now=now)

    def statuses(self, *payloads: dict[str, Any], now: datetime = NOW) -> BatchOutcome:
        return self(*((topics.SETTLEMENT_STATUS, p) for p in payloads), now=now)

    def statements(self, *payloads: dict[str, Any], now: datetime = NOW) -> BatchOutcome:
        return self(*((topics.CUSTODIAN_STATEMENTS, p) for p in payloads), now=now)


@pytest.fixture
def reference(db):
    call_command("load_reference_data", verbosity=0)
    reference_clear()
    yield
    reference_clear()


@pytest.fixture
def settle(reference) -> Feed:
    return Feed("settlement", handle_settlement)


@pytest.fixture
def reconcile(reference) -> Feed:
    return Feed("reconciliation", handle_reconciliation)


def events(topic: str) -> list[dict[str, Any]]:
    """Envelopes in the outbox for a logical topic, oldest first."""
    return [json.loads(e.value) for e in outbox_events(topics.topic(topic))]


def sent_instructions() -> list[dict[str, Any]]:
    return [e["payload"] for e in events(topics.SETTLEMENT_INSTRUCTIONS)]


def dead_letters() -> list[tuple[str, str]]:
    return list(DeadLetter.objects.order_by("id").values_list("error_class", "reason"))


# -- named actors --------------------------------------------------------------------------

ACTORS = {"analyst": "operations", "analyst2": "operations", "viewer": "viewer"}


@pytest.fixture
def users(db) -> dict[str, User]:
    """analyst and analyst2 (operations), viewer; no passwords (tests use force_login)."""
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in GROUPS}
    created = {}
    for username, group in ACTORS.items():
        user = User.objects.create(username=username)
        user.groups.set([groups[group]])
        created[username] = user
    return created


@pytest.fixture
def analyst(users) -> User:
    return users["analyst"]


@pytest.fixture
def analyst2(users) -> User:
    return users["analyst2"]


@pytest.fixture
def viewer(users) -> User:
    return users["viewer"]
