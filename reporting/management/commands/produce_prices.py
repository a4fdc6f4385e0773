"""``manage.py produce_prices``: publish a simulated price feed to ``marketdata.prices``.

Instruments and the XNYS calendar come from the reference data; prices from the deterministic
``reporting.prices.PriceFeed`` (same seed, start, interval and count: same events, same ids).
Events are enveloped like every internal event, keyed by ISIN, sent with ``acks=all`` and paced
to ``--rate`` per second. SIGINT/SIGTERM stop early; what was sent is flushed and counted.
"""

from __future__ import annotations

import signal
import time
from datetime import date, datetime, timedelta
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kafka import KafkaProducer
from kafka.errors import KafkaError

from backoffice.streaming import topics
from backoffice.streaming.command import require_services
from backoffice.streaming.envelope import Outbound, encode
from backoffice.streaming.kafka_admin import ensure_topics
from backoffice.streaming.schemas import registry
from core import clock
from reporting.prices import PriceFeed, payload
from trades.management.commands.produce_trades import default_start, simulation_reference
from trades.selectors import reference_snapshot

BAD_OPTIONS = "invalid options: {problem}"
NOT_ACKNOWLEDGED = "{failed} of {sent} prices were not acknowledged by Kafka (first error: {error})"


def _weekday(day: date) -> bool:
    return day.weekday() < 5


class Command(BaseCommand):
    help = "Publish simulated market prices to marketdata.prices"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1000, help="prices to send")
        parser.add_argument("--rate", type=float, default=0, help="prices/s; 0 = no limit")
        parser.add_argument("--seed", type=int, default=1, help="the produce_trades seed to match")
        parser.add_argument(
            "--interval", type=float, default=60, help="simulated seconds between rounds"
        )
        parser.add_argument(
            "--start",
            type=datetime.fromisoformat,
            default=None,
            help="simulated clock start, ISO 8601 with offset (default: last US open)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        if options["count"] < 0 or options["rate"] < 0 or options["seed"] < 0:
            raise CommandError(BAD_OPTIONS.format(problem="--count, --rate, --seed must be >= 0"))
        snapshot = reference_snapshot()
        calendar = snapshot.calendars.get("XNYS")
        start = options["start"] or default_start(calendar, clock.today())
        try:
            feed = PriceFeed(
                simulation_reference(snapshot).instruments,
                seed=options["seed"],
                start=start,
                interval=timedelta(seconds=options["interval"]),
                is_business_day=calendar.is_business_day if calendar else _weekday,
            )
        except (ValueError, TypeError) as error:
            raise CommandError(BAD_OPTIONS.format(problem=error)) from None
        ensure_topics([topics.MARKETDATA_PRICES])
        sent, elapsed = self._produce(feed, options["count"], options["rate"])
        self.stdout.write(
            f"sent {sent} prices to {topics.topic(topics.MARKETDATA_PRICES)} in {elapsed:.2f} s"
        )

    def _produce(self, feed: PriceFeed, count: int, rate: float) -> tuple[int, float]:
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            producer = KafkaProducer(
                bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
                client_id="produce_prices",
                acks="all",
                linger_ms=20,
            )
        except KafkaError as error:
            raise CommandError(f"cannot connect to Kafka: {error}") from None
        errors: list[BaseException] = []
        schemas, topic = registry(), topics.topic(topics.MARKETDATA_PRICES)
        started, sent = time.monotonic(), 0
        try:
            for n, tick in enumerate(feed.ticks(count)):
                if stopping:
                    break
                if rate and (ahead := started + n / rate - time.monotonic()) > 0:
                    time.sleep(ahead)  # paced against the start so jitter does not add up
                event = Outbound(
                    topic=topics.MARKETDATA_PRICES,
                    key=tick.isin,
                    schema="marketdata.prices",
                    payload=payload(tick),
                )
                encoded = encode(
                    event, registry=schemas, event_id=feed.event_id(tick), occurred_at=tick.as_of
                )
                headers = [(k, v.encode()) for k, v in encoded.headers.items()]
                future = producer.send(topic, key=encoded.key, value=encoded.value, headers=headers)
                future.add_errback(errors.append)
                sent += 1
            producer.flush()
        finally:
            producer.close(timeout=30)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if errors:
            raise CommandError(
                NOT_ACKNOWLEDGED.format(failed=len(errors), sent=sent, error=errors[0])
            )
        return sent, time.monotonic() - started
