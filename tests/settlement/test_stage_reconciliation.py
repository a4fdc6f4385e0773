"""consume_reconciliation's handler through the real runtime: breaks from statements.

Internal books are the settled ledger as of the statement date. Reference prices: AAPL 231.40,
MSFT 418.25, AMZN 205.10, NVDA 142.60 (USD); SAP 228.45 (EUR).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from backoffice.audit.models import AuditEntry
from settlement.models import Break, ReconciliationRun, SettlementMovement
from tests.settlement.conftest import AAPL, MSFT, NOW, SAP, dead_letters, statement, trade

D = Decimal
AMZN = "US0231351067"
NVDA = "US67066G1040"
pytestmark = pytest.mark.django_db
DAY1, DAY2 = date(2026, 11, 27), date(2026, 11, 30)


def book(asset: str, amount: str, *, day: date = DAY1, account: str = "ACC-0001") -> None:
    n = SettlementMovement.objects.count()
    SettlementMovement.objects.create(
        reference=f"TEST/{n}",
        source="SETTLEMENT",
        account=account,
        asset_type="CASH" if len(asset) == 3 else "SECURITY",
        asset=asset,
        amount=D(amount),
        value_date=day,
        created_at=NOW,
    )


def breaks() -> set[tuple[str, str, str, str]]:
    return set(Break.objects.values_list("account", "asset", "category", "status"))


def snapshot() -> list[tuple]:
    return list(
        Break.objects.order_by("id").values_list(
            "id", "category", "status", "opened_as_of", "last_seen_as_of", "difference", "amount"
        )
    )


@pytest.fixture
def books():
    book(AAPL, "600")
    book(MSFT, "100")
    book(AMZN, "50")
    book(NVDA, "10")
    book("USD", "-5990.00")


AGREEING = [
    (AAPL, "600", "231.40", "USD"),
    (MSFT, "100", "418.25", "USD"),
    (AMZN, "50", "205.10", "USD"),
    (NVDA, "10", "142.60", "USD"),
]


def test_a_statement_that_agrees_opens_no_break(reconcile, books):
    reconcile.statements(statement(positions=AGREEING, cash=[("USD", "-5990.00")]))
    assert breaks() == set()
    run = ReconciliationRun.objects.get()
    assert (run.account, run.as_of, run.positions, run.cash_lines, run.findings) == (
        "ACC-0001",
        DAY1,
        4,
        1,
        0,
    )


def test_every_mismatch_becomes_a_break_with_its_category_and_amount(reconcile, books):
    reconcile.statements(
        statement(
            positions=[
                (AAPL, "610", "231.40", "USD"),  # 10 more at the custodian
                (AMZN, "50", "215.36", "USD"),  # valued 5 % higher
                (NVDA, "10", "142.60", "USD"),
                (SAP, "40", "228.45", "EUR"),  # we have none
            ],  # MSFT left out
            cash=[("USD", "-5890.00")],
        )
    )
    rows = {
        b.asset: (b.category, b.difference, b.amount, b.amount_currency, b.status)
        for b in Break.objects.all()
    }
    assert rows == {
        AAPL: ("QUANTITY", D("-10"), D("-2314.00"), "USD", "OPEN"),
        MSFT: ("MISSING_CUSTODIAN", D("100"), D("41825.00"), "USD", "OPEN"),
        SAP: ("MISSING_INTERNAL", D("-40"), D("-9138.00"), "EUR", "OPEN"),
        "USD": ("CASH", D("-100.00"), D("-100.00"), "USD", "OPEN"),
        # 50 x 205.10 = 10255.00 vs 50 x 215.36 = 10768.00
        AMZN: ("VALUATION", D("-513.00"), D("-513.00"), "USD", "OPEN"),
    }
    opened = AuditEntry.objects.filter(object_type="settlement.break", action="break_opened")
    assert opened.count() == 5
    assert set(opened.values_list("actor_name", flat=True)) == {"system"}


def test_a_difference_explained_by_a_pending_instruction_is_timing(settle, reconcile, books):
    # An instruction due Monday (+300 AAPL / -3000.00) that the custodian already settled.
    settle.trades(trade("T9", quantity="300", settle_date="2026-11-30"))
    reconcile.statements(
        statement(
            positions=[(AAPL, "900", "231.40", "USD"), *AGREEING[1:]],
            cash=[("USD", "-8990.00")],
        )
    )
    assert breaks() == {
        ("ACC-0001", AAPL, "TIMING", "OPEN"),
        ("ACC-0001", "USD", "TIMING", "OPEN"),
    }


def test_re_running_a_statement_changes_nothing(reconcile, books):
    wrong: dict[str, Any] = {
        "positions": [(AAPL, "610", "231.40", "USD")],
        "cash": [("USD", "-5890.00")],
    }
    reconcile.statements(statement(**wrong))
    before, audit = snapshot(), AuditEntry.objects.count()
    reconcile.statements(statement(**wrong, revision=2))
    reconcile.statements(statement(**wrong, revision=3), statement(**wrong, revision=4))
    assert snapshot() == before
    assert AuditEntry.objects.count() == audit
    assert ReconciliationRun.objects.count() == 4


def test_a_break_seen_again_the_next_day_stays_one_break(reconcile, books):
    wrong: dict[str, Any] = {
        "positions": [*AGREEING[1:], (AAPL, "610", "231.40", "USD")],
        "cash": [("USD", "-5990.00")],
    }
    reconcile.statements(statement(**wrong))
    reconcile.statements(statement(as_of="2026-11-30", **wrong))
    (row,) = Break.objects.all()
    assert (row.category, row.opened_as_of, row.last_seen_as_of) == ("QUANTITY", DAY1, DAY2)


def test_a_break_gone_from_a_later_statement_is_auto_resolved_and_audited(reconcile, books):
    reconcile.statements(statement(positions=AGREEING[1:], cash=[("USD", "-5990.00")]))
    assert breaks() == {("ACC-0001", AAPL, "MISSING_CUSTODIAN", "OPEN")}
    reconcile.statements(
        statement(as_of="2026-11-30", positions=AGREEING, cash=[("USD", "-5990.00")])
    )
    assert breaks() == {("ACC-0001", AAPL, "MISSING_CUSTODIAN", "AUTO_RESOLVED")}
    entry = AuditEntry.objects.get(action="break_auto_resolved")
    assert entry.after is not None
    assert (entry.actor_name, entry.before, entry.after["status"]) == (
        "system",
        {"status": "OPEN"},
        "AUTO_RESOLVED",
    )
    assert entry.reason == "not on the custodian statement of 2026-11-30"
    # Re-running either date now changes nothing.
    before = snapshot()
    reconcile.statements(statement(positions=AGREEING[1:], cash=[("USD", "-5990.00")], revision=2))
    reconcile.statements(
        statement(as_of="2026-11-30", positions=AGREEING, cash=[("USD", "-5990.00")], revision=2)
    )
    assert snapshot() == before


def test_re_running_an_older_date_leaves_a_newer_break_alone(reconcile, books):
    reconcile.statements(statement(positions=AGREEING, cash=[("USD", "-5990.00")]))
    reconcile.statements(
        statement(as_of="2026-11-30", positions=AGREEING[1:], cash=[("USD", "-5990.00")])
    )
    reconcile.statements(statement(positions=AGREEING, cash=[("USD", "-5990.00")], revision=2))
    assert breaks() == {("ACC-0001", AAPL, "MISSING_CUSTODIAN", "OPEN")}


def test_a_movement_settled_after_the_as_of_date_is_not_in_the_books_yet(reconcile, books):
    book(AAPL, "50", day=DAY2)
    reconcile.statements(statement(positions=AGREEING, cash=[("USD", "-5990.00")]))
    assert breaks() == set()


def test_a_statement_with_duplicate_lines_is_dead_lettered(reconcile, books):
    twice = [(AAPL, "300", "231.40", "USD"), (AAPL, "300", "231.40", "USD")]
    outcome = reconcile.statements(statement(positions=twice))
    assert outcome.dead_lettered == 1
    assert dead_letters()[0][0] == "MalformedStatement"
    assert breaks() == set()
