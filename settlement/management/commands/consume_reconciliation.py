"""``manage.py consume_reconciliation``: custodian statements -> breaks."""

from __future__ import annotations

from typing import Any

from backoffice.streaming.command import StageCommand
from backoffice.streaming.consumer import Stage
from settlement.stages import RECONCILIATION


class Command(StageCommand):
    help = "Reconcile custodian statements against the settled books and maintain breaks"

    def get_stage(self, **options: Any) -> Stage:
        return RECONCILIATION
