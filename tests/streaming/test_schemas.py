"""Schema registry: validation, upcasting, immutability and the backward-compatibility rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backoffice.streaming.schemas import (
    Registry,
    SchemaError,
    Upcaster,
    compatibility_problems,
    load_directory,
    registry,
)
from tests.streaming.helpers import trade


def test_every_shipped_schema_version_is_backward_compatible_with_the_one_before():
    current = registry()
    for name in current.names():
        versions = current.versions(name)
        for version in sorted(versions)[1:]:
            problems = compatibility_problems(
                versions[version - 1], versions[version], current.upcaster(name, version - 1)
            )
            assert problems == [], f"{name} v{version} breaks v{version - 1} readers: {problems}"


def test_a_valid_trade_passes_and_a_float_quantity_is_refused_with_the_field_named():
    current = registry()
    current.validate("trades.executed", 1, trade(1))
    bad = {**trade(1), "quantity": 12.5}
    with pytest.raises(SchemaError, match=r"^trades\.executed v1: field quantity must be string$"):
        current.validate("trades.executed", 1, bad)


def _write(directory: Path, name: str, version: int, body: dict) -> None:
    (directory / name).mkdir(exist_ok=True)
    (directory / name / f"v{version}.json").write_text(json.dumps(body))


BASE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id"],
    "properties": {"id": {"type": "string"}, "note": {"type": "string"}},
}


def _pair(tmp_path: Path, new: dict, upcaster: Upcaster | None = None):
    _write(tmp_path, "thing", 1, BASE)
    _write(tmp_path, "thing", 2, new)
    loaded = load_directory(tmp_path)["thing"]
    return compatibility_problems(loaded[1], loaded[2], upcaster)


def test_adding_an_optional_field_with_an_upcaster_is_compatible(tmp_path):
    new = {**BASE, "properties": {**BASE["properties"], "source": {"type": "string"}}}
    assert _pair(tmp_path, new, Upcaster("thing", 1, lambda p: p)) == []


def test_a_new_required_field_without_an_upcaster_that_fills_it_is_refused(tmp_path):
    new = {
        **BASE,
        "required": ["id", "source"],
        "properties": {**BASE["properties"], "source": {"type": "string"}},
    }
    problems = _pair(tmp_path, new, Upcaster("thing", 1, lambda p: p))
    assert problems == ["field 'source' became required without an upcaster that fills it"]
    filled = Upcaster("thing", 1, lambda p: {**p, "source": "legacy"}, adds=frozenset({"source"}))
    assert _pair(tmp_path, new, filled) == []


def test_narrowing_a_type_or_removing_a_field_is_refused(tmp_path):
    new = {**BASE, "properties": {"id": {"type": "integer"}}}
    problems = _pair(tmp_path, new, Upcaster("thing", 1, lambda p: p))
    assert "field 'note' was removed but old messages still carry it" in problems
    assert "field 'id': type narrowed from ['string'] to ['integer']" in problems


def test_a_version_without_an_upcaster_is_refused(tmp_path):
    assert _pair(tmp_path, BASE, None) == ["thing v2: no upcaster from v1"]


def test_an_old_message_is_raised_to_the_latest_version(tmp_path):
    new = {
        **BASE,
        "required": ["id", "source"],
        "properties": {**BASE["properties"], "source": {"type": "string"}},
    }
    _write(tmp_path, "thing", 1, BASE)
    _write(tmp_path, "thing", 2, new)
    up = Upcaster("thing", 1, lambda p: {**p, "source": "legacy"}, adds=frozenset({"source"}))
    reg = Registry(load_directory(tmp_path), [up])
    assert reg.read("thing", 1, {"id": "a"}) == {"id": "a", "source": "legacy"}
    with pytest.raises(SchemaError, match=r"^thing v3 is newer than this consumer knows \(v2\)$"):
        reg.read("thing", 3, {"id": "a"})


def test_version_gaps_are_refused(tmp_path):
    _write(tmp_path, "thing", 1, BASE)
    _write(tmp_path, "thing", 3, BASE)
    with pytest.raises(SchemaError, match=r"versions must be 1\.\.N without gaps, got \[1, 3\]"):
        load_directory(tmp_path)


def _decode(subscription, value: dict[str, Any]):
    from backoffice.streaming.envelope import decode

    return decode(
        subscription=subscription,
        partition=0,
        offset=0,
        key=None,
        value=json.dumps(value).encode(),
        headers=[],
        registry=registry(),
    )


def test_an_inbound_record_is_validated_on_consume_and_our_own_envelope_is_not():
    """Inbound bytes come from anyone and are checked field by field; an envelope at the latest
    version was validated by the ``encode`` that wrote it, against the same immutable version."""
    from backoffice.streaming.envelope import DecodeError, Subscription

    bad = {**trade(1), "quantity": 12.5}
    inbound = Subscription("trades.executed", "trades.executed", enveloped=False)
    with pytest.raises(DecodeError, match="field quantity must be string"):
        _decode(inbound, bad)
    envelope = {
        "event_id": "6f1d2c1e-7a3b-5e8f-9c0d-000000000001",
        "schema": "trades.executed",
        "version": registry().latest("trades.executed"),
        "payload": bad,
    }
    internal = Subscription("probe.out", "trades.executed")
    assert _decode(internal, envelope).payload["quantity"] == 12.5
    strict = Subscription("probe.out", "trades.executed", revalidate=True)
    with pytest.raises(DecodeError, match="field quantity must be string"):
        _decode(strict, envelope)
    with pytest.raises(DecodeError, match="payload is not a JSON object"):
        _decode(internal, {**envelope, "payload": [1, 2]})
