"""The exception queue's REST API: reads, the four-eyes actions, and every refusal's status."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from compliance import errors
from compliance.models import ComplianceException, RestrictedInstrument
from tests.compliance.conftest import AAPL, NOW, captured, sap, validated

BASE = "/api/v1/exceptions/"


@pytest.fixture
def exceptions(feed) -> list[ComplianceException]:
    """Two OPEN exceptions: T1 (ACC-0001, EQ-US) and E1 (ACC-0007, EQ-EU)."""
    RestrictedInstrument.objects.create(isin=AAPL, reason="MNPI", added_by="cco", added_at=NOW)
    feed(captured("T1"), sap("E1", settle_date="2026-11-28"))
    return list(ComplianceException.objects.order_by("trade_id"))


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def url(exception, action: str = "") -> str:
    return f"{BASE}{exception.pk}/{action + '/' if action else ''}"


def test_the_queue_lists_exceptions_with_filters_and_pagination(exceptions, viewer):
    client = client_for(viewer)

    everything = client.get(BASE).json()
    assert everything["count"] == 2
    assert {e["trade_id"] for e in everything["results"]} == {"T1", "E1"}
    assert [e["trade_id"] for e in client.get(BASE, {"book": "EQ-EU"}).json()["results"]] == ["E1"]
    assert [e["trade_id"] for e in client.get(BASE, {"account": "ACC-0001"}).json()["results"]] == [
        "T1"
    ]
    assert client.get(BASE, {"status": "APPROVED"}).json()["count"] == 0
    page = client.get(BASE, {"limit": 1}).json()
    assert (len(page["results"]), page["next"] is not None) == (1, True)


def test_an_unknown_status_filter_is_a_400_with_the_field_named(exceptions, viewer):
    response = client_for(viewer).get(BASE, {"status": "LOST"})
    assert response.status_code == 400
    assert "status" in response.json()


def test_the_detail_shows_the_payload_evaluations_and_proposals(exceptions, analyst):
    t1 = exceptions[1]
    client = client_for(analyst)
    client.post(url(t1, "propose"), {"action": "REJECT", "reason": "MNPI"}, format="json")

    body = client.get(url(t1)).json()

    assert (body["trade_id"], body["status"], body["failed_rules"]) == (
        "T1",
        "OPEN",
        ["RESTRICTED_LIST"],
    )
    assert body["payload"]["trade_id"] == "T1"
    failed = [e for e in body["evaluations"] if not e["passed"]]
    assert [e["code"] for e in failed] == ["RESTRICTED_LIST"]
    assert {tuple(e) for e in body["evaluations"]} == {
        ("rule_id", "code", "passed", "detail", "evaluated_at")
    }
    assert [(p["action"], p["status"], p["proposed_by_name"]) for p in body["proposals"]] == [
        ("REJECT", "ACTIVE", "analyst")
    ]


def test_propose_then_confirm_by_another_user_approves(exceptions, analyst, approver):
    t1 = exceptions[1]
    proposed = client_for(analyst).post(
        url(t1, "propose"), {"action": "APPROVE", "reason": "client order"}, format="json"
    )
    assert proposed.status_code == 201
    assert proposed.json()["status"] == "ACTIVE"

    confirmed = client_for(approver).post(url(t1, "confirm"))

    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "APPROVED"
    assert validated()[0]["compliance"]["approved_by"] == ["analyst", "approver"]


def test_the_maker_confirming_their_own_proposal_gets_a_403_with_the_message(exceptions, approver):
    t1 = exceptions[1]
    client = client_for(approver)
    client.post(url(t1, "propose"), {"action": "APPROVE", "reason": "ok"}, format="json")

    response = client.post(url(t1, "confirm"))

    assert response.status_code == 403
    assert response.json() == {"detail": errors.MAKER_CANNOT_CONFIRM}


def test_an_operations_user_confirming_gets_a_403_naming_the_role(exceptions, analyst):
    response = client_for(analyst).post(url(exceptions[1], "confirm"))
    assert response.status_code == 403
    assert response.json() == {
        "detail": "You are not allowed to do this: it needs the approver role."
    }


def test_a_viewer_proposing_or_an_outsider_reading_gets_a_403(exceptions, viewer, users):
    proposed = client_for(viewer).post(
        url(exceptions[1], "propose"), {"action": "APPROVE", "reason": "x"}, format="json"
    )
    assert proposed.status_code == 403
    assert client_for(users["outsider"]).get(BASE).status_code == 403


def test_bad_input_is_a_400_with_field_errors(exceptions, analyst):
    response = client_for(analyst).post(
        url(exceptions[1], "propose"), {"action": "ESCALATE", "reason": "  "}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"action", "reason"}


def test_a_second_proposal_or_a_confirm_without_one_is_a_409(exceptions, analyst, approver):
    t1 = exceptions[1]
    assert client_for(approver).post(url(t1, "confirm")).status_code == 409
    client_for(analyst).post(
        url(t1, "propose"), {"action": "APPROVE", "reason": "a"}, format="json"
    )

    response = client_for(approver).post(
        url(t1, "propose"), {"action": "REJECT", "reason": "b"}, format="json"
    )

    assert response.status_code == 409
    assert response.json() == {
        "detail": errors.PROPOSAL_PENDING.format(action="APPROVE", maker="analyst")
    }


def test_withdraw_by_the_maker_and_refusal_for_anyone_else(exceptions, analyst, approver):
    t1 = exceptions[1]
    client_for(analyst).post(
        url(t1, "propose"), {"action": "APPROVE", "reason": "a"}, format="json"
    )

    other = client_for(approver).post(url(t1, "withdraw"))
    mine = client_for(analyst).post(url(t1, "withdraw"))

    assert other.status_code == 403
    assert (mine.status_code, mine.json()["status"]) == (200, "WITHDRAWN")


def test_an_unknown_exception_is_a_404_everywhere(reference, analyst, approver):
    assert client_for(analyst).get(f"{BASE}999/").status_code == 404
    missing = client_for(analyst).post(
        f"{BASE}999/propose/", {"action": "APPROVE", "reason": "a"}, format="json"
    )
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "No compliance exception with id 999."},
    )
    assert client_for(approver).post(f"{BASE}999/confirm/").status_code == 404


def test_no_credentials_is_a_401_and_a_token_is_accepted(exceptions, viewer):
    assert APIClient().get(BASE).status_code == 401
    token = Token.objects.create(user=viewer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(BASE).status_code == 200
