"""Runtime tables: consumed offsets, the inbox, the outbox, dead letters and the schema registry.

Offsets live here, not in Kafka: a stage's effects, the offsets it consumed and the events it
emits are written in one PostgreSQL transaction, so a crash can never separate them.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q


class ConsumerOffset(models.Model):
    """The next offset a consumer group will apply, per partition (Kafka's own is advisory)."""

    group = models.CharField(max_length=200)
    topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    next_offset = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "topic", "partition"], name="uniq_consumer_offset"
            ),
            models.CheckConstraint(condition=Q(next_offset__gte=0), name="offset_non_negative"),
            models.CheckConstraint(condition=Q(partition__gte=0), name="partition_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.group} {self.topic}[{self.partition}]@{self.next_offset}"


class ProcessedEvent(models.Model):
    """Inbox: every event id a consumer group has applied, so a redelivered copy is skipped.

    Only for events without an ``origin`` (inbound trades, service re-emits, replayed dead
    letters): events a stage derives from a consumed record are de-duplicated by ``InboxMark``.
    """

    group = models.CharField(max_length=200)
    event_id = models.UUIDField()
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "event_id"], name="uniq_processed_event")
        ]

    def __str__(self) -> str:
        return f"{self.group} {self.event_id}"


class InboxMark(models.Model):
    """Inbox by high-water mark: the last position applied from one source on one partition.

    An event a stage emits from a consumed record carries an ``origin`` header, ``source`` plus a
    position ``(source_offset, source_seq)``. The source is the emitting group's input partition;
    batches of one input partition are serialised by its offset row lock, the outbox keeps their
    order and the transactional relay publishes whole batches in that order, so on any partition
    the positions of one source only grow, and a copy at or below the mark is a duplicate. One
    row per (group, partition, source) replaces one inbox row per event.
    """

    group = models.CharField(max_length=200)
    topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    source = models.CharField(max_length=500)
    source_offset = models.BigIntegerField()
    source_seq = models.IntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "topic", "partition", "source"], name="uniq_inbox_mark"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.group} {self.topic}[{self.partition}] {self.source}"
            f"@{self.source_offset}.{self.source_seq}"
        )


class OutboxEvent(models.Model):
    """An event written with the effects that caused it; the relay publishes and deletes it."""

    topic = models.CharField(max_length=249)
    key = models.BinaryField(null=True)
    value = models.BinaryField()
    headers = models.JSONField(default=dict)
    event_id = models.UUIDField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event_id"], name="uniq_outbox_event")]

    def __str__(self) -> str:
        return f"{self.topic} {self.event_id}"


class OutboxBatch(models.Model):
    """Everything one stage batch emitted, in one row, written in the batch's transaction.

    The stage publishes it itself right after the commit (``emitter``) and deletes it in its next
    transaction; a row left behind by a crash is published again by whichever consumer is next
    assigned one of its ``sources`` (``group|topic|partition`` of the batch's input). One row a
    batch instead of one a event: the outbox costs one insert and one delete per thousand events.
    """

    sources = ArrayField(models.CharField(max_length=500))
    events = models.BinaryField(help_text="emitter.pack_events of the batch's events, in order")
    event_count = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(event_count__gt=0), name="outbox_batch_not_empty")
        ]

    def __str__(self) -> str:
        return f"batch {self.pk}: {self.event_count} event(s) from {', '.join(self.sources)}"


class DeadLetter(models.Model):
    """A message a stage could not apply, kept with its original bytes and the reason."""

    class Status(models.TextChoices):
        NEW = "NEW", "New"
        REPLAYED = "REPLAYED", "Replayed"
        DISCARDED = "DISCARDED", "Discarded"

    stage = models.CharField(max_length=100)
    group = models.CharField(max_length=200)
    source_topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    key = models.BinaryField(null=True)
    value = models.BinaryField()
    headers = models.JSONField(default=dict)
    error_class = models.CharField(max_length=100)
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replay_count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "source_topic", "partition", "offset"], name="uniq_dead_letter"
            ),
            models.CheckConstraint(
                condition=Q(status="NEW") | Q(replayed_at__isnull=False) | Q(status="DISCARDED"),
                name="replayed_has_time",
            ),
            models.CheckConstraint(condition=Q(replay_count__gte=0), name="replay_count_positive"),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="dead_letter_status_idx")]

    def __str__(self) -> str:
        return f"{self.source_topic}[{self.partition}]@{self.offset}: {self.error_class}"


class RegisteredSchema(models.Model):
    """A versioned JSON Schema from ``schemas/``, registered with an id at migrate time."""

    name = models.CharField(max_length=200)
    version = models.IntegerField()
    fingerprint = models.CharField(max_length=64)
    body = models.JSONField()
    registered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="uniq_schema_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="schema_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class ConsumerHeartbeat(models.Model):
    """Each running consumer's last sign of life and counters, for status and the dashboard."""

    consumer_id = models.CharField(max_length=200, unique=True)
    stage = models.CharField(max_length=100)
    group = models.CharField(max_length=200)
    pid = models.IntegerField()
    host = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    processed = models.BigIntegerField(default=0)
    dead_lettered = models.BigIntegerField(default=0)
    lag = models.BigIntegerField(default=0)
    partitions = models.IntegerField(default=0, help_text="partitions assigned at the last beat")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(last_seen__gte=F("started_at")), name="seen_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.consumer_id} ({self.stage})"
