"""End of day: snapshots from the data as of the date, idempotent, margin and margin calls."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from backoffice.audit.models import AuditEntry
from backoffice.celery import app
from reporting import eod, selectors
from reporting.models import EodRun, MarginCall, MarginSnapshot, PnlSnapshot
from reporting.services import collateral_set, eod_run_pending, eod_snapshot_create
from reporting.tasks import eod_run
from tests.reporting.helpers import AAPL, MSFT, price, run, validated

pytestmark = pytest.mark.django_db

D1, D2 = date(2024, 12, 19), date(2024, 12, 20)
RUN_AT = datetime(2024, 12, 20, 23, 0, tzinfo=UTC)
LATER = datetime(2024, 12, 27, 9, 0, tzinfo=UTC)


def rows(model: Any, day: date) -> list[dict[str, Any]]:
    return list(model.objects.filter(business_date=day).order_by("pk").values())


def two_days() -> None:
    """AAPL bought on D1 and partly sold on D2, a close each day, MSFT opened on D2."""
    run(
        validated("A1", quantity="100", price="200.00", fees="2.00", time="2024-12-19T14:31:00Z"),
        validated("A2", quantity="50", price="204.00", fees="1.00", time="2024-12-19T15:00:00Z"),
        price(AAPL, "203.00", as_of="2024-12-19T18:00:00Z"),
        price(AAPL, "205.00", as_of="2024-12-19T21:00:00Z"),  # D1's close
    )
    run(
        validated("A3", side="SELL", quantity="120", price="210.00", fees="2.50",
                  time="2024-12-20T14:40:00Z"),
        validated("M1", instrument=MSFT, quantity="10", price="400.00",
                  time="2024-12-20T15:00:00Z"),
        price(AAPL, "212.00", as_of="2024-12-20T21:00:00Z"),
    )  # fmt: skip


def test_the_snapshot_is_the_position_as_of_its_date_at_that_dates_close(instruments):
    two_days()

    eod_snapshot_create(business_date=D1, now=RUN_AT)

    (snapshot,) = PnlSnapshot.objects.filter(business_date=D1)
    # 150 bought on D1 (D2's sale and the MSFT trade are later), marked at D1's 21:00 close.
    assert (snapshot.quantity, snapshot.mark_price) == (150, Decimal("205.00"))
    assert snapshot.unrealized == Decimal("550.00")  # 100 x 5 + 50 x 1
    assert snapshot.total == Decimal("547.00")
    assert snapshot.trade_count == 2


def test_running_end_of_day_twice_leaves_identical_rows(instruments):
    two_days()
    eod_snapshot_create(business_date=D2, now=RUN_AT)
    first = (rows(PnlSnapshot, D2), rows(MarginSnapshot, D2), list(MarginCall.objects.values()))

    eod_snapshot_create(business_date=D2, now=LATER)

    assert (
        rows(PnlSnapshot, D2),
        rows(MarginSnapshot, D2),
        list(MarginCall.objects.values()),
    ) == first
    assert len(first[0]) == 2


def test_a_late_run_writes_what_an_on_time_run_wrote(instruments):
    two_days()
    eod_snapshot_create(business_date=D1, now=RUN_AT)
    on_time = [{k: v for k, v in r.items() if k != "id"} for r in rows(PnlSnapshot, D1)]
    PnlSnapshot.objects.all().delete()
    MarginSnapshot.objects.all().delete()
    # The days go by: more trades and prices arrive, and D1 is built a week late.
    run(
        validated("A4", quantity="5", price="220.00", time="2024-12-23T14:31:00Z"),
        price(AAPL, "221.00", as_of="2024-12-23T21:00:00Z"),
    )

    eod_snapshot_create(business_date=D1, now=RUN_AT)

    late = [{k: v for k, v in r.items() if k != "id"} for r in rows(PnlSnapshot, D1)]
    assert late == on_time


def test_a_cancel_after_end_of_day_shows_when_the_date_is_built_again(instruments):
    two_days()
    eod_snapshot_create(business_date=D2, now=RUN_AT)
    run(validated("M1", version=2, action="CANCEL", instrument=MSFT, quantity="10",
                  price="400.00", time="2024-12-20T15:00:00Z"))  # fmt: skip

    eod_snapshot_create(business_date=D2, now=LATER)

    assert list(
        PnlSnapshot.objects.filter(business_date=D2).values_list("instrument", flat=True)
    ) == [AAPL]


def test_a_margin_call_is_issued_once_with_its_payment_and_an_audit_row(instruments):
    two_days()  # no collateral: equity is the P&L, far below a 25 % haircut

    eod_snapshot_create(business_date=D2, now=RUN_AT)
    eod_snapshot_create(business_date=D2, now=LATER)

    margin = MarginSnapshot.objects.get(business_date=D2, account="ACC-0001")
    call = MarginCall.objects.get()
    assert margin.margin_call > 0
    assert margin.excess == margin.equity - margin.requirement
    assert (call.account, call.amount, call.currency) == ("ACC-0001", margin.margin_call, "USD")
    assert (call.reference, call.value_date) == ("MC-ACC-0001-20241220", date(2024, 12, 23))
    audit = AuditEntry.objects.get(action="margin_call.issue")
    assert (audit.actor_name, audit.object_id) == ("system", str(call.pk))
    if call.payment_status == MarginCall.PaymentStatus.CREATED:
        from settlement.models import Payment

        assert Payment.objects.get(reference=call.reference).amount == call.amount


def test_collateral_covers_the_requirement_and_no_call_is_issued(instruments):
    two_days()
    collateral_set(account="ACC-0001", amount=Decimal("50000"), currency="USD", actor=None,
                   reason="test", now=RUN_AT)  # fmt: skip

    eod_snapshot_create(business_date=D2, now=RUN_AT)

    margin = MarginSnapshot.objects.get(business_date=D2)
    assert margin.collateral == Decimal("50000.00")
    # equity = collateral + total P&L of both positions
    totals = sum(p.base_total for p in PnlSnapshot.objects.filter(business_date=D2))
    assert margin.equity == Decimal("50000.00") + totals
    assert margin.excess > 0
    assert not MarginCall.objects.exists()


def test_var_is_read_from_the_daily_closes_once_there_are_enough(instruments):
    run(validated("A1", quantity="100", price="100.00", time="2024-11-01T14:31:00Z"))
    day = date(2024, 11, 1)
    closes = []
    for n in range(30):  # one close a day, a 2 % fall on the 10th
        level = Decimal("100") if n < 10 else Decimal("98")
        closes.append(price(AAPL, f"{level + n % 2}", as_of=f"{day + timedelta(days=n)}T21:00:00Z"))
    run(*closes)
    last = day + timedelta(days=29)

    eod_snapshot_create(business_date=last, now=RUN_AT)

    margin = MarginSnapshot.objects.get(business_date=last)
    assert (margin.scenario_count, margin.var_fallback) == (29, False)
    assert margin.var_99_1d is not None
    assert margin.var_99_1d > 0
    assert margin.requirement == max(margin.haircut_requirement, margin.var_99_1d)


def test_pending_dates_come_from_the_data_and_the_last_built_date_is_rebuilt(instruments):
    two_days()
    assert selectors.eod_pending_dates() == [D1, D2]

    built = eod_run_pending(now=RUN_AT)

    assert [r.business_date for r in built] == [D1, D2]
    assert selectors.eod_pending_dates() == [D2]
    run(price(AAPL, "215.00", as_of="2024-12-23T21:00:00Z"))
    assert selectors.eod_pending_dates() == [D2, date(2024, 12, 23)]


def test_the_beat_task_and_run_eod_build_the_pending_dates(instruments):
    two_days()
    entry = app.conf.beat_schedule["reporting-eod"]
    assert entry["task"] == eod_run.name == "reporting.eod_run"

    assert eod_run() == ["2024-12-19", "2024-12-20"]
    call_command("run_eod", "--date", "2024-12-19", verbosity=0)

    assert set(EodRun.objects.values_list("business_date", flat=True)) == {D1, D2}


def test_a_margin_call_value_date_is_the_next_weekday():
    assert eod.value_date(date(2024, 12, 20)) == date(2024, 12, 23)
    assert eod.value_date(date(2024, 12, 18)) == date(2024, 12, 19)


def test_without_payments_the_call_is_kept_and_the_gap_is_logged(instruments, monkeypatch, caplog):
    monkeypatch.setattr(eod, "PAYMENT_MODULES", ("settlement.no_such_module",))
    two_days()

    eod_snapshot_create(business_date=D2, now=RUN_AT)

    call = MarginCall.objects.get()
    assert call.payment_status == MarginCall.PaymentStatus.NOT_AVAILABLE
    assert eod.PAYMENTS_UNAVAILABLE.format(reference=call.reference) in caplog.messages
