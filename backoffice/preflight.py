"""One-line answers to "is the service there?" for commands that need PostgreSQL, Kafka or Redis.

A command that starts without its services says what is missing, where it looked and how to start
it, and exits non-zero — never a traceback.
"""

from __future__ import annotations

import socket

from django.conf import settings
from django.db import OperationalError, connection

POSTGRES_MISSING = (
    "PostgreSQL is not reachable at {where} (DATABASE_URL): start it with `scripts/services.sh start` "
    "or point DATABASE_URL at a running server"
)
KAFKA_MISSING = (
    "Kafka is not reachable at {where} (KAFKA_BOOTSTRAP_SERVERS): start it with "
    "`scripts/services.sh start` or point KAFKA_BOOTSTRAP_SERVERS at a running cluster"
)
REDIS_MISSING = (
    "Redis is not reachable at {where} (REDIS_URL): start it with `scripts/services.sh start` "
    "or point REDIS_URL at a running server"
)
SCHEMA_MISSING = "the database has no tables yet: run `python manage.py migrate` first"


class ServiceMissing(Exception):
    """A required service is unreachable; ``str()`` is the one line to show the user."""


def postgres_where() -> str:
    db = settings.DATABASES["default"]
    return f"{db['HOST']}:{db['PORT']}/{db['NAME']}"


def require_postgres() -> None:
    try:
        connection.ensure_connection()
    except OperationalError:
        raise ServiceMissing(POSTGRES_MISSING.format(where=postgres_where())) from None
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('streaming_consumeroffset') IS NOT NULL")
        row = cursor.fetchone()
    if not row or not row[0]:
        raise ServiceMissing(SCHEMA_MISSING)


def _reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host:
        return address, default_port
    return host.strip("[]"), int(port)


def require_kafka() -> None:
    servers: list[str] = settings.KAFKA_BOOTSTRAP_SERVERS
    if not any(_reachable(*_host_port(s, 9092)) for s in servers):
        raise ServiceMissing(KAFKA_MISSING.format(where=",".join(servers)))


def require_redis() -> None:
    from urllib.parse import urlsplit

    url = urlsplit(settings.REDIS_URL)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    if not _reachable(host, port):
        raise ServiceMissing(REDIS_MISSING.format(where=f"{host}:{port}"))
