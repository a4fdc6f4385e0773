"""Consumer lag from the source of truth: Kafka end offsets minus offsets applied in PostgreSQL."""

from __future__ import annotations

from collections import defaultdict

from backoffice.streaming.kafka_admin import end_offsets
from backoffice.streaming.models import ConsumerOffset


def group_lag(prefix: str = "") -> dict[str, int]:
    """Messages not yet applied, per consumer group (groups starting with ``prefix``)."""
    stored = list(ConsumerOffset.objects.filter(group__startswith=prefix))
    ends = end_offsets({o.topic for o in stored})
    lag: dict[str, int] = defaultdict(int)
    for offset in stored:
        lag[offset.group] += max(
            0, ends.get((offset.topic, offset.partition), 0) - offset.next_offset
        )
    return dict(lag)
