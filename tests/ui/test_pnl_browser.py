"""Browser test of the P&L page: pick a date and book, download the CSV, compare with the database.

Positions and end-of-day snapshots are made through the reporting stage's own handler and
service (``tests.reporting.helpers``, ``eod_snapshot_create``), then Chromium reads the page as
the viewer would. ``UI_SCREENSHOTS=<dir>`` keeps a screenshot of each reporting page.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from reporting.api import BOOKED
from reporting.models import PnlSnapshot
from reporting.services import eod_snapshot_create
from tests.reporting.helpers import AAPL, MSFT, SAP, price, run, validated
from tests.ui.test_browser import browser, log_in, page, people, shot  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

D1, D2 = date(2024, 12, 19), date(2024, 12, 20)
NOW = datetime(2024, 12, 20, 23, 0, tzinfo=UTC)
NUMERIC = {"quantity", "mark_price", "fx_rate_to_base"} | {
    name for name in BOOKED if name.endswith(("value", "basis", "realized", "fees", "total"))
}


@pytest.fixture
def snapshots() -> None:
    """Two books over two business dates, one position losing money."""
    call_command("load_reference_data", verbosity=0)
    run(
        validated("P1", quantity="1000", price="200.00", fees="12.50",
                  time="2024-12-19T14:31:00Z"),
        validated("P2", account="ACC-0002", instrument=MSFT, quantity="250", price="400.00",
                  time="2024-12-19T15:00:00Z"),
        validated("P3", account="ACC-0007", book="EQ-EU", instrument=SAP, quantity="80",
                  price="180.00", time="2024-12-19T09:00:00Z"),
        price(AAPL, "205.00", as_of="2024-12-19T21:00:00Z"),
        price(MSFT, "395.50", as_of="2024-12-19T21:00:00Z"),
        price(SAP, "181.00", as_of="2024-12-19T17:30:00Z"),
    )  # fmt: skip
    eod_snapshot_create(business_date=D1, now=NOW)
    run(
        validated("P4", side="SELL", quantity="400", price="210.00", time="2024-12-20T14:31:00Z"),
        price(AAPL, "190.00", as_of="2024-12-20T21:00:00Z"),
        price(MSFT, "410.25", as_of="2024-12-20T21:00:00Z"),
    )
    eod_snapshot_create(business_date=D2, now=NOW)


def test_the_pnl_csv_downloaded_from_the_page_matches_the_snapshot(page, snapshots):  # noqa: F811
    log_in(page, "viewer", goto="/reporting/pnl/")
    assert "P&L live" in page.inner_text("h1")
    assert page.locator("[data-testid=pnl-chart] svg").count() == 1
    shot(page, "reporting-pnl-live")

    page.fill("input[name=date]", "2024-12-20")
    page.select_option("select[name=book]", "EQ-US")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**date=2024-12-20**")
    assert "P&L at close of 2024-12-20" in page.inner_text("h1")
    totals = page.inner_text("[data-testid=pnl-totals]")
    assert "EQ-US" in totals
    assert "EQ-EU" not in totals
    shot(page, "reporting-pnl-date")

    with page.expect_download() as download:
        page.click("[data-testid=export-csv]")
    assert download.value.suggested_filename == "pnl-2024-12-20.csv"
    text = Path(download.value.path()).read_text(encoding="utf-8")
    header, *lines = list(csv.reader(io.StringIO(text)))

    expected = list(
        PnlSnapshot.objects.filter(business_date=D2, book="EQ-US").order_by(
            "book", "account", "instrument"
        )
    )
    assert header == ["business_date", *BOOKED]
    assert len(lines) == len(expected) == 2
    for line, snapshot in zip(lines, expected, strict=True):
        got = dict(zip(header, line, strict=True))
        assert got["business_date"] == "2024-12-20"
        for name in BOOKED:
            want = getattr(snapshot, name)
            if name in NUMERIC:
                # Exact to the stored scale: "-6000.00", not "-6,000" or a float.
                assert got[name] == format(want, "f"), name
                assert Decimal(got[name]) == want
            else:
                assert got[name] == str(want), name


def test_the_positions_and_margin_pages_render_for_a_viewer(page, snapshots):  # noqa: F811
    log_in(page, "viewer", goto="/reporting/")
    assert page.locator("table[data-testid=booked] tbody tr").count() == 3
    assert "-6,000.00" in page.inner_text("table[data-testid=booked]")
    shot(page, "reporting-positions")

    page.click("a.btn:text-is('Margin')")
    page.wait_for_url("**/reporting/margin/")
    assert page.locator("table[data-testid=margin] tbody tr").count() == 3
    shot(page, "reporting-margin")
