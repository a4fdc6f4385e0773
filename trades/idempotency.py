"""Submitting a trade through the API, exactly once per ``Idempotency-Key``.

The key's row, the trade's outbox record (published to ``trades.executed``) and the audit entry
are written in one transaction. A retry with the same key and the same body finds the row and
gets the first response back, whether the first attempt's response was lost or not; the same key
with a different body is refused (409), since it names a different request. Two requests racing
with one key serialise on the row's unique index: one writes, the other then reads its answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.urls import reverse

from backoffice.audit.services import audit_record
from backoffice.streaming import topics
from backoffice.streaming.outbox import outbox_publish_raw
from trades.models import IdempotencyKey

IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY_MISSING = (
    "The Idempotency-Key header is required: send a new unique key (e.g. a UUID) with each "
    "trade, and the same key when you retry it."
)
KEY_INVALID = "The Idempotency-Key header must be 1 to 255 printable ASCII characters."
KEY_REUSED = (
    "This Idempotency-Key was already used for a different request body: use a new key for a "
    "new trade, or resend the original body to get the original response."
)
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

INBOUND_SCHEMA = "trades.executed"
INBOUND_VERSION = 1
ACCEPTED = 202
SUBMITTED = "trade.submitted"
# Namespace of the event ids of API submissions: uuid5(namespace, "<user id>|<key>").
SUBMISSION_NAMESPACE = uuid.UUID("0b8e7c2a-44d1-5c3e-9f6a-2d7e1f0a9b34")


class IdempotencyKeyReused(Exception):
    """The key was first used with a different request body."""


@dataclass(frozen=True)
class Submission:
    status: int
    body: dict[str, Any]
    replayed: bool


def key_problem(key: str | None) -> str | None:
    """Why ``key`` cannot be used (the message to show), or None when it is fine."""
    if not key:
        return KEY_MISSING
    if not _KEY.match(key):
        return KEY_INVALID
    return None


def request_fingerprint(payload: Any) -> str:
    """sha256 of the body as canonical JSON: key order and whitespace do not make it different."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submission_event_id(*, user_id: int, key: str) -> uuid.UUID:
    return uuid.uuid5(SUBMISSION_NAMESPACE, f"{user_id}|{key}")


def trade_submit(
    *, payload: dict[str, Any], key: str, actor: AbstractBaseUser, now: datetime
) -> Submission:
    """Publish a validated inbound trade to ``trades.executed`` once per (user, key).

    Guarantee: the first call with a key writes the key's row with its response, the raw trade
    to the outbox (key = account, ``event_id`` header derived from the user and key, so even a
    relay retry is captured once) and an audit entry, all in one transaction; any later call with
    the same key and the same body returns that stored response (``replayed``) and writes
    nothing; with a different body it raises ``IdempotencyKeyReused`` and writes nothing.
    ``payload`` must already be valid against the inbound schema.
    """
    user_id = int(actor.pk)
    fingerprint = request_fingerprint(payload)
    event_id = submission_event_id(user_id=user_id, key=key)
    body = {
        "trade_id": payload["trade_id"],
        "trade_version": payload["trade_version"],
        "action": payload["action"],
        "status": "accepted",
        "event_id": str(event_id),
        "url": reverse("api-trade-detail", args=[payload["trade_id"]]),
    }
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: a duplicate key must not spoil the outer one
                IdempotencyKey.objects.create(
                    user_id=user_id,
                    key=key,
                    request_hash=fingerprint,
                    response_status=ACCEPTED,
                    response_body=body,
                    created_at=now,
                )
        except IntegrityError:
            return _stored(user_id=user_id, key=key, fingerprint=fingerprint)
        outbox_publish_raw(
            topic=topics.TRADES_EXECUTED,
            key=payload["account"],
            value=json.dumps(payload, separators=(",", ":")).encode(),
            event_id=event_id,
            headers={"schema_version": str(INBOUND_VERSION), "idempotency_key": key},
        )
        audit_record(
            actor=actor,
            action=SUBMITTED,
            object_type="trade",
            object_id=payload["trade_id"],
            at=now,
            after=payload,
            reason=f"submitted through the API, v{payload['trade_version']} {payload['action']}",
            request_id=str(event_id),
        )
    return Submission(status=ACCEPTED, body=body, replayed=False)


def _stored(*, user_id: int, key: str, fingerprint: str) -> Submission:
    row = IdempotencyKey.objects.get(user_id=user_id, key=key)
    if row.request_hash != fingerprint:
        raise IdempotencyKeyReused(KEY_REUSED)
    return Submission(status=row.response_status, body=row.response_body, replayed=True)
