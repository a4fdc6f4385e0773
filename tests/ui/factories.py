"""Trades and dead letters for UI and API tests, made through the real capture stage.

``Capture`` feeds payloads to the capture handler inside the runtime's batch transaction (as
consecutive offsets of one partition), so the rows the pages read are exactly what production
writes; no Kafka is needed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from backoffice.streaming.envelope import Subscription, decode
from backoffice.streaming.models import DeadLetter
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import Record, apply_batch
from trades.stage import handle_capture

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
INBOUND = Subscription("trades.executed", "trades.executed", enveloped=False)

ACCOUNTS = ("ACC-0001", "ACC-0002", "ACC-0003")
INSTRUMENTS = (  # ISIN, price, currency: all on US markets, so one counterparty settles them all
    ("US0378331005", "231.40", "USD"),
    ("US5949181045", "415.10", "USD"),
    ("US0231351067", "185.07", "USD"),
)


def trade_payload(
    trade_id: str = "T1", version: int = 1, action: str = "NEW", **overrides: Any
) -> dict[str, Any]:
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


def varied_payloads(
    count: int, *, prefix: str = "T", trade_date: str = "2026-11-25"
) -> list[dict[str, Any]]:
    """``count`` NEW trades spread over accounts, instruments and sides (deterministic)."""
    payloads = []
    for n in range(count):
        isin, price, currency = INSTRUMENTS[n % len(INSTRUMENTS)]
        payloads.append(
            trade_payload(
                f"{prefix}{n:05d}",
                account=ACCOUNTS[n % len(ACCOUNTS)],
                instrument=isin,
                price=price,
                currency=currency,
                side="BUY" if n % 2 else "SELL",
                quantity=str(100 + n),
                trade_date=trade_date,
                trade_time=f"{trade_date}T15:{n // 60 % 60:02d}:{n % 60:02d}Z",
            )
        )
    return payloads


class Capture:
    """Applies payloads through the capture handler as consecutive offsets of one partition."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self, *payloads: dict[str, Any], now: datetime = NOW) -> Any:
        records = []
        for payload in payloads:
            value = json.dumps(payload).encode()
            key = payload["account"].encode()
            message = decode(
                subscription=INBOUND,
                partition=0,
                offset=self.offset,
                key=key,
                value=value,
                headers=[],
                registry=registry(),
            )
            records.append(
                Record("trades.executed", 0, self.offset, key, value, [], message=message)
            )
            self.offset += 1
        return apply_batch(
            stage="capture", group="ui-test", handler=handle_capture, records=records, now=now
        )


def dead_letter(offset: int = 1, **overrides: Any) -> DeadLetter:
    payload = trade_payload(f"DL{offset}", account="ACC-MISSING")
    fields: dict[str, Any] = {
        "stage": "capture",
        "group": "backoffice.capture",
        "source_topic": "trades.executed",
        "partition": 0,
        "offset": offset,
        "key": b"ACC-MISSING",
        "value": json.dumps(payload).encode(),
        "headers": {"event_id": None},
        "error_class": "UnknownAccount",
        "reason": "unknown account 'ACC-MISSING'",
    }
    fields.update(overrides)
    return DeadLetter.objects.create(**fields)


def demo_users(*, passwords: bool = False) -> dict[str, Any]:
    """The demo users by username (analyst: operations, approver, viewer, admin).

    Without ``passwords`` they get none (tests log in with ``force_login``): hashing four
    passwords costs seconds. Browser tests pass ``passwords=True`` under a fast test hasher.
    """
    from django.contrib.auth.models import Group, User

    from trades.management.commands.create_demo_users import DEMO_USERS, GROUPS

    groups = {name: Group.objects.get_or_create(name=name)[0] for name in GROUPS}
    users = {}
    for demo in DEMO_USERS:
        user = User(username=demo.username, is_staff=demo.superuser, is_superuser=demo.superuser)
        if passwords:
            user.set_password(demo.password)
        else:
            user.set_unusable_password()
        user.save()
        user.groups.set([groups[demo.group]])
        users[demo.username] = user
    return users
