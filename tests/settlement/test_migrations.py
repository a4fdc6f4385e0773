"""Migration 0003: each version's obligation_ids become chain heads and membership intervals,
and back."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("settlement", "0002_drop_duplicate_chain_index")]
AFTER = [("settlement", "0003_netting_chains")]
AT = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
SD = date(2026, 11, 27)
D = Decimal

OBLIGATION_COLUMNS = (
    "trade_id, trade_version, status, chain_id, account, counterparty, instrument, asset_class,"
    " csdr_class, market, settle_date, currency, payment_type, side, quantity, cash_amount,"
    " ssi_custodian_bic, ssi_safekeeping_account, ssi_cash_account, updated_at"
)
INSTRUCTION_COLUMNS = (
    "instruction_id, chain_id, version, kind, status, account, counterparty, instrument,"
    " asset_class, csdr_class, market, settle_date, currency, payment_type, net_quantity,"
    " net_cash, settled_quantity, settled_cash, obligation_ids, supersedes, superseded_by,"
    " ssi_custodian_bic, ssi_safekeeping_account, ssi_cash_account, reason_code, reason,"
    " status_sequence, settled_on, created_at, instructed_at, status_changed_at"
)


def obligation(trade_id: str, chain: str, side: str, quantity: str, status: str = "ACTIVE"):
    cash = D(quantity) * 10
    return (trade_id, 1, status, chain, "ACC-0001", "CP-NRTH", "US0378331005", "EQUITY",
            "LIQUID_SHARES", "XNAS", SD, "USD", "DVP", side, D(quantity), cash, "IRVTUS3N",
            "SK1", "CA1", AT)  # fmt: skip


def instruction(chain: str, version: int, status: str, net: str, ids: list[str], settled: str):
    q = D(net)
    return (f"{chain}-v{version}", chain, version, "NET", status, "ACC-0001", "CP-NRTH",
            "US0378331005", "EQUITY", "LIQUID_SHARES", "XNAS", SD, "USD", "DVP", q, -q * 10,
            D(settled), -D(settled) * 10, ids, f"{chain}-v{version - 1}" if version > 1 else "",
            "", "IRVTUS3N", "SK1", "CA1", "", "", 1 if settled != "0" else 0, None, AT, AT, AT)  # fmt: skip


def migrate(target: list[tuple[str, str]]) -> None:
    MigrationExecutor(connection).migrate(target)  # a fresh executor sees what is applied now


def rows(sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_the_chain_migration_builds_heads_and_intervals_and_gives_the_arrays_back():
    # Chain A: v1 netted T1 and T3 and settled 10 before T3 was cancelled and T2 came in (v2);
    # T4 has come in since v2. Chain B: two trades netting flat, never instructed.
    migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO settlement_obligation ({OBLIGATION_COLUMNS})"
                f" VALUES ({', '.join(['%s'] * 20)})",
                [
                    obligation("T1", "A", "BUY", "100"),
                    obligation("T2", "A", "BUY", "50"),
                    obligation("T3", "A", "BUY", "30", status="CANCELLED"),
                    obligation("T4", "A", "SELL", "20"),
                    obligation("T5", "B", "BUY", "70"),
                    obligation("T6", "B", "SELL", "70"),
                ],
            )
            cursor.executemany(
                f"INSERT INTO settlement_instruction ({INSTRUCTION_COLUMNS})"
                f" VALUES ({', '.join(['%s'] * 31)})",
                [
                    instruction("A", 1, "CANCELLED", "130", ["T1", "T3"], settled="10"),
                    instruction("A", 2, "INSTRUCTED", "140", ["T1", "T2"], settled="0"),
                ],
            )
        migrate(AFTER)

        assert rows(
            "SELECT chain_id, target_quantity, target_cash, obligations, members_changed,"
            " version, settled_quantity, settled_cash, any_settled FROM settlement_chain"
            " ORDER BY chain_id"
        ) == [
            ("A", D("130"), D("-1300.00"), 3, True, 2, D("10"), D("-100.00"), True),
            ("B", D("0"), D("0.00"), 2, True, 0, D("0"), D("0.00"), False),
        ]
        assert rows(
            "SELECT chain_id, trade_id, joined_version, left_version"
            " FROM settlement_chain_member ORDER BY chain_id, trade_id"
        ) == [
            ("A", "T1", 1, None),
            ("A", "T2", 2, None),
            ("A", "T3", 1, 2),
            ("A", "T4", 3, None),
            ("B", "T5", 1, None),
            ("B", "T6", 1, None),
        ]

        migrate(BEFORE)
        assert rows(
            "SELECT instruction_id, obligation_ids FROM settlement_instruction ORDER BY 1"
        ) == [("A-v1", ["T1", "T3"]), ("A-v2", ["T1", "T2"])]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
