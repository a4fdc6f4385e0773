"""Rule rows: the seeded defaults, and the admin form that refuses what the engine cannot run."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from backoffice.audit.models import AuditEntry
from compliance.admin import ComplianceRuleForm
from compliance.models import ComplianceRule, RestrictedInstrument
from compliance.rules import DEFAULT_RULES, REGISTRY

pytestmark = pytest.mark.django_db


def form(**overrides) -> ComplianceRuleForm:
    data = {
        "code": "WASH_TRADE",
        "description": "",
        "enabled": "on",
        "threshold": "",
        "params": '{"window_seconds": "120"}',
        "scope_books": "",
        "scope_accounts": "",
        "scope_instruments": "",
    }
    data.update(overrides)
    return ComplianceRuleForm(data=data)


def test_the_migration_seeds_one_enabled_row_per_default_rule():
    rows = {r.code: r for r in ComplianceRule.objects.all()}
    assert set(rows) == set(REGISTRY)
    for default in DEFAULT_RULES:
        row = rows[default.code]
        assert (row.enabled, row.threshold, row.params) == (
            True,
            default.threshold,
            dict(default.params),
        )
        assert row.scope_books == row.scope_accounts == row.scope_instruments == []


def test_a_valid_rule_with_a_scope_is_accepted():
    rule = form(scope_books="EQ-US,MACRO")
    assert rule.is_valid(), rule.errors
    assert rule.save().scope_books == ["EQ-US", "MACRO"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"params": '{"window_seconds": "soon"}'},
            "WASH_TRADE parameter window_seconds: expected a whole number, got 'soon'",
        ),
        ({"params": '{"window": "60"}'}, "WASH_TRADE has no parameter 'window'"),
        (
            {"code": "MAX_NOTIONAL_TRADE", "params": "{}"},
            "MAX_NOTIONAL_TRADE needs a threshold and none is set",
        ),
    ],
)
def test_a_configuration_the_engine_cannot_run_is_refused_with_its_reason(overrides, message):
    rule = form(**overrides)
    assert not rule.is_valid()
    assert message in rule.non_field_errors()


def test_params_must_be_an_object():
    rule = form(params='["window_seconds"]')
    assert not rule.is_valid()
    assert "params" in rule.errors


def test_a_negative_threshold_is_refused_by_the_database_too():
    rule = form(code="MAX_NOTIONAL_TRADE", threshold="-1", params="{}")
    assert not rule.is_valid()
    assert ComplianceRule.objects.filter(threshold__lt=Decimal(0)).count() == 0


def test_editing_a_rule_and_restricting_an_instrument_in_admin_are_audited(admin_user):
    client = Client()
    client.force_login(admin_user)
    rule = ComplianceRule.objects.get(code="FAT_FINGER")
    response = client.post(
        f"/admin/compliance/compliancerule/{rule.pk}/change/",
        {
            "code": "FAT_FINGER",
            "description": rule.description,
            "enabled": "on",
            "threshold": "0.10",
            "params": "{}",
            "scope_books": "",
            "scope_accounts": "",
            "scope_instruments": "",
        },
    )
    assert response.status_code == 302, response.content
    client.post(
        "/admin/compliance/restrictedinstrument/add/",
        {"isin": "US0378331005", "reason": "MNPI: deal team wall-crossed"},
    )

    entries = {e.action: e for e in AuditEntry.objects.all()}
    change = entries["compliance.rule.change"]
    assert change.before is not None
    assert change.after is not None
    assert (change.before["threshold"], change.after["threshold"]) == ("0.05000000", "0.10")
    added = RestrictedInstrument.objects.get()
    assert (added.added_by, added.reason) == ("admin", "MNPI: deal team wall-crossed")
    assert entries["compliance.restricted.add"].actor_name == "admin"
