"""``manage.py produce_trades``: publish simulated executions to ``trades.executed``.

The reference data comes from PostgreSQL (``trades.selectors``); the messages from the
deterministic ``trades.simulator`` (same seed, count and start: same bytes). Messages are keyed by
account so one account's trades stay in order on one partition, sent with ``acks=all`` and
rate-limited to ``--rate`` messages per second. SIGINT/SIGTERM stop the loop early; whatever was
sent is flushed and counted in the summary.
"""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kafka import KafkaProducer
from kafka.errors import KafkaError
from tqdm import tqdm

from backoffice.streaming import topics
from backoffice.streaming.command import require_services
from backoffice.streaming.kafka_admin import ensure_topics
from core import clock
from trades.calendar import MarketCalendar
from trades.models import Account, Counterparty, Instrument
from trades.selectors import ReferenceSnapshot, reference_snapshot
from trades.simulator import (
    SimConfig,
    SimCounterparty,
    SimInstrument,
    SimReference,
    TradeKind,
    TradeSimulator,
)

NO_REFERENCE_DATA = (
    "no active instruments, accounts or counterparties: run "
    "`python manage.py load_reference_data` first"
)
BAD_OPTIONS = "invalid options: {problem}"
NOT_ACKNOWLEDGED = (
    "{failed} of {sent} messages were not acknowledged by Kafka (first error: {error})"
)
# A US session; the simulated clock spreads a run over it (one message a second at most).
SESSION = timedelta(hours=6, minutes=30)
SESSION_OPEN_UTC = (14, 30)


def simulation_reference(snapshot: ReferenceSnapshot) -> SimReference:
    """Active instruments, accounts and counterparties, sorted so the order never varies."""
    settles_in: defaultdict[str, set[str]] = defaultdict(set)
    for counterparty, mic, _currency in snapshot.ssis:
        settles_in[counterparty].add(mic)
    instruments = tuple(
        SimInstrument(
            isin=i.isin,
            currency=i.currency,
            market=i.market.mic,
            tick_size=i.tick_size,
            reference_price=i.reference_price,
            asset_class=i.asset_class,
        )
        for _, i in sorted(snapshot.instruments.items())
        if i.status == Instrument.Status.ACTIVE
    )
    accounts = tuple(
        code for code, a in sorted(snapshot.accounts.items()) if a.status == Account.Status.ACTIVE
    )
    counterparties = tuple(
        SimCounterparty(code, frozenset(settles_in[code]))
        for code, c in sorted(snapshot.counterparties.items())
        if c.status == Counterparty.Status.ACTIVE and settles_in[code]
    )
    if not instruments or not accounts or not counterparties:
        raise CommandError(NO_REFERENCE_DATA)
    try:
        return SimReference(
            instruments, accounts, counterparties, calendars=dict(snapshot.calendars)
        )
    except ValueError as error:
        raise CommandError(BAD_OPTIONS.format(problem=error)) from None


def default_start(calendar: MarketCalendar | None, today: date, days_after: int = 0) -> datetime:
    """The US open of the latest business day on or before ``today`` (the business date), or of
    the business day ``days_after`` business days after that one: later for a load run's later
    passes, earlier (negative) for the demo's trades that have settled by the business date."""

    if calendar is None:  # no reference data for the market: weekends alone close it
        calendar = MarketCalendar("XNYS", frozenset(), settlement_cycle=0)
    day = calendar.add_business_days(calendar.business_day_on_or_before(today), days_after)
    hour, minute = SESSION_OPEN_UTC
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def mean_gap(count: int) -> timedelta:
    return min(timedelta(seconds=1), max(timedelta(microseconds=100), SESSION / max(count, 1)))


class Command(BaseCommand):
    help = "Publish simulated executed trades to trades.executed"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1000, help="messages to send")
        parser.add_argument("--rate", type=float, default=0, help="messages/s; 0 = no limit")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--amend-share", type=float, default=0.05)
        parser.add_argument("--cancel-share", type=float, default=0.02)
        parser.add_argument("--malformed-share", type=float, default=0.0)
        parser.add_argument("--invalid-share", type=float, default=0.0)
        parser.add_argument("--topic", default=topics.TRADES_EXECUTED, help="logical topic name")
        parser.add_argument(
            "--start",
            type=datetime.fromisoformat,
            default=None,
            help="simulated clock start, ISO 8601 with offset (default: the business date's US"
            " open)",
        )
        parser.add_argument(
            "--business-day",
            type=int,
            default=0,
            help="without --start, trade this many business days after the business date"
            " (negative: before it, so the trades have settled by the business date)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        if options["count"] < 0 or options["rate"] < 0:
            raise CommandError(BAD_OPTIONS.format(problem="--count and --rate must be >= 0"))
        snapshot = reference_snapshot()
        reference = simulation_reference(snapshot)
        start = options["start"] or default_start(
            snapshot.calendars.get("XNYS"), clock.today(), options["business_day"]
        )
        try:
            config = SimConfig(
                seed=options["seed"],
                start=start,
                amend_share=options["amend_share"],
                cancel_share=options["cancel_share"],
                malformed_share=options["malformed_share"],
                invalid_share=options["invalid_share"],
                mean_gap=mean_gap(options["count"]),
            )
        except ValueError as error:
            raise CommandError(BAD_OPTIONS.format(problem=error)) from None
        topic = topics.topic(options["topic"])
        ensure_topics([options["topic"]])
        self._produce(TradeSimulator(reference, config), topic, options["count"], options["rate"])

    def _produce(self, simulator: TradeSimulator, topic: str, count: int, rate: float) -> None:
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            producer = KafkaProducer(
                bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
                client_id="produce_trades",
                acks="all",
                linger_ms=20,
                batch_size=256 * 1024,
            )
        except KafkaError as error:
            raise CommandError(f"cannot connect to Kafka: {error}") from None
        errors: list[BaseException] = []
        kinds: Counter[TradeKind] = Counter()
        started = time.monotonic()
        try:
            with tqdm(total=count, unit="msg", file=sys.stderr, mininterval=0.5) as bar:
                for n, message in enumerate(simulator.generate(count)):
                    if stopping:
                        break
                    if rate:
                        # pace against the start, not the previous send, so jitter doesn't add up
                        ahead = started + n / rate - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
                    future = producer.send(topic, key=message.key.encode(), value=message.value)
                    future.add_errback(errors.append)
                    kinds[message.kind] += 1
                    bar.update(1)
            producer.flush()
        finally:
            producer.close(timeout=30)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        elapsed = time.monotonic() - started
        sent = sum(kinds.values())
        if errors:
            raise CommandError(
                NOT_ACKNOWLEDGED.format(failed=len(errors), sent=sent, error=errors[0])
            )
        by_kind = ", ".join(f"{kind} {kinds[kind]}" for kind in TradeKind)
        self.stdout.write(
            f"sent {sent} messages to {topic} in {elapsed:.2f} s "
            f"({sent / elapsed if elapsed else 0:.0f} msg/s): {by_kind}"
        )
