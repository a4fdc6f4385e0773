"""The reporting API and the P&L CSV: filters, live versus snapshot, history, margin, roles."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from rest_framework.test import APIClient

from backoffice.roles import NOT_ALLOWED
from reporting.services import eod_snapshot_create
from reporting.views import BAD_DATE
from tests.reporting.helpers import AAPL, MSFT, price, run, validated

pytestmark = pytest.mark.django_db

D1, D2 = date(2024, 12, 19), date(2024, 12, 20)
NOW = datetime(2024, 12, 20, 23, 0, tzinfo=UTC)


@pytest.fixture
def book(instruments):
    run(
        validated("A1", quantity="100", price="200.00", time="2024-12-19T14:31:00Z"),
        validated("B1", account="ACC-0002", instrument=MSFT, quantity="10", price="400.00",
                  time="2024-12-19T15:00:00Z"),
        price(AAPL, "205.00", as_of="2024-12-19T21:00:00Z"),
    )  # fmt: skip
    eod_snapshot_create(business_date=D1, now=NOW)
    run(
        validated("A2", side="SELL", quantity="40", price="210.00", time="2024-12-20T14:31:00Z"),
        price(AAPL, "212.00", as_of="2024-12-20T21:00:00Z"),
    )
    eod_snapshot_create(business_date=D2, now=NOW)


@pytest.fixture
def viewer_client(users) -> APIClient:
    client = APIClient()
    client.force_authenticate(users["viewer"])
    return client


def test_positions_can_be_filtered_by_account_book_and_instrument(book, viewer_client):
    everything = viewer_client.get("/api/v1/reporting/positions/").json()
    mine = viewer_client.get("/api/v1/reporting/positions/", {"account": "ACC-0001"}).json()
    by_instrument = viewer_client.get("/api/v1/reporting/positions/", {"instrument": MSFT}).json()

    assert [(p["account"], p["instrument"]) for p in everything] == [
        ("ACC-0001", AAPL),
        ("ACC-0002", MSFT),
    ]
    assert [(p["quantity"], p["realized"], p["mark_price"]) for p in mine] == [
        ("60.000000", "400.00", "212.00000000")
    ]
    assert [p["account"] for p in by_instrument] == ["ACC-0002"]
    assert viewer_client.get("/api/v1/reporting/positions/", {"book": "EQ-EU"}).json() == []


def test_pnl_is_live_without_a_date_and_the_snapshot_with_one(book, viewer_client):
    live = viewer_client.get("/api/v1/reporting/pnl/", {"account": "ACC-0001"}).json()
    day_one = viewer_client.get("/api/v1/reporting/pnl/", {"date": "2024-12-19"}).json()

    assert (live["source"], live["rows"][0]["quantity"]) == ("live", "60.000000")
    assert day_one["source"] == "snapshot"
    assert [r["quantity"] for r in day_one["rows"]] == ["100.000000", "10.000000"]
    # Both accounts are in book EQ-US: one total in USD, 500 on AAPL, 0 on MSFT (at cost).
    assert day_one["totals"] == [
        {
            "group": "EQ-US",
            "base_currency": "USD",
            "base_market_value": "24500.00",
            "base_realized": "0.00",
            "base_unrealized": "500.00",
            "base_fees": "0.00",
            "base_net_realized": "0.00",
            "base_total": "500.00",
        }
    ]


def test_pnl_history_gives_each_dates_total_and_its_change(book, viewer_client):
    history = viewer_client.get(
        "/api/v1/reporting/pnl/history/", {"by": "account", "account": "ACC-0001"}
    ).json()

    # D1: 100 x (205 - 200) = 500; D2: 40 x 10 realized + 60 x 12 unrealized = 1 120.
    assert [(h["business_date"], h["base_total"], h["day_change"]) for h in history] == [
        ("2024-12-19", "500.00", None),
        ("2024-12-20", "1120.00", "620.00"),
    ]


def test_margin_is_each_accounts_latest_unless_a_date_is_given(book, viewer_client):
    latest = viewer_client.get("/api/v1/reporting/margin/").json()
    day_one = viewer_client.get("/api/v1/reporting/margin/", {"date": "2024-12-19"}).json()
    calls = viewer_client.get("/api/v1/reporting/margin-calls/", {"account": "ACC-0001"}).json()

    assert [(m["account"], m["business_date"]) for m in latest] == [
        ("ACC-0001", "2024-12-20"),
        ("ACC-0002", "2024-12-20"),
    ]
    assert {m["business_date"] for m in day_one} == {"2024-12-19"}
    assert latest[0]["exposure_by_asset_class"] == {
        "EQUITY": {"gross": "12720.00", "net": "12720.00"}
    }
    assert [c["business_date"] for c in calls] == ["2024-12-20", "2024-12-19"]


def test_a_bad_date_is_refused_with_the_field_named(book, viewer_client):
    response = viewer_client.get("/api/v1/reporting/pnl/", {"date": "20-12-2024"})

    assert response.status_code == 400
    assert "date" in response.json()


def test_reading_needs_the_viewer_role(book, users):
    client = APIClient()
    client.force_authenticate(users["outsider"])

    response = client.get("/api/v1/reporting/positions/")

    assert response.status_code == 403
    assert response.json()["detail"] == NOT_ALLOWED.format(role="viewer")
    assert APIClient().get("/api/v1/reporting/pnl/").status_code in (401, 403)


def test_the_pnl_csv_has_one_row_per_position_with_exact_amounts(book, users, client):
    client.force_login(users["viewer"])

    response = client.get("/reporting/pnl.csv", {"date": "2024-12-20", "book": "EQ-US"})

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="pnl-2024-12-20.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["business_date"], r["account"], r["total"]) for r in rows] == [
        ("2024-12-20", "ACC-0001", "1120.00"),
        ("2024-12-20", "ACC-0002", "0.00"),
    ]


def test_the_live_pnl_csv_and_a_bad_date(book, users, client):
    client.force_login(users["viewer"])

    live = client.get("/reporting/pnl.csv", {"account": "ACC-0002"})
    bad = client.get("/reporting/pnl.csv", {"date": "yesterday"})

    rows = list(csv.DictReader(io.StringIO(b"".join(live.streaming_content).decode())))
    assert [(r["business_date"], r["instrument"]) for r in rows] == [("live", MSFT)]
    assert (bad.status_code, bad.content.decode()) == (400, BAD_DATE.format(value="yesterday"))
