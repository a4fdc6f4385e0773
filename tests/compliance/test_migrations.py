"""Migration 0004: per-rule evaluation rows folded into one verdict per version, and back."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.compliance.conftest import NOW

BEFORE = [("compliance", "0003_running_totals")]
AFTER = [("compliance", "0004_version_verdict")]
RULE_COLUMNS = "trade_id, trade_version, rule_id, code, passed, detail, evaluated_at"
LATER = NOW + timedelta(seconds=1)
# Two rows share a code (a per-book limit); ids give the evaluation order, not rule ids.
RULE_ROWS = [
    ("T1", 1, 3, "RESTRICTED_LIST", True, "not restricted", LATER),
    ("T1", 1, 1, "MAX_NOTIONAL_TRADE", False, "over the limit", LATER),
    ("T1", 1, 9, "MAX_NOTIONAL_TRADE", False, 'over the "EQ-US" limit', LATER),
    ("T1", 2, 3, "RESTRICTED_LIST", True, "not restricted", NOW),
    ("T2", 1, 1, "MAX_NOTIONAL_TRADE", True, "within the limit", NOW),
]


def migrate(target: list[tuple[str, str]]) -> None:
    MigrationExecutor(connection).migrate(target)  # a fresh executor sees what is applied now


def rule_rows() -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {RULE_COLUMNS} FROM compliance_ruleevaluation ORDER BY id")
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_the_verdict_migration_folds_rule_rows_per_version_and_expands_them_back():
    migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO compliance_ruleevaluation ({RULE_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                RULE_ROWS,
            )
        migrate(AFTER)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT trade_id, trade_version, passed, failed_rules, results, evaluated_at"
                " FROM compliance_versionverdict ORDER BY trade_id, trade_version"
            )
            verdicts = [(*v[:4], json.loads(v[4]), v[5]) for v in cursor.fetchall()]

        assert [v[:4] for v in verdicts] == [
            ("T1", 1, False, ["MAX_NOTIONAL_TRADE", "MAX_NOTIONAL_TRADE"]),
            ("T1", 2, True, []),
            ("T2", 1, True, []),
        ]
        assert [r["rule_id"] for r in verdicts[0][4]] == [3, 1, 9]
        assert verdicts[0][4][2] == {
            "rule_id": 9,
            "code": "MAX_NOTIONAL_TRADE",
            "passed": False,
            "detail": 'over the "EQ-US" limit',
        }
        assert [v[5] for v in verdicts] == [LATER, NOW, NOW]

        migrate(BEFORE)
        assert rule_rows() == RULE_ROWS
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
