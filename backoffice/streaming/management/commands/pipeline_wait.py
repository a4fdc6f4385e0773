"""``manage.py pipeline_wait``: block until every consumer group has caught up and the outbox is empty."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backoffice.streaming.command import require_services
from backoffice.streaming.lag import group_lag
from backoffice.streaming.selectors import outbox_backlog


class Command(BaseCommand):
    help = "Wait until consumer lag is 0 for every group and the outbox is empty (or time out)"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=300.0)
        parser.add_argument(
            "--quiet-for", type=float, default=2.0, help="seconds the pipeline must stay idle"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        deadline = time.monotonic() + options["timeout"]
        idle_since: float | None = None
        last_report = 0.0
        while True:
            lag, backlog = group_lag(), outbox_backlog()
            behind = sum(lag.values()) + backlog
            now = time.monotonic()
            if behind == 0:
                idle_since = idle_since or now
                if now - idle_since >= options["quiet_for"]:
                    self.stdout.write("pipeline idle: lag 0 in every group, outbox empty")
                    return
            else:
                idle_since = None
            if now - last_report > 5:
                detail = ", ".join(
                    f"{g.rsplit('.', 1)[-1]} {n}" for g, n in sorted(lag.items()) if n
                )
                self.stdout.write(
                    f"waiting: outbox {backlog}" + (f", lag {detail}" if detail else "")
                )
                last_report = now
            if now > deadline:
                raise CommandError(
                    f"pipeline still behind after {options['timeout']:.0f}s: {behind} message(s)"
                )
            time.sleep(0.5)
