"""``manage.py streaming_status``: each consumer group's lag and each consumer's heartbeat."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from backoffice.streaming.command import require_services
from backoffice.streaming.lag import group_lag
from backoffice.streaming.models import ConsumerHeartbeat
from backoffice.streaming.selectors import STALE_AFTER, outbox_backlog
from core import clock


class Command(BaseCommand):
    help = "Show consumer lag per group (Kafka end offsets minus offsets applied in PostgreSQL)"

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        lag = group_lag()
        now = clock.now()
        for beat in ConsumerHeartbeat.objects.order_by("stage", "consumer_id"):
            state = "up" if now - beat.last_seen < STALE_AFTER else "stale"
            self.stdout.write(
                f"{'consumer ' + beat.stage:<24} {state:<5} pid {beat.pid} processed {beat.processed}"
                f" dead-lettered {beat.dead_lettered}"
            )
        for group, value in sorted(lag.items()):
            self.stdout.write(f"{'lag ' + group.rsplit('.', 1)[-1]:<24} {value}")
        self.stdout.write(f"{'outbox backlog':<24} {outbox_backlog()}")
