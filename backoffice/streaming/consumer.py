"""The long-lived consumer loop every ``consume_<stage>`` command runs.

poll a batch -> decode and validate -> ``store.apply_batch`` (one PostgreSQL transaction) ->
publish what the batch emitted (``emitter``) -> commit the same offsets to Kafka (advisory only,
for standard lag tooling) -> repeat.

Offsets are read from PostgreSQL when partitions are assigned. Kafka's committed offsets always
trail PostgreSQL's (they are committed after it), so even if that read fails the consumer can
only re-read messages, which the transaction then skips — never skip one.
"""

from __future__ import annotations

import cProfile
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

import psycopg
from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    reset_queries,
)
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from backoffice.streaming import metrics, otel, topics
from backoffice.streaming.emitter import Emitter, forget_published, pending_for, source
from backoffice.streaming.envelope import DecodeError, Encoded, Message, Subscription, decode
from backoffice.streaming.failpoints import failpoint
from backoffice.streaming.heartbeat import Heartbeat
from backoffice.streaming.kafka_admin import ensure_topics
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import (
    BatchOutcome,
    Handler,
    Record,
    advance_offsets,
    apply_batch,
)
from core import clock

log = logging.getLogger("backoffice.streaming")

# Lost or refused connections: retry the batch. psycopg's own classes are here too because the
# bulk writers (COPY into the outbox and staging tables) use the raw connection, where a
# terminated backend raises psycopg.errors.AdminShutdown rather than Django's wrapper.
TRANSIENT_DB = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


@dataclass(frozen=True)
class Stage:
    """What a stage contributes: a name, the topics it reads and its handler."""

    name: str
    subscriptions: Sequence[Subscription]
    handler: Handler


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Seeks newly assigned partitions to the offsets stored in PostgreSQL."""

    def __init__(self, runner: StageRunner):
        self.runner = runner

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Nothing is held between polls: every polled batch is committed before the next poll.
        log.info(
            "partitions revoked",
            extra={"stage": self.runner.stage.name, "partitions": str(revoked)},
        )

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.runner.seek_to_stored(list(assigned))


# Objects allocated between two young collections of the cycle collector (CPython's default:
# 700). A batch allocates a few hundred thousand short-lived objects, nearly none in cycles.
YOUNG_COLLECTION_EVERY = 50_000


def settle_collector() -> None:
    """Tune the cycle collector for the loop: what start-up loaded (Django, the schemas, the
    reference data) is moved out of its reach, so a full collection no longer walks it, and young
    collections run every ``YOUNG_COLLECTION_EVERY`` allocations rather than every 700.

    Cycles are still collected; only how often the collector looks changes.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)


