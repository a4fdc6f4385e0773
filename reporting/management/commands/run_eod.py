"""``manage.py run_eod [--date YYYY-MM-DD]``: end of day for one business date, or every pending one.

Without ``--date`` it does what the Celery beat task does: every business date the data has
reached since the last run. Either way it is idempotent (docs/pnl.md, "End of day").
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from backoffice.streaming.command import require_services
from core import clock
from reporting.services import EodResult, eod_run_pending, eod_snapshot_create

NOTHING_PENDING = "no business date to build: no trades have reached reporting yet"


class Command(BaseCommand):
    help = "Build P&L and margin snapshots for a business date (default: every pending date)"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=date.fromisoformat, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        require_services(kafka=False)
        now = clock.now()
        day: date | None = options["date"]
        if day is not None:
            results = [eod_snapshot_create(business_date=day, now=now)]
        else:
            results = eod_run_pending(now=now)
        if not results:
            self.stdout.write(NOTHING_PENDING)
        for result in results:
            self.stdout.write(_summary(result))


def _summary(result: EodResult) -> str:
    return (
        f"{result.business_date}: {result.positions} positions, {result.accounts} accounts,"
        f" {result.margin_calls_issued} margin calls issued"
    )
