"""``manage.py consume --stage package.module:attribute`` runs any Stage object."""

from __future__ import annotations

import importlib
from typing import Any

from django.core.management.base import CommandError

from backoffice.streaming.command import StageCommand
from backoffice.streaming.consumer import Stage


class Command(StageCommand):
    help = "Run the Stage found at --stage module:attribute"

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("--stage", required=True, help="dotted.module:attribute of a Stage")

    def get_stage(self, **options: Any) -> Stage:
        module_name, _, attribute = options["stage"].partition(":")
        try:
            stage = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise CommandError(f"--stage {options['stage']}: {error}") from None
        if not isinstance(stage, Stage):
            raise CommandError(f"--stage {options['stage']} is not a Stage")
        return stage
