"""``manage.py accrue_fail_penalties --as-of DATE``: the daily CSDR-style penalty accrual."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand

from backoffice.streaming.command import require_services
from core import clock
from settlement.services import fail_penalties_accrue


class Command(BaseCommand):
    help = "Accrue the daily cash penalty of every fail up to a date (idempotent)"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--as-of", type=date.fromisoformat, help="accrue through this date (default: today)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_services(kafka=False)
        now = clock.now()
        result = fail_penalties_accrue(as_of=options["as_of"] or now.date(), now=now)
        self.stdout.write(
            f"{result.as_of}: {result.created} penalty day(s) accrued over {result.fails} fail(s)"
        )
        for instruction_id in result.missing_rate:
            self.stderr.write(f"no penalty rate for the fail of {instruction_id}: configure one")
        if result.uncovered:
            self.stderr.write(
                f"{len(result.uncovered)} fail(s) skipped, their failing days are past the loaded"
                f" holidays: {', '.join(result.uncovered)}"
            )
        # One line per calendar: every fail on it needs the same holidays loaded.
        for message in result.uncovered_calendars.values():
            self.stderr.write(message)
