"""Messages in and out: decoding consumed records, and the envelope every emitted event wears.

Internal events are JSON envelopes::

    {"event_id": uuid, "schema": name, "version": n, "occurred_at": iso8601,
     "correlation_id": trade id, "causation_id": upstream event id, "payload": {...}}

with headers ``event_id``, ``schema``, ``schema_version`` and ``traceparent``. Inbound
``trades.executed`` is the bare payload (any Kafka client can write it); its schema comes from the
subscription and its version from an optional ``schema_version`` header (default 1).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from backoffice.streaming.schemas import Payload, Registry, SchemaError
from backoffice.streaming.tracing import TraceContext, new_trace, parse_traceparent

# Event ids derived from what caused them are stable across a crash and a reprocess, so a copy
# published before the crash and the one published after it de-duplicate downstream.
EVENT_NAMESPACE = uuid.UUID("6f1d2c1e-7a3b-5e8f-9c0d-1b2a3c4d5e6f")

UNDECODABLE = "UndecodableMessage"
SCHEMA_VIOLATION = "SchemaViolation"


class DecodeError(Exception):
    """A consumed record cannot become a ``Message``: it is dead-lettered with this reason."""

    def __init__(self, error_class: str, reason: str):
        super().__init__(reason)
        self.error_class = error_class
        self.reason = reason


@dataclass(frozen=True)
class Subscription:
    """A logical topic a stage consumes, and how its records are read."""

    topic: str
    schema: str
    enveloped: bool = True
    # Envelopes are written only by this platform's ``encode``, which validated the payload
    # against the same schema version, and a published version never changes: validating it
    # again on every consume cost about 50 µs a message on each hop. ``revalidate`` restores
    # that check for a topic others may write to. Bare inbound records, and a version that must
    # be upcast, are always validated.
    revalidate: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded, validated message, raised to the latest version of its schema."""

    topic: str
    partition: int
    offset: int
    key: str | None
    payload: Payload
    schema: str
    version: int
    event_id: uuid.UUID | None
    correlation_id: str | None
    trace: TraceContext
    raw: bytes
    headers: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outbound:
    """An event a stage wants published, with what caused it."""

    topic: str
    key: str | None
    schema: str
    payload: Mapping[str, Any]
    cause: Message | None = None
    correlation_id: str | None = None
    event_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Encoded:
    """An event ready for the outbox: physical-topic-agnostic bytes and headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    event_id: uuid.UUID


_PLAIN = (str, int, bool, type(None))


def jsonable(value: Any) -> Any:
    """Decimal and dates become strings (never floats), recursively."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {k: v if isinstance(v, _PLAIN) else jsonable(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def derived_event_id(group: str, cause: Message, sequence: int) -> uuid.UUID:
    return uuid.uuid5(
        EVENT_NAMESPACE, f"{group}|{cause.topic}|{cause.partition}|{cause.offset}|{sequence}"
    )


def encode(
    event: Outbound, *, registry: Registry, event_id: uuid.UUID, occurred_at: datetime
) -> Encoded:
    """Validate ``event`` against the latest version of its schema and wrap it in the envelope."""
    payload = jsonable(event.payload)
    version = registry.latest(event.schema)
    registry.validate(event.schema, version, payload)
    cause = event.cause
    correlation = event.correlation_id or (cause.correlation_id if cause else None)
    # The runtime gave a sampled cause its own span's context: the event's traceparent is that span.
    trace = cause.trace if cause else new_trace()
    envelope = {
        "event_id": str(event_id),
        "schema": event.schema,
        "version": version,
        "occurred_at": occurred_at.isoformat(),
        "correlation_id": correlation,
        "causation_id": str(cause.event_id) if cause and cause.event_id else None,
        "payload": payload,
    }
    return Encoded(
        topic=event.topic,
        key=event.key.encode() if event.key is not None else None,
        value=orjson.dumps(envelope, option=orjson.OPT_NON_STR_KEYS),
        headers={
            "event_id": str(event_id),
            "schema": event.schema,
            "schema_version": str(version),
            "traceparent": trace.traceparent,
            "content-type": "application/json",
        },
        event_id=event_id,
    )


def decode(
    *,
    subscription: Subscription,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
    registry: Registry,
) -> Message:
    """Turn a consumed record into a ``Message`` or raise ``DecodeError`` saying why not."""
    header_map = {name: raw for name, raw in headers if raw is not None}
    if value is None:
        raise DecodeError(UNDECODABLE, "empty message (no value)")
    try:
        document = orjson.loads(value.decode("utf-8"))  # orjson: a third of json's time
    except UnicodeDecodeError as error:
        raise DecodeError(
            UNDECODABLE, f"value is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except orjson.JSONDecodeError as error:
        raise DecodeError(
            UNDECODABLE,
            f"value is not JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None
    event_id: uuid.UUID | None
    if subscription.enveloped:
        schema, version, payload, event_id, correlation = _open_envelope(document)
    else:
        schema, payload = subscription.schema, document
        version = _header_int(header_map, "schema_version", default=1)
        event_id = _header_uuid(header_map)
        correlation = payload.get("trade_id") if isinstance(payload, dict) else None
    if schema != subscription.schema:
        raise DecodeError(SCHEMA_VIOLATION, f"expected schema {subscription.schema}, got {schema}")
    try:
        trusted = subscription.enveloped and not subscription.revalidate
        payload = registry.read(schema, version, payload, trusted=trusted)
    except SchemaError as error:
        raise DecodeError(SCHEMA_VIOLATION, str(error)) from None
    return Message(
        topic=subscription.topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", "replace") if key is not None else None,
        payload=payload,
        schema=schema,
        version=version,
        event_id=event_id,
        correlation_id=str(correlation) if correlation is not None else None,
        trace=parse_traceparent(header_map.get("traceparent")) or new_trace(),
        raw=value,
        headers=header_map,
    )


def _open_envelope(document: Any) -> tuple[str, int, Any, uuid.UUID, str | None]:
    if not isinstance(document, dict):
        raise DecodeError(SCHEMA_VIOLATION, "envelope is not a JSON object")
    try:
        event_id = uuid.UUID(str(document["event_id"]))
        schema = str(document["schema"])
        version = int(document["version"])
        payload = document["payload"]
    except (KeyError, ValueError, TypeError) as error:
        raise DecodeError(SCHEMA_VIOLATION, f"malformed envelope: {error!r}") from None
    correlation = document.get("correlation_id")
    return schema, version, payload, event_id, correlation


def _header_int(headers: Mapping[str, bytes], name: str, *, default: int) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        return int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise DecodeError(SCHEMA_VIOLATION, f"header {name} is not a number: {raw!r}") from None


def _header_uuid(headers: Mapping[str, bytes]) -> uuid.UUID | None:
    raw = headers.get("event_id")
    if raw is None:
        return None
    try:
        return uuid.UUID(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise DecodeError(SCHEMA_VIOLATION, f"header event_id is not a UUID: {raw!r}") from None
