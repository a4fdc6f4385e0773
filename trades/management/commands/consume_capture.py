"""``manage.py consume_capture``: trades.executed -> trades.captured."""

from typing import Any

from backoffice.streaming.command import StageCommand
from backoffice.streaming.consumer import Stage
from trades.stage import CAPTURE


class Command(StageCommand):
    help = "Capture executed trades: normalise, enrich, version NEW/AMEND/CANCEL"

    def get_stage(self, **options: Any) -> Stage:
        return CAPTURE
