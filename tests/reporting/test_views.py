"""The reporting pages: positions, P&L (live, per date, totals, chart), margin, roles, exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from backoffice.roles import NOT_ALLOWED
from reporting.models import PnlSnapshot
from reporting.services import eod_snapshot_create
from reporting.views import IN_POSITION, OUT_OF_POSITION, position_items
from tests.reporting.helpers import AAPL, MSFT, SAP, price, run, validated

pytestmark = pytest.mark.django_db

D1, D2 = date(2024, 12, 19), date(2024, 12, 20)
NOW = datetime(2024, 12, 20, 23, 0, tzinfo=UTC)


@pytest.fixture
def book(reference):
    run(
        validated("A1", quantity="1000", price="200.00", time="2024-12-19T14:31:00Z"),
        validated("B1", account="ACC-0002", instrument=MSFT, quantity="10", price="400.00",
                  time="2024-12-19T15:00:00Z"),
        price(AAPL, "205.00", as_of="2024-12-19T21:00:00Z"),
    )  # fmt: skip
    eod_snapshot_create(business_date=D1, now=NOW)
    run(
        validated("A2", side="SELL", quantity="400", price="210.00", time="2024-12-20T14:31:00Z"),
        price(AAPL, "190.00", as_of="2024-12-20T21:00:00Z"),
    )
    eod_snapshot_create(business_date=D2, now=NOW)


@pytest.fixture
def viewer(client, users):
    client.force_login(users["viewer"])
    return client


def csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_positions_page_shows_money_with_separators_and_filters(book, viewer):
    everything = viewer.get("/reporting/")
    mine = viewer.get("/reporting/", {"account": "ACC-0002"})

    page = everything.content.decode()
    assert everything.status_code == 200
    # 600 left at an average cost of 200, marked at 190: -6,000 unrealized, +4,000 realized.
    assert "114,000.00" in page  # market value
    assert "-6,000.00" in page
    assert "4,000.00" in page
    assert "200.0000" in page  # average cost
    assert AAPL in page
    assert MSFT in page
    assert MSFT in mine.content.decode()
    assert AAPL not in mine.content.decode().split("<tbody>")[1]


def test_the_positions_download_has_every_row_with_exact_amounts(book, viewer):
    response = viewer.get("/reporting/", {"export": "csv", "book": "EQ-US"})

    rows = csv_rows(response)
    assert [(r["Account"], r["Quantity"], r["Avg cost"], r["Unrealized"]) for r in rows] == [
        ("ACC-0001", "600.000000", "200", "-6000.00"),
        ("ACC-0002", "10.000000", "400", "0.00"),
    ]
    xlsx = viewer.get("/reporting/", {"export": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in next(sheet.iter_rows(min_row=2, max_row=2))][:3] == [
        "EQ-US",
        "ACC-0001",
        AAPL,
    ]


def test_the_pnl_page_shows_a_dates_snapshot_with_totals_and_a_chart(book, viewer):
    response = viewer.get("/reporting/pnl/", {"date": "2024-12-19"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "P&amp;L at close of 2024-12-19" in page
    totals = page.split('data-testid="pnl-totals"')[1].split("</table>")[0]
    # Day one: 1000 x (205 - 200) on AAPL, MSFT at cost.
    assert "EQ-US" in totals
    assert "5,000.00" in totals
    chart = page.split('data-testid="pnl-chart"')[1]
    assert "<svg" in chart
    assert "EQ-US (USD)" in chart


def test_the_pnl_page_is_live_without_a_date_and_totals_by_account(book, viewer):
    response = viewer.get("/reporting/pnl/", {"group": "account"})

    page = response.content.decode()
    assert "P&amp;L live" in page
    totals = page.split('data-testid="pnl-totals"')[1].split("</table>")[0]
    assert "ACC-0001" in totals
    assert "ACC-0002" in totals
    assert "-2,000.00" in totals  # ACC-0001: 4,000 realized - 6,000 unrealized


def test_the_pnl_download_is_the_snapshot_of_the_date_and_book(book, viewer):
    response = viewer.get(
        "/reporting/pnl/", {"date": "2024-12-20", "book": "EQ-US", "export": "csv"}
    )

    rows = csv_rows(response)
    expected = PnlSnapshot.objects.filter(business_date=D2, book="EQ-US").order_by(
        "book", "account", "instrument"
    )
    assert response["Content-Disposition"] == 'attachment; filename="pnl-2024-12-20.csv"'
    assert [(r["business_date"], r["account"], Decimal(r["total"])) for r in rows] == [
        ("2024-12-20", s.account, s.total) for s in expected
    ]
    assert len(rows) == 2


def test_the_pnl_page_filters_by_instrument(book, viewer):
    response = viewer.get("/reporting/pnl/", {"date": "2024-12-20", "instrument": MSFT,
                                              "export": "csv"})  # fmt: skip

    assert [r["instrument"] for r in csv_rows(response)] == [MSFT]


def test_a_bad_date_on_the_pnl_page_is_reported_on_the_field(book, viewer):
    response = viewer.get("/reporting/pnl/", {"date": "yesterday"})

    assert response.status_code == 200
    assert "Enter a valid date." in response.content.decode()


def test_the_margin_page_shows_deficits_and_margin_calls(book, viewer):
    response = viewer.get("/reporting/margin/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "badge-failed" in page
    assert "DEFICIT" in page
    calls = page.split('data-testid="margin-calls"')[1]
    assert "ACC-0001" in calls
    assert "2024-12-20" in calls
    assert "2024-12-19" in calls


def test_the_margin_and_margin_calls_download(book, viewer):
    margin = csv_rows(viewer.get("/reporting/margin/", {"export": "csv", "date": "2024-12-19"}))
    calls = csv_rows(
        viewer.get("/reporting/margin/", {"export": "csv", "table": "calls", "account": "ACC-0001"})
    )

    assert {r["Date"] for r in margin} == {"2024-12-19"}
    assert [r["Status"] for r in margin if r["Account"] == "ACC-0001"] == ["DEFICIT"]
    assert [(r["Account"], r["Date"]) for r in calls] == [
        ("ACC-0001", "2024-12-20"),
        ("ACC-0001", "2024-12-19"),
    ]


@pytest.mark.parametrize("path", ["/reporting/", "/reporting/pnl/", "/reporting/margin/"])
def test_every_page_needs_the_viewer_role(path, book, client, users):
    client.force_login(users["outsider"])

    response = client.get(path)

    assert response.status_code == 403
    assert NOT_ALLOWED.format(role="viewer") in response.content.decode()


def more_positions(count: int) -> None:
    run(*(
        validated(f"X{n}", account=f"ACC-000{n % 3 + 1}", book="EQ-EU", instrument=SAP,
                  quantity=str(n + 1), price="100.00", time="2024-12-20T10:00:00Z")
        for n in range(count)
    ))  # fmt: skip
    eod_snapshot_create(business_date=D2, now=NOW)


@pytest.mark.parametrize(
    ("path", "queries"),
    [
        ("/reporting/?book=EQ-US", 8),
        ("/reporting/pnl/?date=2024-12-20", 9),
        ("/reporting/margin/", 6),
    ],
)
def test_pages_cost_a_fixed_number_of_queries(
    path, queries, book, viewer, django_assert_num_queries
):
    with django_assert_num_queries(queries):
        viewer.get(path)
    more_positions(3)
    with django_assert_num_queries(queries):
        viewer.get(path)


def test_the_trade_timeline_names_the_position_and_restatements(book):
    run(validated("A1", version=2, quantity="900", price="200.00", time="2024-12-19T14:31:00Z"))
    run(validated("B1", version=2, action="CANCEL", account="ACC-0002", instrument=MSFT,
                  quantity="10", price="400.00", time="2024-12-19T15:00:00Z"))  # fmt: skip

    (amended,) = position_items("A1")
    (cancelled,) = position_items("B1")

    names = {"account": "ACC-0001", "instrument": AAPL, "book": "EQ-US", "method": "FIFO"}
    assert amended.what == IN_POSITION.format(**names)
    assert "v2 restated the position" in amended.detail
    assert "position now 500 held" in amended.detail
    assert cancelled.what == OUT_OF_POSITION.format(
        account="ACC-0002", instrument=MSFT, book="EQ-US"
    )
    assert position_items("NOPE") == []
