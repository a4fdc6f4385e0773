"""``manage.py consume_compliance``: runs the compliance stage until SIGTERM/SIGINT."""

from __future__ import annotations

from typing import Any

from backoffice.streaming.command import StageCommand
from backoffice.streaming.consumer import Stage
from compliance.stage import STAGE


class Command(StageCommand):
    help = "Evaluate captured trades against the compliance rules (trades.captured -> trades.validated)"

    def get_stage(self, **options: Any) -> Stage:
        return STAGE
