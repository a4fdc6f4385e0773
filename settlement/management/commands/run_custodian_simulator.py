"""``manage.py run_custodian_simulator``: a custodian/CSD stand-in, deterministic for a seed.

Without a date option it runs as a consumer of settlement.instructions (answering MATCHED).
``--close-day DATE`` runs that business date's settlement (statuses out) and exits;
``--statement-date DATE`` publishes that date's end-of-day statements and exits. Both can be
given: the day closes first.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import CommandError

from backoffice.streaming.command import StageCommand, require_services
from backoffice.streaming.consumer import Stage
from core import clock
from settlement.policy import SimulatorRates
from settlement.services import custodian_day_close, custodian_statements_publish
from settlement.stages import custodian_simulator

DEFAULTS = SimulatorRates()


def _rate(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CommandError(f"a rate must be a number between 0 and 1, got {text!r}") from None
    if not Decimal(0) <= value <= Decimal(1):
        raise CommandError(f"a rate must be between 0 and 1, got {text}")
    return value


class Command(StageCommand):
    help = "Simulate the custodian: match instructions, settle or fail them, send statements"

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("--seed", type=int, default=1, help="same seed, same answers")
        parser.add_argument("--ssi-mismatch-rate", type=_rate, default=DEFAULTS.ssi_mismatch)
        parser.add_argument("--fail-rate", type=_rate, default=DEFAULTS.fail)
        parser.add_argument("--partial-rate", type=_rate, default=DEFAULTS.partial)
        parser.add_argument("--partial-fraction", type=_rate, default=DEFAULTS.partial_fraction)
        parser.add_argument("--recovery-rate", type=_rate, default=DEFAULTS.recovery)
        parser.add_argument("--discrepancy-rate", type=_rate, default=DEFAULTS.discrepancy)
        parser.add_argument("--close-day", type=date.fromisoformat, help="settle this date, exit")
        parser.add_argument(
            "--statement-date", type=date.fromisoformat, help="publish this date's statements, exit"
        )

    def rates(self, options: dict[str, Any]) -> SimulatorRates:
        try:
            return SimulatorRates(
                ssi_mismatch=options["ssi_mismatch_rate"],
                fail=options["fail_rate"],
                partial=options["partial_rate"],
                partial_fraction=options["partial_fraction"],
                recovery=options["recovery_rate"],
                discrepancy=options["discrepancy_rate"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None

    def get_stage(self, **options: Any) -> Stage:
        return custodian_simulator(options["seed"], self.rates(options))

    def handle(self, *args: Any, **options: Any) -> None:
        if options["close_day"] is None and options["statement_date"] is None:
            super().handle(*args, **options)
            return
        require_services(kafka=False)  # the outbox relay publishes what these write
        rates, seed = self.rates(options), options["seed"]
        now = clock.now()
        if options["close_day"] is not None:
            day = custodian_day_close(
                business_date=options["close_day"], seed=seed, rates=rates, now=now
            )
            verb = "was already closed" if day.already_closed else "closed"
            self.stdout.write(
                f"{day.business_date} {verb}: {day.settled} settled,"
                f" {day.partially_settled} partially settled, {day.failed} failed"
            )
        if options["statement_date"] is not None:
            result = custodian_statements_publish(
                as_of=options["statement_date"], seed=seed, rate=rates.discrepancy, now=now
            )
            self.stdout.write(
                f"{result.as_of} statements revision {result.revision}: {result.statements}"
                f" account(s), {result.injected} injected discrepancy(ies)"
            )
