"""Per-stage Prometheus metrics, exposed on /metrics by the web app and by each consumer."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PROCESSED = Counter("stage_messages_processed_total", "Messages applied", ["stage"])
SKIPPED = Counter(
    "stage_messages_skipped_total", "Redelivered messages skipped (already applied)", ["stage"]
)
DEAD_LETTERED = Counter(
    "stage_messages_dead_lettered_total", "Messages sent to the dead-letter topic", ["stage"]
)
EMITTED = Counter("stage_events_emitted_total", "Events written to the outbox", ["stage"])
FAILED = Counter(
    "stage_batch_failures_total", "Batch attempts that failed and were retried", ["stage", "kind"]
)
BATCH_LATENCY = Histogram(
    "stage_batch_seconds",
    "Time to apply one batch in PostgreSQL",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "stage_batch_messages",
    "Messages per batch",
    ["stage"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
LAG = Gauge("stage_consumer_lag", "Messages behind the end of the assigned partitions", ["stage"])
PUBLISHED = Counter(
    "stage_events_published_total", "Events a stage published to Kafka itself", ["stage"]
)
PUBLISH_FAILED = Counter(
    "stage_publish_failures_total",
    "Publishes that failed and are re-sent at the next step",
    ["stage"],
)
RELAY_PUBLISHED = Counter("relay_events_published_total", "Outbox events published to Kafka")
RELAY_ERRORS = Counter(
    "relay_errors_total", "Relay attempts that failed and were retried", ["kind"]
)