class StageRunner:
    def __init__(self, stage: Stage, *, consumer_id: str | None = None):
        self.stage = stage
        self.group = topics.group(stage.name)
        self.config = settings.STREAMING
        self.by_topic = {topics.topic(s.topic): s for s in stage.subscriptions}
        self.stopping = False
        self.consumer: KafkaConsumer | None = None
        # Per assigned partition, the offset below which PostgreSQL knows everything is applied.
        self.applied: dict[TopicPartition, int] = {}
        self.emitter = Emitter(stage.name, self.group)
        self.heartbeat = Heartbeat(
            consumer_id or f"{socket.gethostname()}:{os.getpid()}:{stage.name}",
            stage.name,
            self.group,
        )

    # -- lifecycle -------------------------------------------------------------------------
    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info(
            "stop requested; finishing the current batch",
            extra={"stage": self.stage.name, "signal": signum},
        )
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        otel.setup(self.stage.name)
        self.consumer = self._connect()
        log.info(
            "consuming",
            extra={"stage": self.stage.name, "group": self.group, "topics": sorted(self.by_topic)},
        )
        settle_collector()
        # STREAM_PROFILE=path profiles the loop with cProfile (make bench uses it).
        profile_path = os.environ.get("STREAM_PROFILE")
        profiler = cProfile.Profile() if profile_path else None
        try:
            if profiler:
                profiler.enable()
            while not self.stopping:
                self._step()
        finally:
            if profiler and profile_path:
                profiler.disable()
                profiler.dump_stats(profile_path)
            self.consumer.close(autocommit=False)
            self._forget_published()  # so a clean stop leaves nothing to re-send
            self.emitter.close(timeout=10)
            self.heartbeat.stop()
            otel.shutdown()
            log.info("stopped", extra={"stage": self.stage.name})

    def _connect(self) -> KafkaConsumer:
        # Input topics exist before the group forms: a consumer that joins while a topic is
        # missing is assigned nothing from it and only sees it at its next metadata refresh
        # (five minutes), however soon a producer creates it.
        ensure_topics([s.topic for s in self.stage.subscriptions])
        consumer = KafkaConsumer(
            bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
            group_id=self.group,
            client_id=f"backoffice-{self.stage.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.config.batch_size,
            max_poll_interval_ms=self.config.max_poll_interval_ms,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.config.session_timeout_ms // 3),
            fetch_max_wait_ms=max(1, self.config.linger_ms),
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        consumer.subscribe(topics=sorted(self.by_topic), listener=_Rebalance(self))
        return consumer

    # -- one iteration ---------------------------------------------------------------------
    def _step(self) -> None:
        assert self.consumer is not None
        raw = self._poll()
        if raw:
            failpoint("after_poll")
            records, spans = self._traced([self._decode(r) for r in raw])
            started = time.monotonic()
            outcome = self._apply_with_retry(records)
            otel.end_spans(spans)
            metrics.BATCH_LATENCY.labels(self.stage.name).observe(time.monotonic() - started)
            metrics.BATCH_SIZE.labels(self.stage.name).observe(len(records))
            failpoint("after_commit")
            self.emitter.publish(outcome.pending)
            self._commit_to_kafka(outcome.next_offsets)
            self._count(outcome)
            for (t, p), n in outcome.next_offsets.items():
                tp = TopicPartition(t, p)
                self.applied[tp] = max(self.applied.get(tp, 0), n)
        self._resend_pending()
        if not raw:
            self._forget_published()  # a busy stage deletes them in its next batch's transaction
        positions = self._positions()
        self._pass_markers(positions)
        self.heartbeat.beat(lag=self._lag(positions), partitions=len(self.consumer.assignment()))
        self._between_batches()

    def _resend_pending(self) -> None:
        """When due (after an assignment or a failed publish), publish what is pending for the
        assigned partitions: rows a crashed owner committed but never published."""
        assert self.consumer is not None
        if not self.emitter.resend:
            return
        sources = [source(self.group, tp.topic, tp.partition) for tp in self.consumer.assignment()]
        try:
            pending = pending_for(sources, published=self.emitter.published)
        except TRANSIENT_DB as error:
            self._outbox_unavailable(error)
            return
        if self.emitter.publish(pending):
            self.emitter.resend = False

    def _forget_published(self) -> None:
        """Delete the outbox rows this process has published, outside a batch."""
        done = list(self.emitter.published)
        if not done:
            return
        try:
            forget_published(done)
        except TRANSIENT_DB as error:
            self._outbox_unavailable(error)
            return
        self.emitter.forget(done)

    def _outbox_unavailable(self, error: Exception) -> None:
        connection.close()
        log.warning(
            "database unavailable for the outbox, retrying next step: %s",
            str(error).strip().splitlines()[0],
            extra={"stage": self.stage.name},
        )

    def _between_batches(self) -> None:
        """What Django does around a request, a batch being this process's request: forget the
        queries DEBUG logged (up to 9,000, each with its array parameters written out: tens of MB
        a stage held for nothing) and drop a connection that is broken or past its age."""
        reset_queries()
        close_old_connections()

    def _poll(self) -> list[Any]:
        """Up to BATCH_SIZE records, waiting at most LINGER_MS for more once the first arrive."""
        assert self.consumer is not None
        limit, linger = self.config.batch_size, self.config.linger_ms / 1000
        batch: list[Any] = []
        deadline: float | None = None
        while len(batch) < limit and not self.stopping:
            timeout = 500 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            try:
                polled = self.consumer.poll(timeout_ms=timeout, max_records=limit - len(batch))
            except KafkaError as error:
                metrics.FAILED.labels(self.stage.name, "kafka").inc()
                log.warning(
                    "Kafka poll failed, retrying: %s", error, extra={"stage": self.stage.name}
                )
                time.sleep(1)
                return batch
            for part in polled.values():
                batch.extend(part)
            if deadline is None:
                if not batch:
                    return batch
                deadline = time.monotonic() + linger
            if time.monotonic() >= deadline:
                break
        return batch

    def _traced(self, records: list[Record]) -> tuple[list[Record], list[Any]]:
        """Records whose sampled messages now carry their processing span's context."""
        decoded = [r.message for r in records if r.message is not None]
        traced, spans = otel.start_spans(self.stage.name, decoded)
        if not spans:
            return records, spans
        replacement = iter(traced)
        return [
            replace(r, message=next(replacement)) if r.message is not None else r for r in records
        ], spans

    def _decode(self, raw: Any) -> Record:
        subscription = self.by_topic[raw.topic]
        headers = list(raw.headers or [])
        message: Message | None = None
        error: DecodeError | None = None
        try:
            message = decode(
                subscription=subscription,
                partition=raw.partition,
                offset=raw.offset,
                key=raw.key,
                value=raw.value,
                headers=headers,
                registry=registry(),
            )
        except DecodeError as failure:
            error = failure
        # Built once with its outcome: a dataclasses.replace per record was 2 % of a stage.
        return Record(
            topic=subscription.topic,
            partition=raw.partition,
            offset=raw.offset,
            key=raw.key,
            value=raw.value,
            headers=headers,
            message=message,
            error=error,
        )

    def _apply(self, records: Sequence[Record]) -> BatchOutcome:
        published = list(self.emitter.published)
        outcome = apply_batch(
            stage=self.stage.name,
            group=self.group,
            handler=self.stage.handler,
            records=records,
            now=clock.now(),
            published=published,
        )
        self.emitter.forget(published)
        return outcome

    def _apply_with_retry(self, records: Sequence[Record]) -> BatchOutcome:
        """Apply a batch; transient failures retry with backoff, a failing message is isolated."""
        delay = 0.1
        while True:
            try:
                return self._apply(records)
            except TRANSIENT_DB as error:
                metrics.FAILED.labels(self.stage.name, "database").inc()
                log.warning(
                    "database unavailable, retrying batch in %.1fs: %s",
                    delay,
                    str(error).strip().splitlines()[0],
                    extra={"stage": self.stage.name},
                )
                connection.close()
                time.sleep(delay)
                delay = min(delay * 2, self.config.retry_max_seconds)
            except Exception as error:
                metrics.FAILED.labels(self.stage.name, "handler").inc()
                if len(records) == 1:
                    return self._dead_letter_failure(records[0], error)
                log.warning(
                    "batch failed (%r); applying its messages one by one",
                    error,
                    extra={"stage": self.stage.name},
                )
                return _merge([self._apply_with_retry([r]) for r in records])

    def _dead_letter_failure(self, record: Record, error: Exception) -> BatchOutcome:
        message = record.message
        log.exception(
            "message dead-lettered after the stage raised",
            extra={
                "stage": self.stage.name,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "trade_id": message.correlation_id if message else None,
                "trace_id": message.trace.trace_id if message else None,
            },
        )
        reason = f"stage {self.stage.name} raised {type(error).__name__}: {error}"
        failed = replace(record, message=None, error=DecodeError(type(error).__name__, reason))
        return self._apply_with_retry([failed])

    def _positions(self) -> dict[TopicPartition, int]:
        """The consumer's position on each assigned partition (unknown ones left out: e.g.
        while the broker restarts)."""
        assert self.consumer is not None
        positions: dict[TopicPartition, int] = {}
        for tp in self.consumer.assignment():
            try:
                position = self.consumer.position(tp, timeout_ms=100)
            except KafkaError:
                continue
            if position is not None:
                positions[tp] = position
        return positions

    def _pass_markers(self, positions: dict[TopicPartition, int]) -> None:
        """Record offsets the consumer moved past without a record to apply.

        The relay publishes in Kafka transactions, so a partition ends with a commit marker that
        ``read_committed`` consumers skip and never see (aborted records are skipped the same
        way). The consumer's position is past them, the stored offset is not, and the partition
        would show a lag of one for ever. Every record below the position was returned by a poll
        and applied (or found already applied) before this runs, so raising the stored offset to
        the position is safe; ``advance_offsets`` never lowers it under the partition's next owner.
        """
        moved = {
            (tp.topic, tp.partition): position
            for tp, position in positions.items()
            if position > self.applied.get(tp, 0)
        }
        if not moved:
            return
        try:
            advance_offsets(self.group, moved)
        except TRANSIENT_DB:
            connection.close()
            return  # the next step tries again
        for (t, p), n in moved.items():
            self.applied[TopicPartition(t, p)] = n
        self._commit_to_kafka(moved)

    def _commit_to_kafka(self, next_offsets: dict[tuple[str, int], int]) -> None:
        assert self.consumer is not None
        offsets = {
            TopicPartition(t, p): OffsetAndMetadata(n, "", -1) for (t, p), n in next_offsets.items()
        }
        try:
            self.consumer.commit_async(offsets)
        except KafkaError as error:  # advisory: PostgreSQL holds the truth
            log.info("advisory Kafka commit failed: %s", error, extra={"stage": self.stage.name})

    def seek_to_stored(self, assigned: list[TopicPartition]) -> None:
        assert self.consumer is not None
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    'SELECT topic, partition, next_offset FROM streaming_consumeroffset WHERE "group" = %s',
                    [self.group],
                )
                stored = {(t, p): o for t, p, o in cursor.fetchall()}
        except TRANSIENT_DB as error:
            connection.close()
            log.warning(
                "could not read stored offsets (%s); resuming from Kafka's, which trail them", error
            )
            return
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
            self.applied[tp] = offset or 0
        self.emitter.resend = True  # what a crashed owner committed but never published
        self.heartbeat.beat(lag=0, partitions=len(assigned), force=True)
        log.info(
            "partitions assigned",
            extra={"stage": self.stage.name, "partitions": str(sorted(assigned))},
        )

    def _lag(self, positions: dict[TopicPartition, int]) -> int:
        assert self.consumer is not None
        lag = 0
        for tp, position in positions.items():
            high = self.consumer.highwater(tp)
            if high is not None:
                lag += max(0, high - position)
        metrics.LAG.labels(self.stage.name).set(lag)
        return lag

    def _count(self, outcome: BatchOutcome) -> None:
        name = self.stage.name
        metrics.PROCESSED.labels(name).inc(outcome.applied)
        metrics.SKIPPED.labels(name).inc(outcome.skipped)
        metrics.DEAD_LETTERED.labels(name).inc(outcome.dead_lettered)
        metrics.EMITTED.labels(name).inc(outcome.emitted)
        self.heartbeat.add(processed=outcome.applied, dead_lettered=outcome.dead_lettered)


def _merge(outcomes: list[BatchOutcome]) -> BatchOutcome:
    next_offsets: dict[tuple[str, int], int] = {}
    pending: dict[int, list[Encoded]] = {}
    for outcome in outcomes:
        for key, value in outcome.next_offsets.items():
            next_offsets[key] = max(next_offsets.get(key, 0), value)
        pending.update(outcome.pending)
    return BatchOutcome(
        applied=sum(o.applied for o in outcomes),
        skipped=sum(o.skipped for o in outcomes),
        dead_lettered=sum(o.dead_lettered for o in outcomes),
        emitted=sum(o.emitted for o in outcomes),
        next_offsets=next_offsets,
        pending=sorted(pending.items()),
    )
