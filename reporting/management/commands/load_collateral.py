"""``manage.py load_collateral``: seed opening collateral from ``reporting/data/collateral.json``.

Creates the balances that do not exist yet, each through ``services.collateral_set`` (audited);
a balance that exists, whoever set it, is left alone. Running it twice changes nothing.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.money import UnknownCurrencyError
from backoffice.streaming.command import require_services
from core import clock
from reporting.models import CollateralBalance
from reporting.services import collateral_set

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "data" / "collateral.json"
BAD_FILE = "collateral file {path}: {problem}"
SEEDED = "seeded from {name}"


class Command(BaseCommand):
    help = "Create the opening collateral balances that do not exist yet"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=DEFAULT_FILE)

    def handle(self, *args: Any, **options: Any) -> None:
        require_services(kafka=False)
        path: Path = options["file"]
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["collateral"]
            wanted = {r["account"]: (Decimal(r["amount"]), r["currency"]) for r in rows}
        except (OSError, ValueError, KeyError, TypeError, InvalidOperation) as error:
            raise CommandError(BAD_FILE.format(path=path, problem=error)) from None
        existing = set(CollateralBalance.objects.values_list("account", flat=True))
        now = clock.now()
        created = 0
        for account, (amount, currency) in sorted(wanted.items()):
            if account in existing:
                continue
            try:
                collateral_set(
                    account=account,
                    amount=amount,
                    currency=currency,
                    actor=None,
                    reason=SEEDED.format(name=path.name),
                    now=now,
                )
            except UnknownCurrencyError as error:
                raise CommandError(BAD_FILE.format(path=path, problem=error)) from None
            created += 1
        self.stdout.write(f"collateral: {created} created, {len(wanted) - created} already set")
