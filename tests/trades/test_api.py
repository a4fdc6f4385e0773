"""The trades API: token auth, roles, filters, keyset pages, detail, idempotent submission."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backoffice.audit.models import AuditEntry
from backoffice.roles import NOT_ALLOWED
from backoffice.streaming import topics
from backoffice.streaming.envelope import decode
from backoffice.streaming.models import OutboxEvent
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import Record, apply_batch
from tests.ui.factories import INBOUND, NOW, Capture, demo_users, trade_payload, varied_payloads
from trades.api import INVALID_CURSOR
from trades.idempotency import KEY_INVALID, KEY_MISSING, KEY_REUSED, submission_event_id
from trades.models import IdempotencyKey, Trade
from trades.serializers import DECIMAL_AS_STRING, REQUIRED, UNKNOWN_ACCOUNT, UNKNOWN_FIELD
from trades.stage import handle_capture

pytestmark = pytest.mark.django_db

TRADES = "/api/v1/trades/"
# the token's user, the user's groups, one page of heads, their versions
LIST_QUERIES = 4


@pytest.fixture
def capture(db):
    call_command("load_reference_data", verbosity=0)
    return Capture()


@pytest.fixture
def users(db):
    return demo_users()


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def viewer(users):
    return api(users["viewer"])


@pytest.fixture
def analyst(users):
    return api(users["analyst"])


def submit(client, payload, key="key-1", **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        TRADES, data=json.dumps(payload), content_type="application/json", **headers, **extra
    )


def executed_rows():
    return list(
        OutboxEvent.objects.filter(topic=topics.topic(topics.TRADES_EXECUTED)).order_by("id")
    )


# --- reading ---------------------------------------------------------------------------------


def test_a_request_without_credentials_is_401(db):
    response = api().get(TRADES)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_viewer_lists_trades_with_their_current_economics(viewer, capture):
    capture(trade_payload("T1"), trade_payload("T2", side="SELL"))
    capture(trade_payload("T1", 2, "AMEND", quantity="150"))
    response = viewer.get(TRADES)
    assert response.status_code == 200
    rows = {row["trade_id"]: row for row in response.json()["results"]}
    assert rows["T1"]["version"] == 2
    assert rows["T1"]["quantity"] == "150.000000"
    assert rows["T1"]["net_amount"] == "34710.00"
    assert rows["T1"]["url"] == "/api/v1/trades/T1/"
    assert (rows["T2"]["side"], rows["T2"]["book"]) == ("SELL", "EQ-US")


def test_the_list_filters_like_the_blotter(viewer, capture):
    capture(*varied_payloads(9, prefix="A"))
    ids = [r["trade_id"] for r in viewer.get(TRADES, {"account": "ACC-0003"}).json()["results"]]
    assert ids == ["A00008", "A00005", "A00002"]
    ids = [
        r["trade_id"]
        for r in viewer.get(TRADES, {"q": "A0000", "instrument": "US5949181045"}).json()["results"]
    ]
    assert ids == ["A00007", "A00004", "A00001"]


def test_a_bad_filter_is_a_400_with_the_field_error(viewer, capture):
    response = viewer.get(TRADES, {"trade_date_from": "yesterday"})
    assert response.status_code == 400
    assert response.json() == {"trade_date_from": ["Enter a valid date."]}


def test_pages_follow_a_keyset_cursor_without_gaps_or_repeats(viewer, capture):
    capture(*varied_payloads(7, prefix="K"))
    seen, url = [], TRADES + "?page_size=3"
    while url:
        page = viewer.get(url).json()
        seen += [r["trade_id"] for r in page["results"]]
        url = page["next"]
    assert seen == [f"K{n:05d}" for n in reversed(range(7))]


def test_a_forged_cursor_is_a_400(viewer, capture):
    response = viewer.get(TRADES, {"cursor": "bm90LWFuLWlk"})
    assert (response.status_code, response.json()) == (400, {"cursor": [INVALID_CURSOR]})


def test_a_page_costs_the_same_queries_for_3_or_150_trades(
    viewer, capture, django_assert_num_queries
):
    capture(*varied_payloads(3, prefix="Q"))
    with django_assert_num_queries(LIST_QUERIES):
        assert viewer.get(TRADES, {"page_size": 100}).status_code == 200
    capture(*varied_payloads(150, prefix="R"))
    with django_assert_num_queries(LIST_QUERIES):
        assert len(viewer.get(TRADES, {"page_size": 100}).json()["results"]) == 100


def test_the_detail_has_every_version_and_refusal(viewer, capture):
    capture(trade_payload("T1"))
    capture(trade_payload("T1", 2, "AMEND", quantity="150"))
    capture(trade_payload("T1"))  # a redelivered NEW: refused
    body = viewer.get(f"{TRADES}T1/").json()
    assert body["trade"]["current_version"] == 2
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert body["versions"][1]["quantity"] == "150.000000"
    assert [(r["version"], r["reason"]) for r in body["refusals"]] == [(1, "DUPLICATE")]


def test_an_unknown_trade_is_a_404(viewer, db):
    response = viewer.get(f"{TRADES}NOPE/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No trade 'NOPE': it may not have been captured yet."}


# --- submitting ------------------------------------------------------------------------------


def test_a_viewer_may_not_submit_a_trade(viewer, capture):
    response = submit(viewer, trade_payload("T1"))
    assert response.status_code == 403
    assert response.json() == {"detail": NOT_ALLOWED.format(role="operations")}
    assert executed_rows() == []


def test_a_submitted_trade_is_published_raw_once_with_a_stable_event_id(analyst, users, capture):
    payload = trade_payload("API-1")
    response = submit(analyst, payload, key="order-77")
    assert response.status_code == 202
    event_id = submission_event_id(user_id=users["analyst"].pk, key="order-77")
    assert response.json() == {
        "trade_id": "API-1",
        "trade_version": 1,
        "action": "NEW",
        "status": "accepted",
        "event_id": str(event_id),
        "url": "/api/v1/trades/API-1/",
    }
    assert response["Location"] == "/api/v1/trades/API-1/"
    [row] = executed_rows()
    assert json.loads(bytes(row.value)) == payload  # the bare inbound contract, no envelope
    assert (bytes(row.key), row.event_id, row.headers["event_id"]) == (
        b"ACC-0001",
        event_id,
        str(event_id),
    )
    audit = AuditEntry.objects.get(object_type="trade", object_id="API-1")
    assert (audit.action, audit.actor_name) == ("trade.submitted", "analyst")


def test_a_retry_with_the_same_key_and_body_gets_the_first_response(analyst, capture):
    first = submit(analyst, trade_payload("API-2"), key="k-2")
    reordered = dict(reversed(list(trade_payload("API-2").items())))  # same body, other key order
    again = submit(analyst, reordered, key="k-2")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert (first["Idempotent-Replayed"], again["Idempotent-Replayed"]) == ("false", "true")
    assert len(executed_rows()) == 1
    assert IdempotencyKey.objects.count() == 1


def test_the_same_key_with_another_body_is_a_409(analyst, capture):
    submit(analyst, trade_payload("API-3"), key="k-3")
    response = submit(analyst, trade_payload("API-3", quantity="101"), key="k-3")
    assert response.status_code == 409
    assert response.json() == {"detail": KEY_REUSED}
    assert len(executed_rows()) == 1


def test_keys_belong_to_their_user(analyst, users, capture):
    other = api(users["approver"])
    submit(analyst, trade_payload("API-4"), key="shared")
    assert submit(other, trade_payload("API-5"), key="shared").status_code == 202
    assert len(executed_rows()) == 2


def test_a_missing_or_malformed_key_is_a_400(analyst, capture):
    missing = submit(analyst, trade_payload("API-6"), key=None)
    assert (missing.status_code, missing.json()) == (400, {"Idempotency-Key": [KEY_MISSING]})
    bad = submit(analyst, trade_payload("API-6"), key="has space")
    assert (bad.status_code, bad.json()) == (400, {"Idempotency-Key": [KEY_INVALID]})
    assert executed_rows() == []


def test_a_bad_body_is_a_400_naming_every_bad_field(analyst, capture):
    payload = trade_payload("API-7", quantity=100, side="HOLD", colour="red")
    del payload["venue"]
    response = submit(analyst, payload)
    assert response.status_code == 400
    errors = response.json()
    assert errors["quantity"] == [DECIMAL_AS_STRING]
    assert errors["venue"] == [REQUIRED]
    assert errors["colour"] == [UNKNOWN_FIELD]
    assert errors["side"] == ["Value must be one of ['BUY', 'SELL']"]
    assert executed_rows() == []
    assert IdempotencyKey.objects.count() == 0


def test_unknown_reference_data_is_a_400_not_a_dead_letter_later(analyst, capture):
    response = submit(analyst, trade_payload("API-8", account="ACC-NOPE", currency="EUR"))
    assert response.status_code == 400
    assert response.json() == {
        "account": [UNKNOWN_ACCOUNT.format(value="ACC-NOPE")],
        "currency": ["The instrument trades in USD, not EUR."],
    }


def test_a_body_that_is_not_an_object_is_a_400(analyst, capture):
    response = analyst.post(
        TRADES, data="[1, 2]", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_the_capture_stage_applies_a_submitted_trade(analyst, capture):
    submit(analyst, trade_payload("API-9"), key="k-9")
    [row] = executed_rows()
    headers = [(name, value.encode()) for name, value in row.headers.items()]
    message = decode(
        subscription=INBOUND,
        partition=0,
        offset=0,
        key=bytes(row.key),
        value=bytes(row.value),
        headers=headers,
        registry=registry(),
    )
    record = Record(
        "trades.executed", 0, 0, bytes(row.key), bytes(row.value), headers, message=message
    )
    apply_batch(
        stage="capture", group="api-test", handler=handle_capture, records=[record], now=NOW
    )
    assert Trade.objects.get(trade_id="API-9").current_version == 1
    assert message.event_id == uuid.UUID(row.headers["event_id"])


def test_the_openapi_schema_and_docs_page_describe_the_trades_api(users, client):
    schema = api(users["viewer"]).get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    paths = json.loads(schema.content)["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/trades/"])
    assert "/api/v1/trades/{trade_id}/" in paths
    client.force_login(users["viewer"])
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert b"Idempotency-Key" in page.content
