"""The one base class every ``consume_<stage>`` command is: preflight, metrics, run the loop."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from prometheus_client import start_http_server

from backoffice import preflight
from backoffice.streaming.consumer import Stage, StageRunner


def serve_metrics(port: int) -> None:
    if port:
        start_http_server(port, addr="127.0.0.1")
        logging.getLogger("backoffice.streaming").info(
            "metrics on http://127.0.0.1:%d/metrics", port
        )


def require_services(*, kafka: bool = True) -> None:
    """Exit with one line (no traceback) when PostgreSQL or Kafka is missing."""
    try:
        preflight.require_postgres()
        if kafka:
            preflight.require_kafka()
    except preflight.ServiceMissing as missing:
        raise CommandError(str(missing), returncode=3) from None


class StageCommand(BaseCommand):
    """Runs one stage until SIGTERM/SIGINT; then it finishes its batch, commits and exits 0."""

    help = "Run a stage consumer"

    def get_stage(self, **options: Any) -> Stage:
        raise NotImplementedError

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--metrics-port", type=int, default=settings.STREAMING.metrics_port)

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        stage = self.get_stage(**options)
        serve_metrics(options["metrics_port"])
        StageRunner(stage).run()
