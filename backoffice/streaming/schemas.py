"""Schema registry: versioned JSON Schemas under ``schemas/<name>/v<N>.json``.

Every message is validated on produce and on consume. A consumer always receives the latest
version of a schema: an older message is raised one version at a time by the upcasters in
``backoffice.streaming.upcasters``. Published versions are immutable — the registry refuses a
file whose content changed after it was registered — and a new version must be backward
compatible with the previous one (``compatibility_problems``; a test runs it over ``schemas/``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from backoffice.config import BASE_DIR

SCHEMA_DIR = BASE_DIR / "schemas"
_FILE = re.compile(r"^v(?P<version>[1-9][0-9]*)\.json$")

Payload = dict[str, Any]


class SchemaError(Exception):
    """A message does not match its schema, or names a schema/version the registry lacks."""


class SchemaChangedError(Exception):
    """A registered schema version's file changed: published versions are immutable."""


@dataclass(frozen=True)
class Upcaster:
    """Raises a payload from ``from_version`` to ``from_version + 1`` of schema ``name``.

    ``adds`` and ``removes`` name the top-level fields the function fills in or drops, so the
    compatibility check knows a new required field (or a dropped one) is taken care of.
    """

    name: str
    from_version: int
    function: Callable[[Payload], Payload]
    adds: frozenset[str] = field(default_factory=frozenset)
    removes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class SchemaVersion:
    name: str
    version: int
    body: Mapping[str, Any]
    fingerprint: str
    validate: Callable[[Any], Any]


