"""``manage.py ensure_topics``: create every platform topic and its dead-letter topic."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from backoffice.streaming.command import require_services
from backoffice.streaming.kafka_admin import ALL_TOPICS, ensure_topics


class Command(BaseCommand):
    help = "Create the platform's topics (and .dlq topics) that are missing"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--partitions", type=int, default=None)
        parser.add_argument("--replication", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        created = ensure_topics(
            ALL_TOPICS, partitions=options["partitions"], replication=options["replication"]
        )
        self.stdout.write(
            f"created {len(created)} topic(s)" + (f": {', '.join(created)}" if created else "")
        )
