"""Shared fixtures: named actors, per-test topic prefixes, real consumer processes, waiting.

Integration tests talk to the real Kafka broker and PostgreSQL that ``make test`` starts. Each test
gets its own topic prefix (and so its own consumer groups), so tests never see each other's
messages. Waiting is always on an observable condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings

from backoffice import preflight
from backoffice.streaming import kafka_admin
from core import clock

ROOT = Path(__file__).resolve().parent.parent

# ``TEST_CLOCK=+365d`` or ``TEST_CLOCK=2027-12-25T15:00:00Z`` runs the whole session with the
# process's wall clock moved there (ticking on). Code that reads the clock anywhere but
# ``core.clock``, or a test that depends on the day it runs, fails under it; CI runs the
# service-free and database tests this way (scripts/run-tests.sh).
TEST_CLOCK = os.environ.get("TEST_CLOCK", "")
BAD_TEST_CLOCK = "TEST_CLOCK must be +<days>d or an ISO 8601 instant with a zone, got {value!r}"
_session_travel: Any = None


def moved_clock(value: str, *, real_now: datetime) -> datetime:
    """Where ``TEST_CLOCK`` puts the clock: ``+Nd``/``-Nd`` from ``real_now``, or an instant."""
    if value[:1] in "+-" and value.endswith("d") and value[1:-1].isdigit():
        return real_now + timedelta(days=int(value[:-1]))
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise pytest.UsageError(BAD_TEST_CLOCK.format(value=value)) from None
    if instant.tzinfo is None:
        raise pytest.UsageError(BAD_TEST_CLOCK.format(value=value))
    return instant


def pytest_configure(config: pytest.Config) -> None:
    global _session_travel
    if TEST_CLOCK:
        _session_travel = time_machine.travel(
            moved_clock(TEST_CLOCK, real_now=clock.now()), tick=True
        )
        _session_travel.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_travel is not None:
        _session_travel.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    if TEST_CLOCK:
        return f"clock moved by TEST_CLOCK={TEST_CLOCK}: now is {clock.now():%a %Y-%m-%d %H:%M} UTC"
    return None


@pytest.fixture
def set_clock(time_machine: Any) -> Callable[[datetime], None]:
    """Stop the product's clock at an instant for this test: ``set_clock(datetime(...))``.

    Every ``core.clock`` read (and Django's ``auto_now``) then sees that instant until the test
    moves it again; the clock is restored afterwards. Not for tests that run Kafka clients or
    subprocesses, which need the real time to pass.
    """

    def move(instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("set_clock needs an aware datetime (the product's clock is UTC)")
        time_machine.move_to(instant, tick=False)

    return move


def wait_until(
    condition: Callable[[], Any], *, timeout: float = 60, what: str = "condition"
) -> Any:
    """Poll ``condition`` until it returns a truthy value; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


@pytest.fixture(scope="session")
def services() -> None:
    """Fail the integration tests with one clear line when a service is not running."""
    try:
        preflight.require_kafka()
    except preflight.ServiceMissing as missing:
        pytest.exit(f"integration tests need Kafka: {missing}", returncode=3)


@pytest.fixture
def topic_prefix(settings: Any, services: None) -> Iterator[str]:
    """A fresh topic prefix; the test's topics are deleted afterwards, so a long-lived dev broker
    does not pile up thousands of partitions it must load on every restart."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings.STREAMING = dataclasses.replace(settings.STREAMING, topic_prefix=prefix)
    yield prefix
    kafka_admin.delete_topics_with_prefix(prefix)


class Processes:
    """Runs ``manage.py`` commands against the test database; stops them all at teardown."""

    def __init__(self, prefix: str, tmp: Path):
        self.prefix = prefix
        self.tmp = tmp
        self.running: list[subprocess.Popen[bytes]] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        db = settings.DATABASES["default"]
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                "KAFKA_BOOTSTRAP_SERVERS": ",".join(settings.KAFKA_BOOTSTRAP_SERVERS),
                "TOPIC_PREFIX": self.prefix,
                "STREAM_SESSION_TIMEOUT_MS": "6000",
                "LOG_LEVEL": "INFO",
                "METRICS_PORT": "0",
            }
        )
        env.update(extra or {})
        return env

    def start(
        self, *args: str, env: dict[str, str] | None = None, name: str = "proc"
    ) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}-{len(self.running)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.running.append(process)
        return process

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("*.log"))
        )


@pytest.fixture
def processes(topic_prefix: str, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(topic_prefix, tmp_path)
    yield procs
    procs.stop_all()
    print(procs.logs())  # shown by pytest only when the test failed


@pytest.fixture
def kafka_producer(services: None) -> Iterator[Any]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, acks="all")
    yield producer
    producer.close(timeout=10)


def send_json(
    producer: Any,
    topic: str,
    payload: Any,
    *,
    key: str | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    producer.send(topic, key=key.encode() if key else None, value=value, headers=headers or [])
