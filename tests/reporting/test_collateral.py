"""Opening collateral: set with an audit row, seeded without overwriting an operator's value."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from backoffice.audit.models import AuditEntry
from reporting.models import CollateralBalance
from reporting.services import collateral_set

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 12, 20, 9, 0, tzinfo=UTC)


def test_setting_collateral_is_audited_and_setting_the_same_value_again_is_not(users):
    for _ in range(2):
        collateral_set(account="ACC-0001", amount=Decimal("1000000.004"), currency="USD",
                       actor=users["viewer"], reason="posted treasury bills", now=NOW)  # fmt: skip

    assert CollateralBalance.objects.get().amount == Decimal("1000000.00")
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor_name, audit.reason) == (
        "collateral.set",
        "viewer",
        "posted treasury bills",
    )
    assert audit.before is None
    assert audit.after == {"amount": "1000000.00", "currency": "USD"}


def test_load_collateral_creates_missing_balances_once_and_keeps_an_operators_value():
    collateral_set(account="ACC-0001", amount=Decimal("5"), currency="USD", actor=None,
                   reason="operator", now=NOW)  # fmt: skip
    first, second = StringIO(), StringIO()

    call_command("load_collateral", stdout=first)
    call_command("load_collateral", stdout=second)

    assert first.getvalue().strip() == "collateral: 22 created, 1 already set"
    assert second.getvalue().strip() == "collateral: 0 created, 23 already set"
    assert CollateralBalance.objects.get(account="ACC-0001").amount == Decimal("5.00")
    assert CollateralBalance.objects.get(account="ACC-0007").currency == "EUR"
