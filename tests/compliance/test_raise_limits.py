"""``manage.py raise_limits``: what load runs (bench, chaos) do to limits, audited and repeatable."""

from __future__ import annotations

from decimal import Decimal

from django.core.management import call_command

from backoffice.audit.models import AuditEntry
from compliance.models import ComplianceRule
from compliance.rules.params import THRESHOLDS
from trades.models import Counterparty


def test_raise_limits_multiplies_credit_limits_and_sets_the_account_day_limit(reference) -> None:
    before = dict(Counterparty.objects.values_list("code", "credit_limit"))
    call_command("raise_limits", factor=Decimal(1000), verbosity=0)
    call_command("raise_limits", factor=Decimal(1000), verbosity=0)  # the rule does not compound
    after = dict(Counterparty.objects.values_list("code", "credit_limit"))
    assert after == {code: limit * 1000 * 1000 for code, limit in before.items()}
    rule = ComplianceRule.objects.get(code="MAX_NOTIONAL_ACCOUNT_DAY")
    assert rule.threshold == THRESHOLDS["MAX_NOTIONAL_ACCOUNT_DAY"] * 1000
    assert AuditEntry.objects.filter(action="limits.raise").count() == 2
