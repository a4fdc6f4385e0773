"""``manage.py raise_limits --factor F``: multiply the counterparty credit limits that
``load_reference_data`` has just loaded by F, and set the account-day notional limit to F times
its default (idempotent), for load runs (``make bench``, ``make chaos``) in their own databases.

A load run pushes a whole day's volume through 24 accounts and no custodian settles anything, so
exposure only grows: with production limits, after ~10,000 trades CREDIT_LIMIT and after ~50,000
the account-day limit would send most trades to the exception queue and the stages after
compliance would see almost nothing. Every rule still runs on every trade. The change is audited.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import F

from backoffice.audit.services import audit_record
from compliance.models import ComplianceRule
from compliance.rules.params import THRESHOLDS
from core import clock
from trades.models import Counterparty

ACCOUNT_DAY = "MAX_NOTIONAL_ACCOUNT_DAY"


class Command(BaseCommand):
    help = "Multiply credit and account-day limits (load runs only: bench and chaos databases)"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--factor", type=Decimal, default=Decimal(1000))
        parser.add_argument("--reason", default="load run: limits raised so the flow is not held")

    def handle(self, *args: Any, **options: Any) -> None:
        factor: Decimal = options["factor"]
        if factor <= 0:
            raise CommandError(f"--factor must be positive, got {factor}")
        now = clock.now()
        with transaction.atomic():
            counterparties = Counterparty.objects.update(credit_limit=F("credit_limit") * factor)
            default = THRESHOLDS[ACCOUNT_DAY]
            rules = ComplianceRule.objects.filter(code=ACCOUNT_DAY)
            rule_count = rules.update(threshold=default * factor)
            audit_record(
                actor=None,
                action="limits.raise",
                object_type="limits",
                object_id="credit_limit,MAX_NOTIONAL_ACCOUNT_DAY",
                at=now,
                after={
                    "factor": str(factor),
                    "counterparties": counterparties,
                    "rules": rule_count,
                },
                reason=options["reason"],
            )
        self.stdout.write(
            f"credit limits of {counterparties} counterparties and {rule_count} account-day"
            f" rule(s) multiplied by {factor}"
        )
