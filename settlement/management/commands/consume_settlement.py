"""``manage.py consume_settlement``: validated trades and custodian statuses -> instructions."""

from __future__ import annotations

from typing import Any

from backoffice.streaming.command import StageCommand
from backoffice.streaming.consumer import Stage
from settlement.stages import SETTLEMENT


class Command(StageCommand):
    help = "Net validated trades into settlement instructions and apply custodian statuses"

    def get_stage(self, **options: Any) -> Stage:
        return SETTLEMENT
