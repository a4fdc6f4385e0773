"""``manage.py consume_reporting``: live positions and P&L from validated trades and prices."""

from __future__ import annotations

from typing import Any

from backoffice.streaming.command import StageCommand
from backoffice.streaming.consumer import Stage
from reporting.stage import STAGE


class Command(StageCommand):
    help = "Keep positions and P&L from trades.validated and marketdata.prices"

    def get_stage(self, **options: Any) -> Stage:
        return STAGE
