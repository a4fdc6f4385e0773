"""The trade blotter and the trade page: filters, sorting, exports, timeline, query counts."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape
from openpyxl import load_workbook

from tests.ui.factories import Capture, demo_users, trade_payload, varied_payloads
from trades import selectors_timeline
from trades.models import Trade, TradeVersion
from trades.selectors_blotter import for_page, trade_list
from trades.selectors_timeline import TimelineItem
from trades.views import TRADE_NOT_FOUND

pytestmark = pytest.mark.django_db

BLOTTER = "/trades/"
# session, user, the user's groups, three filter choice lists, one page of heads, their versions
BLOTTER_QUERIES = 8
# session, user, groups, head, versions, refusals, timeline: versions, refusals, audit
# capture (versions, refusals, audit) + one query per other app's timeline source
TRADE_PAGE_QUERIES = 12


@pytest.fixture
def capture(db):
    call_command("load_reference_data", verbosity=0)
    return Capture()


@pytest.fixture
def users(db):
    return demo_users()


@pytest.fixture
def analyst(client, users):
    client.force_login(users["analyst"])
    return client


def trade_ids(response) -> list[str]:
    return [row.record.trade.trade_id for row in response.context["table"].paginated_rows]


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get(BLOTTER)
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/trades/"


def test_the_blotter_shows_each_trade_once_at_its_current_version(analyst, capture):
    capture(trade_payload("T1"), trade_payload("T2", quantity="50"))
    capture(trade_payload("T1", 2, "AMEND", quantity="150"))
    response = analyst.get(BLOTTER)
    assert response.status_code == 200
    rows = {
        row.record.trade.trade_id: row.record for row in response.context["table"].paginated_rows
    }
    assert sorted(rows) == ["T1", "T2"]
    assert (rows["T1"].trade.current_version, rows["T1"].version.quantity) == (2, 150)
    assert b"Trade blotter" in response.content


def test_the_blotter_filters_by_account_status_date_and_trade_id_prefix(analyst, capture):
    capture(*varied_payloads(9, prefix="A"))
    capture(trade_payload("B1", trade_date="2026-11-24", trade_time="2026-11-24T15:00:00Z"))
    capture(trade_payload("A00000", 2, "CANCEL", account="ACC-0001"))

    assert trade_ids(analyst.get(BLOTTER, {"account": "ACC-0002"})) == [
        "A00007",
        "A00004",
        "A00001",
    ]
    assert trade_ids(analyst.get(BLOTTER, {"status": "CANCELLED"})) == ["A00000"]
    assert trade_ids(analyst.get(BLOTTER, {"q": "B"})) == ["B1"]
    assert trade_ids(analyst.get(BLOTTER, {"trade_date_to": "2026-11-24"})) == ["B1"]
    assert len(trade_ids(analyst.get(BLOTTER, {"trade_date_from": "2026-11-25"}))) == 9


def test_an_invalid_filter_shows_its_error_and_no_rows(analyst, capture):
    capture(trade_payload("T1"))
    response = analyst.get(BLOTTER, {"account": "NOPE"})
    assert trade_ids(response) == []
    assert b"Select a valid choice" in response.content


def test_sorting_works_on_indexed_columns_only(analyst, capture):
    capture(*varied_payloads(4, prefix="S"))
    assert trade_ids(analyst.get(BLOTTER, {"sort": "trade_id"})) == [
        "S00000",
        "S00001",
        "S00002",
        "S00003",
    ]
    # book has no index: the request is ignored and the default order (latest change) stays
    default = trade_ids(analyst.get(BLOTTER))
    assert trade_ids(analyst.get(BLOTTER, {"sort": "book"})) == default


def test_the_blotter_pages_without_counting(analyst, capture):
    capture(*varied_payloads(30, prefix="P"))
    first = analyst.get(BLOTTER, {"per_page": 25, "sort": "trade_id"})
    second = analyst.get(BLOTTER, {"per_page": 25, "sort": "trade_id", "page": 2})
    assert trade_ids(first) == [f"P{n:05d}" for n in range(25)]
    assert trade_ids(second) == [f"P{n:05d}" for n in range(25, 30)]
    assert b'rel="next"' in first.content
    assert b'rel="next"' not in second.content


def test_the_blotter_costs_the_same_queries_for_5_or_120_trades(
    analyst, capture, django_assert_num_queries
):
    capture(*varied_payloads(5, prefix="Q"))
    with django_assert_num_queries(BLOTTER_QUERIES):
        analyst.get(BLOTTER, {"per_page": 100})
    capture(*varied_payloads(120, prefix="R"))
    with django_assert_num_queries(BLOTTER_QUERIES):
        analyst.get(BLOTTER, {"per_page": 100})


def db_rows(trade_ids: list[str]) -> dict[str, tuple]:
    rows = {}
    for trade in Trade.objects.filter(trade_id__in=trade_ids):
        version = TradeVersion.objects.get(trade_id=trade.trade_id, version=trade.current_version)
        rows[trade.trade_id] = (
            trade.status,
            trade.account,
            version.quantity,
            version.price,
            version.net_amount,
            trade.trade_date,
        )
    return rows


def test_the_csv_export_holds_every_filtered_trade_with_exact_values(analyst, capture):
    capture(*varied_payloads(75, prefix="C"))  # more than a page: the export is not paginated
    capture(trade_payload("C00000", 2, "AMEND", quantity="1234.5", fees="1.10"))
    response = analyst.get(BLOTTER, {"account": "ACC-0001", "export": "csv"})
    assert response["Content-Disposition"].startswith('attachment; filename="trades-')
    lines = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = db_rows(
        list(Trade.objects.filter(account="ACC-0001").values_list("trade_id", flat=True))
    )
    assert len(lines) == len(expected) == 25
    for line in lines:
        status, account, quantity, price, net, trade_date = expected[line["Trade ID"]]
        assert (line["Status"], line["Account"], line["Trade date"]) == (
            status,
            account,
            trade_date.isoformat(),
        )
        assert Decimal(line["Quantity"]) == quantity
        assert Decimal(line["Price"]) == price
        assert line["Net amount"] == format(net, "f")  # exact, never through float
    amended = next(line for line in lines if line["Trade ID"] == "C00000")
    assert (amended["Ver"], amended["Fees"]) == ("2", "1.10")


def test_the_xlsx_export_matches_the_database(analyst, capture):
    capture(*varied_payloads(12, prefix="X"))
    response = analyst.get(BLOTTER, {"export": "xlsx", "sort": "trade_id"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    column = {name: header.index(name) for name in header}
    expected = db_rows([f"X{n:05d}" for n in range(12)])
    assert [r[column["Trade ID"]] for r in rows] == sorted(expected)
    for row in rows:
        status, _, quantity, _, net, _ = expected[row[column["Trade ID"]]]
        assert row[column["Status"]] == status
        assert Decimal(str(row[column["Quantity"]])) == quantity
        assert Decimal(str(row[column["Net amount"]])) == net


def test_the_trade_page_shows_every_version_refusal_and_the_timeline(analyst, capture):
    capture(trade_payload("T9"))
    capture(trade_payload("T9", 2, "AMEND", quantity="250"))
    capture(trade_payload("T9"))  # the NEW again: refused as a duplicate
    response = analyst.get("/trades/T9/")
    assert response.status_code == 200
    page = response.content.decode()
    assert [v.version for v, _, _ in response.context["versions"]] == [2, 1]
    assert response.context["versions"][0][1] == [
        "action",
        "quantity",
        "gross amount",
        "net amount",
    ]
    whats = [item.what for item in response.context["timeline"]]
    assert whats == [
        "Executed on XNAS",
        "Captured v1 (new)",
        "Captured v2 (amend)",
        "Refused v1 (duplicate version)",
    ]
    assert "Duplicate version" in page
    assert "57,850.00" in page  # 250 x 231.40


def test_an_unknown_trade_is_a_404_that_says_so(analyst, db):
    response = analyst.get("/trades/NOPE-1/")
    assert response.status_code == 404
    assert escape(TRADE_NOT_FOUND.format(trade_id="NOPE-1")) in response.content.decode()


def test_the_trade_page_costs_a_fixed_number_of_queries(
    analyst, capture, django_assert_num_queries
):
    capture(trade_payload("T5"))
    for version in range(2, 8):
        capture(trade_payload("T5", version, "AMEND", quantity=str(100 + version)))
    with django_assert_num_queries(TRADE_PAGE_QUERIES):
        analyst.get("/trades/T5/")


def test_another_app_adds_to_the_timeline_without_touching_trades(analyst, capture, monkeypatch):
    capture(trade_payload("T7"))

    def approvals(trade_id):
        return [TimelineItem(at=capture_time(trade_id), stage="compliance", what="Approved by bob")]

    monkeypatch.setitem(selectors_timeline._SOURCES, "compliance", approvals)
    response = analyst.get("/trades/T7/")
    assert response.context["timeline"][-1].what == "Approved by bob"
    assert "Approved by bob" in response.content.decode()


def capture_time(trade_id):
    return TradeVersion.objects.get(trade_id=trade_id).captured_at


def test_query_capture_helper_sees_the_page_queries(analyst, capture):
    # Guards the counts above: they are measured on the real page, not an empty one.
    capture(trade_payload("T3"))
    with CaptureQueriesContext(connection) as queries:
        analyst.get(BLOTTER)
    assert any("trades_tradeversion" in q["sql"] for q in queries.captured_queries)


def test_a_selective_filter_is_read_through_its_own_index(capture):
    # Estimated matches decide the plan (see selectors_blotter.for_page): few -> sort them.
    capture(*varied_payloads(3, prefix="F"))
    everything = trade_list()
    assert for_page(everything) is everything  # no filter: walk the order's index
    for few in (everything.filter(account="ACC-0001"), everything.filter(trade_id__startswith="F")):
        sql = str(for_page(few).query)
        assert (
            'ORDER BY COALESCE("trades_trade"."updated_at", "trades_trade"."updated_at") DESC'
            in sql
        )
