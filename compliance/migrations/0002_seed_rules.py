"""Seed one row per rule of ``compliance.rules.DEFAULT_RULES`` (enabled, no scope).

Idempotent per code: a code that already has a row is left alone, so re-running it after an
admin edited a rule changes nothing. Reversing it removes nothing (rules may have been edited).
"""

from django.db import migrations


def seed(apps, schema_editor):
    from compliance.rules import DEFAULT_RULES

    rule = apps.get_model("compliance", "ComplianceRule")
    existing = set(rule.objects.values_list("code", flat=True))
    rule.objects.bulk_create(
        [
            rule(
                code=default.code,
                description=default.description,
                enabled=default.enabled,
                threshold=default.threshold,
                params=dict(default.params),
            )
            for default in DEFAULT_RULES
            if default.code not in existing
        ]
    )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