def _fingerprint(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def load_directory(directory: Path) -> dict[str, dict[int, SchemaVersion]]:
    """Read and compile every ``<name>/v<N>.json`` below ``directory``."""
    found: dict[str, dict[int, SchemaVersion]] = {}
    for path in sorted(directory.glob("*/v*.json")):
        match = _FILE.match(path.name)
        if match is None:
            continue
        name, version = path.parent.name, int(match["version"])
        body = json.loads(path.read_text(encoding="utf-8"))
        found.setdefault(name, {})[version] = SchemaVersion(
            name=name,
            version=version,
            body=body,
            fingerprint=_fingerprint(body),
            validate=fastjsonschema.compile(body),
        )
    for name, versions in found.items():
        expected = list(range(1, len(versions) + 1))
        if sorted(versions) != expected:
            raise SchemaError(
                f"schema {name}: versions must be 1..N without gaps, got {sorted(versions)}"
            )
    return found


class Registry:
    """The schemas of one directory plus the upcasters between their versions."""

    def __init__(self, schemas: dict[str, dict[int, SchemaVersion]], upcasters: list[Upcaster]):
        self._schemas = schemas
        self._upcasters = {(u.name, u.from_version): u for u in upcasters}

    def names(self) -> list[str]:
        return sorted(self._schemas)

    def versions(self, name: str) -> dict[int, SchemaVersion]:
        try:
            return self._schemas[name]
        except KeyError:
            raise SchemaError(f"unknown schema {name!r}") from None

    def latest(self, name: str) -> int:
        return max(self.versions(name))

    def get(self, name: str, version: int) -> SchemaVersion:
        try:
            return self.versions(name)[version]
        except KeyError:
            raise SchemaError(f"schema {name!r} has no version {version}") from None

    def upcaster(self, name: str, from_version: int) -> Upcaster | None:
        return self._upcasters.get((name, from_version))

    def validate(self, name: str, version: int, payload: Any) -> None:
        """Raise ``SchemaError`` with a readable reason when ``payload`` does not match."""
        schema = self.get(name, version)
        try:
            schema.validate(payload)
        except fastjsonschema.JsonSchemaValueException as error:
            raise SchemaError(f"{name} v{version}: {_describe(error)}") from None

    def read(self, name: str, version: int, payload: Any, *, trusted: bool = False) -> Payload:
        """Validate a payload of any known version and raise it to the latest version.

        ``trusted``: the producer validated it against ``version`` (our own envelope), so a
        payload already at the latest version is taken as it is; upcasting still validates.
        """
        latest = self.latest(name)
        if version > latest:
            raise SchemaError(f"{name} v{version} is newer than this consumer knows (v{latest})")
        if version == latest:
            if not trusted:
                self.validate(name, version, payload)
            if not isinstance(payload, dict):
                raise SchemaError(f"{name} v{version}: payload is not a JSON object")
            return dict(payload)
        self.validate(name, version, payload)
        while version < latest:
            upcaster = self.upcaster(name, version)
            if upcaster is None:
                raise SchemaError(f"no upcaster for {name} v{version} -> v{version + 1}")
            payload = upcaster.function(payload)
            version += 1
        self.validate(name, latest, payload)
        return dict(payload)


def _describe(error: fastjsonschema.JsonSchemaValueException) -> str:
    # fastjsonschema says "data.quantity must match pattern ..."; name the field plainly.
    message = str(error.message)
    return message.replace("data.", "field ", 1) if message.startswith("data.") else message


def compatibility_problems(
    old: SchemaVersion, new: SchemaVersion, upcaster: Upcaster | None
) -> list[str]:
    """What in ``new`` would refuse a message valid under ``old`` (after the upcaster)."""
    problems: list[str] = []
    if new.version > 1 and upcaster is None:
        problems.append(f"{new.name} v{new.version}: no upcaster from v{old.version}")
    adds = upcaster.adds if upcaster else frozenset()
    removes = upcaster.removes if upcaster else frozenset()
    old_props: Mapping[str, Any] = old.body.get("properties", {})
    new_props: Mapping[str, Any] = new.body.get("properties", {})
    for name in set(new.body.get("required", [])) - set(old.body.get("required", [])) - adds:
        problems.append(f"field {name!r} became required without an upcaster that fills it")
    closed = new.body.get("additionalProperties", True) is False
    for name in sorted(set(old_props) - set(new_props) - removes):
        if closed:
            problems.append(f"field {name!r} was removed but old messages still carry it")
    if closed and old.body.get("additionalProperties", True) is not False:
        problems.append("additionalProperties became false: old messages with extra fields fail")
    for name in sorted(set(old_props) & set(new_props)):
        problems.extend(
            f"field {name!r}: {p}" for p in _narrowing(old_props[name], new_props[name])
        )
    return problems


def _narrowing(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    if old == new:
        return []
    problems: list[str] = []
    old_types, new_types = _types(old), _types(new)
    if old_types and new_types and not old_types <= new_types:
        problems.append(f"type narrowed from {sorted(old_types)} to {sorted(new_types)}")
    if "enum" in new and not set(old.get("enum", [])) <= set(new["enum"]):
        problems.append("enum lost values")
    for keyword in ("pattern", "minimum", "maximum", "minLength", "maxLength", "format", "items"):
        if keyword in new and new.get(keyword) != old.get(keyword):
            problems.append(f"{keyword} changed (cannot prove it still accepts old values)")
    return problems


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if kind is None:
        return set()
    return {kind} if isinstance(kind, str) else set(kind)


@cache
def registry() -> Registry:
    """The process-wide registry of ``schemas/`` with the platform's upcasters."""
    from backoffice.streaming.upcasters import UPCASTERS

    return Registry(load_directory(SCHEMA_DIR), UPCASTERS)


def register_on_migrate(**_: object) -> None:
    """Record every schema version with an id in PostgreSQL; refuse edited published versions."""
    from backoffice.streaming.models import RegisteredSchema

    current = registry()
    for name in current.names():
        for version, schema in sorted(current.versions(name).items()):
            row, created = RegisteredSchema.objects.get_or_create(
                name=name,
                version=version,
                defaults={"fingerprint": schema.fingerprint, "body": schema.body},
            )
            if not created and row.fingerprint != schema.fingerprint:
                raise SchemaChangedError(
                    f"schemas/{name}/v{version}.json changed after it was registered: published "
                    f"versions are immutable, add v{version + 1} with an upcaster instead"
                )
