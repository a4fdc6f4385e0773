"""A missing service or a malformed setting is one clear line and a non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_malformed_setting_names_the_variable():
    result = manage("check", STREAM_BATCH_SIZE="lots")
    assert result.returncode == 2
    assert (
        result.stderr
        == "configuration error: STREAM_BATCH_SIZE must be a whole number, got 'lots'\n"
    )


def test_a_malformed_database_url_names_the_variable():
    result = manage("check", DATABASE_URL="mysql://localhost/db")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "configuration error: DATABASE_URL must look like postgresql://"
    )
    assert "Traceback" not in result.stderr


def test_a_consumer_without_postgresql_says_so_in_one_line():
    result = manage("consume_capture", DATABASE_URL="postgresql://u:p@127.0.0.1:1/none")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "CommandError: PostgreSQL is not reachable at 127.0.0.1:1/none (DATABASE_URL): start it with "
        "`scripts/services.sh start` or point DATABASE_URL at a running server"
    ]


@pytest.mark.integration
def test_a_consumer_without_kafka_says_so_in_one_line(db):
    # PostgreSQL is there (the test database); Kafka is pointed at a port nobody listens on.
    from django.conf import settings

    database = settings.DATABASES["default"]
    url = f"postgresql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    result = manage("consume_capture", DATABASE_URL=url, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "CommandError: Kafka is not reachable at 127.0.0.1:1 (KAFKA_BOOTSTRAP_SERVERS): start it with "
        "`scripts/services.sh start` or point KAFKA_BOOTSTRAP_SERVERS at a running cluster"
    ]
