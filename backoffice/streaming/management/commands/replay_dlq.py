"""``manage.py replay_dlq``: re-drive dead letters to their source topics after a fix."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backoffice.streaming.command import require_services
from backoffice.streaming.models import DeadLetter
from backoffice.streaming.services import dead_letter_replay
from core import clock


class Command(BaseCommand):
    help = "Replay dead letters (status NEW) to their source topic; each is applied exactly once"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="dead letter ids (default: filters)")
        parser.add_argument("--stage", help="only dead letters of this stage")
        parser.add_argument("--error-class", help="only dead letters with this error class")
        parser.add_argument(
            "--all", action="store_true", help="every NEW dead letter matching the filters"
        )
        parser.add_argument("--dry-run", action="store_true", help="list, do not replay")

    def handle(self, *args: Any, **options: Any) -> None:
        require_services(kafka=False)
        letters = DeadLetter.objects.filter(status=DeadLetter.Status.NEW).order_by("id")
        if options["ids"]:
            letters = letters.filter(pk__in=options["ids"])
        elif not options["all"] and not options["stage"] and not options["error_class"]:
            raise CommandError(
                "name dead letter ids, or filter with --stage/--error-class, or pass --all"
            )
        if options["stage"]:
            letters = letters.filter(stage=options["stage"])
        if options["error_class"]:
            letters = letters.filter(error_class=options["error_class"])
        replayed = 0
        for letter in letters.iterator():
            if options["dry_run"]:
                self.stdout.write(
                    f"{letter.pk} {letter.source_topic}[{letter.partition}]@{letter.offset} {letter.error_class}: {letter.reason}"
                )
                continue
            replayed += dead_letter_replay(dead_letter_id=letter.pk, now=clock.now())
        if not options["dry_run"]:
            self.stdout.write(f"replayed {replayed} dead letter(s)")
