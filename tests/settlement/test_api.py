"""The settlement REST API: reads for viewers, break actions for operations."""

from __future__ import annotations

from datetime import date

import pytest
from rest_framework.test import APIClient

from backoffice.roles import NOT_ALLOWED
from settlement.api import INSTRUCTION_NOT_FOUND
from settlement.models import Break, Obligation
from settlement.services import fail_penalties_accrue
from settlement.services.breaks import BREAK_CLOSED
from tests.settlement.conftest import AAPL, NOW, statement, status, trade
from tests.settlement.test_stage_settlement import CHAIN
from trades.calendar import CALENDAR_NOT_COVERED

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def day(settle, reconcile):
    """Two trades netted and settled, one failing sale, and a quantity break on AAPL."""
    settle.trades(trade("T1", quantity="300"), trade("T2", quantity="200"))
    settle.statuses(status(f"{CHAIN}-v1", 1, "SETTLED", quantity="500", cash="-5000.00"))
    settle.trades(trade("S1", side="SELL", quantity="50", counterparty="CP-HRBR", ssi=None))
    failing = settle_chain_of("S1")
    settle.statuses(status(f"{failing}-v1", 1, "FAILED", reason_code="INSUFFICIENT_SECURITIES"))
    fail_penalties_accrue(as_of=date(2026, 11, 30), now=NOW)
    reconcile.statements(
        statement(positions=[(AAPL, "510", "231.40", "USD")], cash=[("USD", "-5000.00")])
    )


def settle_chain_of(trade_id: str) -> str:
    return Obligation.objects.get(trade_id=trade_id).chain_id


def test_instructions_list_filters_and_detail_shows_the_chain(day, viewer):
    client = client_for(viewer)
    listed = client.get("/api/v1/settlement/instructions/", {"status": "SETTLED"}).json()
    assert [r["instruction_id"] for r in listed["results"]] == [f"{CHAIN}-v1"]
    detail = client.get(f"/api/v1/settlement/instructions/{CHAIN}-v1/").json()
    assert detail["obligation_ids"] == ["T1", "T2"]
    assert [v["version"] for v in detail["chain"]] == [1]
    missing = client.get("/api/v1/settlement/instructions/SI-nope-v1/")
    assert missing.status_code == 404
    assert missing.json()["detail"] == INSTRUCTION_NOT_FOUND.format(instruction_id="SI-nope-v1")


@pytest.mark.parametrize("path", ["/api/v1/settlement/fails/", "/api/v1/settlement/fails/report/"])
def test_fails_as_of_past_the_loaded_holidays_are_a_400_on_as_of_saying_what_to_load(
    day, viewer, path
):
    response = client_for(viewer).get(path, {"as_of": "2031-06-02"})

    assert response.status_code == 400
    # the failing fail (due 2026-11-27) ages into 2029, whose NYSE holidays are not loaded
    assert response.json() == {
        "as_of": [
            CALENDAR_NOT_COVERED.format(
                calendar="NYSE", first="2025-01-01", last="2028-12-31", day="2029-01-01", year=2029
            )
        ]
    }


def test_netting_ratios_fails_report_and_payments(day, viewer):
    client = client_for(viewer)
    ratios = client.get(
        "/api/v1/settlement/netting-ratios/", {"date_from": "2026-11-27", "date_to": "2026-11-27"}
    ).json()
    assert ratios == [
        {"settle_date": "2026-11-27", "obligations": 3, "instructions": 2, "ratio": "1.5000"}
    ]
    fails = client.get("/api/v1/settlement/fails/", {"as_of": "2026-11-30"}).json()
    assert [(f["instrument"], f["age"], f["bucket"], f["penalties"]) for f in fails] == [
        (AAPL, 2, "2-3", "2.32")  # 50 x 231.40 = 11,570.00 x 1 bp = 1.157 -> 1.16 x 2
    ]
    report = client.get("/api/v1/settlement/fails/report/", {"as_of": "2026-11-30"}).json()
    assert (report["open_fails"], report["penalties_to_date"]) == (1, {"USD": "2.32"})
    payments = client.get("/api/v1/settlement/payments/", {"kind": "SETTLEMENT"}).json()
    (payment,) = payments["results"]
    assert (payment["amount"], payment["debtor"], payment["creditor"], payment["status"]) == (
        "5000.00",
        "ACC-0001",
        "CP-NRTH",
        "ACSC",
    )


def test_a_viewer_cannot_act_on_a_break(day, viewer):
    b = Break.objects.get()
    response = client_for(viewer).post(f"/api/v1/settlement/breaks/{b.pk}/accept/", {"reason": "x"})
    assert response.status_code == 403
    assert response.json()["detail"] == NOT_ALLOWED.format(role="operations")


def test_the_break_workflow_over_the_api(day, analyst):
    client = client_for(analyst)
    (listed,) = client.get("/api/v1/settlement/breaks/", {"category": "QUANTITY"}).json()["results"]
    assert (listed["asset"], listed["difference"], listed["status"]) == (AAPL, "-10.000000", "OPEN")
    url = f"/api/v1/settlement/breaks/{listed['id']}"
    assert client.post(f"{url}/assign/", {"owner": "analyst"}).json()["owner"] == "analyst"
    assert client.get("/api/v1/settlement/breaks/", {"owner": "analyst"}).json()["count"] == 1
    assert client.post(f"{url}/comment/", {"text": "asking the custodian"}).status_code == 201
    refused = client.post(f"{url}/accept/", {"reason": " "})
    assert refused.status_code == 400
    resolved = client.post(f"{url}/resolve/", {"reason": "receipt booked late"}).json()
    assert (resolved["amount"], resolved["value_date"]) == ("10.000000", "2026-11-27")
    again = client.post(f"{url}/accept/", {"reason": "too late"})
    assert again.status_code == 409
    assert again.json()["detail"] == BREAK_CLOSED.format(
        break_id=listed["id"], status="resolved with a correcting entry"
    )
    detail = client.get(f"{url}/").json()
    assert [h["action"] for h in detail["history"]] == [
        "break_opened",
        "break_assigned",
        "break_commented",
        "break_resolved",
    ]
    assert detail["comments"][0]["text"] == "asking the custodian"
    assert detail["correction"]["reference"] == f"BRK-{listed['id']}"
