"""Running limit totals: kept exact by the database, read under a lock (real PostgreSQL)."""

from __future__ import annotations

import threading
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from compliance.ledger import day_contribution, exposure_contribution
from compliance.models import (
    AccountDayTotal,
    ComplianceException,
    ComplianceTrade,
    ExposureTotal,
    RestrictedInstrument,
)
from compliance.selectors import limits_lock, trade_state
from compliance.services import exception_confirm, exception_propose
from tests.compliance.conftest import AAPL, NOW, Feed, captured, sap, validated
from tests.conftest import wait_until
from trades.models import Counterparty

ONE_TRADE = Decimal("23140.00")  # 100 AAPL at 231.40


def recomputed() -> tuple[dict, dict]:
    """The totals summed afresh from every compliance trade with the ledger's own definitions."""
    days: defaultdict = defaultdict(Decimal)
    exposure: defaultdict = defaultdict(Decimal)
    for row in ComplianceTrade.objects.all():
        state = trade_state(row)
        if (day := day_contribution(state)) is not None:
            days[day[0]] += day[1]
        if (found := exposure_contribution(state)) is not None:
            exposure[(found[0], found[1])] += found[2]
    return (
        {k: v for k, v in days.items() if v},
        {k: v for k, v in exposure.items() if v},
    )


def stored() -> tuple[dict, dict]:
    days = {(r.account, r.trade_date): r.total for r in AccountDayTotal.objects.all() if r.total}
    exposure = {
        (r.counterparty, r.settle_date): r.total for r in ExposureTotal.objects.all() if r.total
    }
    return days, exposure


def test_the_running_totals_equal_the_trades_they_sum_through_every_kind_of_change(
    feed, analyst, approver
):
    RestrictedInstrument.objects.create(isin=AAPL, reason="MNPI", added_by="cco", added_at=NOW)
    feed(sap("E1"), sap("E2", quantity="50"), captured("T1"))  # T1 waits in an exception
    feed(sap("E1", 2, quantity="70", counterparty="CP-SUDN"))  # amended to another counterparty
    feed(sap("E2", 2, action="CANCEL"), captured("T2", account="ACC-0002"))
    assert stored() == recomputed()

    for trade_id in ("T1", "T2"):
        waiting = ComplianceException.objects.get(trade_id=trade_id)
        exception_propose(
            exception_id=waiting.pk,
            actor=analyst,
            action="APPROVE" if trade_id == "T1" else "REJECT",
            reason="desk head agreed",
            now=NOW,
        )
        exception_confirm(exception_id=waiting.pk, actor=approver, now=NOW)
    feed(sap("E3", trade_date="2026-11-26", trade_time="2026-11-26T09:00:00Z"))

    days, exposure = stored()
    assert (days, exposure) == recomputed()
    assert ("ACC-0001", NOW.date()) in days  # T1 approved: it counts
    assert ("ACC-0002", NOW.date()) not in days  # T2 rejected: it does not
    assert ComplianceTrade.objects.filter(status="CANCELLED").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_waits_for_whoever_holds_the_counterparty_and_then_sees_its_exposure(
    feed,
):
    """A second consumer (here: a transaction holding the counterparty's lock and booking a
    validated trade) has the headroom; the batch must wait for it and then fail CREDIT_LIMIT."""
    Counterparty.objects.filter(code="CP-NRTH").update(credit_limit=Decimal("30000"))
    holding, release = threading.Event(), threading.Event()

    def other_consumer() -> None:
        try:
            with transaction.atomic():
                limits_lock(accounts={"ACC-0002"}, counterparties={"CP-NRTH"})
                holding.set()
                release.wait(30)
                ComplianceTrade.objects.create(
                    **{
                        **_validated_row("OTHER", account="ACC-0002"),
                        "updated_at": NOW,
                    }
                )
        finally:
            connection.close()

    def batch() -> None:
        try:
            feed(captured("T1"))
        finally:
            connection.close()

    holder = threading.Thread(target=other_consumer)
    holder.start()
    assert holding.wait(30)
    consumer = threading.Thread(target=batch)
    consumer.start()
    wait_until(_someone_waits_for_an_advisory_lock, timeout=30, what="the batch to wait")
    release.set()
    holder.join(30)
    consumer.join(30)

    assert validated() == []
    refused = ComplianceException.objects.get(trade_id="T1")
    assert any(rule.startswith("CREDIT_LIMIT") for rule in refused.failed_rules)


@pytest.mark.django_db(transaction=True)
def test_two_consumers_racing_for_the_last_headroom_let_exactly_one_trade_through(reference):
    Counterparty.objects.filter(code="CP-NRTH").update(credit_limit=Decimal("30000"))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def consumer(partition_feed: Feed, payload: dict) -> None:
        try:
            barrier.wait(30)
            partition_feed(payload)
        except BaseException as error:  # surfaced below, not swallowed
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=consumer, args=(Feed(partition=0), captured("T1"))),
        threading.Thread(
            target=consumer, args=(Feed(partition=1), captured("T2", account="ACC-0002"))
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert len(validated()) == 1
    assert ComplianceException.objects.count() == 1
    assert ExposureTotal.objects.get(counterparty="CP-NRTH").total == ONE_TRADE


def _validated_row(trade_id: str, *, account: str) -> dict:
    return {
        "trade_id": trade_id,
        "version": 1,
        "action": "NEW",
        "account": account,
        "book": "EQ-US",
        "counterparty": "CP-NRTH",
        "instrument": AAPL,
        "side": "BUY",
        "quantity": Decimal("100"),
        "price": Decimal("231.40"),
        "currency": "USD",
        "notional_base": ONE_TRADE,
        "trade_time": NOW,
        "trade_date": NOW.date(),
        "settle_date": NOW.date().replace(day=27),
        "status": "VALIDATED",
        "validated_version": 1,
        "validated_counterparty": "CP-NRTH",
        "validated_notional_base": ONE_TRADE,
        "validated_settle_date": NOW.date().replace(day=27),
    }


def _someone_waits_for_an_advisory_lock() -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return bool(cursor.fetchone()[0])
