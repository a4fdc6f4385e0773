"""Configuration from environment variables, with working defaults and clear errors.

Every setting the platform reads from the environment goes through ``Env`` so that a malformed
value fails at start-up with one line naming the variable, what it must be and what it got —
never a traceback deep inside a consumer. A ``.env`` file at the repository root (optional) is
read first; real environment variables win over it.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file of ``NAME=value`` lines (``#`` comments, optional quotes)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ConfigError(f"{path.name} line {number}: expected NAME=value, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


class Env:
    """Typed access to configuration: ``.env`` file values overlaid by the real environment."""

    def __init__(self, environ: Mapping[str, str] | None = None, dotenv: Path | None = None):
        merged = read_dotenv(dotenv) if dotenv is not None else {}
        merged.update(os.environ if environ is None else environ)
        self._values = merged

    def str(self, name: builtins.str, default: builtins.str) -> builtins.str:
        return self._values.get(name, default)

    def int(
        self, name: builtins.str, default: builtins.int, *, minimum: builtins.int | None = None
    ) -> builtins.int:
        raw = self._values.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def float(
        self, name: builtins.str, default: builtins.float, *, minimum: builtins.float | None = None
    ) -> builtins.float:
        raw = self._values.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        raw = self._values.get(name)
        if raw is None or raw == "":
            return default
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def list(self, name: builtins.str, default: builtins.str) -> builtins.list[builtins.str]:
        return [part.strip() for part in self.str(name, default).split(",") if part.strip()]


@dataclass(frozen=True)
class StreamingSettings:
    """The streaming runtime's knobs (environment variables in brackets)."""

    topic_prefix: str  # TOPIC_PREFIX: isolates environments and tests
    batch_size: int  # STREAM_BATCH_SIZE
    linger_ms: int  # STREAM_LINGER_MS: wait this long for a batch to fill once it has started
    max_poll_interval_ms: int  # STREAM_MAX_POLL_INTERVAL_MS
    session_timeout_ms: int  # STREAM_SESSION_TIMEOUT_MS
    retry_max_seconds: float  # STREAM_RETRY_MAX_SECONDS: longest backoff between retries
    relay_batch_size: int  # RELAY_BATCH_SIZE
    metrics_port: int  # METRICS_PORT (0 = no metrics server)
    partitions: int  # KAFKA_PARTITIONS for topics the platform creates


def streaming_settings(env: Env) -> StreamingSettings:
    return StreamingSettings(
        topic_prefix=env.str("TOPIC_PREFIX", ""),
        batch_size=env.int("STREAM_BATCH_SIZE", 1000, minimum=1),
        linger_ms=env.int("STREAM_LINGER_MS", 20, minimum=0),
        max_poll_interval_ms=env.int("STREAM_MAX_POLL_INTERVAL_MS", 300_000, minimum=1000),
        session_timeout_ms=env.int("STREAM_SESSION_TIMEOUT_MS", 10_000, minimum=1000),
        retry_max_seconds=env.float("STREAM_RETRY_MAX_SECONDS", 30.0, minimum=0.1),
        relay_batch_size=env.int("RELAY_BATCH_SIZE", 2000, minimum=1),
        metrics_port=env.int("METRICS_PORT", 0, minimum=0),
        partitions=env.int("KAFKA_PARTITIONS", 4, minimum=1),
    )


@dataclass(frozen=True)
class DatabaseUrl:
    host: str
    port: int
    name: str
    user: str
    password: str


def parse_database_url(url: str, *, variable: str = "DATABASE_URL") -> DatabaseUrl:
    """Parse ``postgresql://user:password@host:port/name``; refuse anything else clearly."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ConfigError(
            f"{variable} must look like postgresql://user:password@host:port/dbname, got {url!r}"
        )
    name = parts.path.lstrip("/")
    if not name:
        raise ConfigError(f"{variable} names no database (…/dbname), got {url!r}")
    try:
        port = parts.port or 5432
    except ValueError:
        raise ConfigError(f"{variable} has a malformed port, got {url!r}") from None
    return DatabaseUrl(
        host=parts.hostname or "127.0.0.1",
        port=port,
        name=unquote(name),
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
    )
