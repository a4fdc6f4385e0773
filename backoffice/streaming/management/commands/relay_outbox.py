"""``manage.py relay_outbox``: publish the outbox to Kafka until SIGTERM."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from backoffice.streaming.command import require_services, serve_metrics
from backoffice.streaming.relay import Relay


class Command(BaseCommand):
    help = "Publish outbox rows to Kafka (idempotent producer), at least once, in order"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--metrics-port", type=int, default=settings.STREAMING.metrics_port)

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        serve_metrics(options["metrics_port"])
        Relay().run()
