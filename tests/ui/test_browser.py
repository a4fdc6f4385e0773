"""Browser tests: Playwright drives Debian's Chromium against the live app.

They log in through the real login form and click through the pages as an operations analyst or
a viewer would. Data is made through the real capture stage (``tests.ui.factories``). Set
``UI_SCREENSHOTS=<dir>`` to keep a screenshot of each page visited.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from openpyxl import load_workbook

from backoffice.audit.models import AuditEntry
from backoffice.roles import NOT_ALLOWED
from backoffice.streaming.models import DeadLetter
from tests.ui.factories import Capture, dead_letter, demo_users, trade_payload, varied_payloads
from trades.models import Trade, TradeVersion

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROWS = "table.grid tbody tr[data-trade-id]"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"browser tests need Debian's Chromium at {CHROMIUM}: run scripts/setup.sh")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("browser tests need the playwright package: run scripts/setup.sh")
    # Playwright's sync API keeps an event loop in this thread; Django would then refuse the
    # (synchronous) ORM calls the tests make, so that check is off while the browser runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def people(settings) -> dict[str, Any]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins
    return demo_users(passwords=True)


@pytest.fixture
def page(browser, live_server, people) -> Iterator[Any]:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1440, "height": 900}, accept_downloads=True
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


@pytest.fixture
def capture() -> Capture:
    call_command("load_reference_data", verbosity=0)
    return Capture()


def shot(page, name: str) -> None:
    folder = os.environ.get("UI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def log_in(page, username: str, goto: str = "/") -> None:
    page.goto(goto)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"demo-{username}")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=username]")
    assert page.inner_text("[data-testid=username]") == username


def shown_trade_ids(page) -> list[str]:
    return page.eval_on_selector_all(ROWS, "rows => rows.map(r => r.dataset.tradeId)")


def test_an_analyst_logs_in_filters_the_blotter_and_opens_a_trade(page, capture):
    capture(*varied_payloads(12, prefix="B"))
    capture(trade_payload("B00004", 2, "AMEND", account="ACC-0002", quantity="777"))

    log_in(page, "analyst", goto="/trades/")  # sent to log in, then back to the blotter
    assert page.url.endswith("/trades/")
    assert len(shown_trade_ids(page)) == 12
    shot(page, "blotter")

    page.select_option("select[name=account]", "ACC-0002")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**account=ACC-0002**")
    assert sorted(shown_trade_ids(page)) == ["B00001", "B00004", "B00007", "B00010"]

    page.fill("input[name=q]", "B0000")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**q=B0000**")
    assert sorted(shown_trade_ids(page)) == ["B00001", "B00004", "B00007"]

    page.click("a:text-is('B00004')")
    page.wait_for_url("**/trades/B00004/")
    timeline = page.inner_text("[data-testid=timeline]")
    assert "Captured v1 (new)" in timeline
    assert "Captured v2 (amend)" in timeline
    assert page.inner_text("[data-testid=net-amount]") == "179,797.80 USD"  # 777 x 231.40
    shot(page, "trade")


def expected_rows(account: str) -> dict[str, tuple[str, Decimal, Decimal]]:
    rows = {}
    for trade in Trade.objects.filter(account=account):
        version = TradeVersion.objects.get(trade_id=trade.trade_id, version=trade.current_version)
        rows[trade.trade_id] = (trade.status, version.quantity, version.net_amount)
    return rows


def test_the_blotter_csv_and_xlsx_downloads_match_the_database(page, capture, tmp_path):
    capture(*varied_payloads(60, prefix="D"))  # more than a page: downloads hold every row
    capture(trade_payload("D00000", 2, "CANCEL", account="ACC-0001"))
    log_in(page, "viewer")
    page.goto("/trades/?account=ACC-0001&per_page=25")
    expected = expected_rows("ACC-0001")
    assert len(expected) == 20

    with page.expect_download() as csv_download:
        page.click("[data-testid=export-csv]")
    text = Path(csv_download.value.path()).read_text(encoding="utf-8")
    lines = list(csv.DictReader(io.StringIO(text)))
    got = {
        line["Trade ID"]: (line["Status"], Decimal(line["Quantity"]), Decimal(line["Net amount"]))
        for line in lines
    }
    assert got == expected
    assert got["D00000"][0] == "CANCELLED"

    with page.expect_download() as xlsx_download:
        page.click("[data-testid=export-xlsx]")
    saved = tmp_path / xlsx_download.value.suggested_filename
    assert saved.suffix == ".xlsx"
    xlsx_download.value.save_as(saved)
    sheet = load_workbook(saved).active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    col = {name: header.index(name) for name in header}
    got = {
        r[col["Trade ID"]]: (
            r[col["Status"]],
            Decimal(str(r[col["Quantity"]])),
            Decimal(str(r[col["Net amount"]])),
        )
        for r in rows
    }
    assert got == expected


def test_a_viewer_trying_to_replay_a_dead_letter_sees_the_not_allowed_page(page):
    letter = dead_letter(3)
    log_in(page, "viewer")
    page.goto(f"/dead-letters/{letter.pk}/")
    page.click("[data-testid=replay]")
    page.wait_for_selector("[data-testid=not-allowed]")
    assert NOT_ALLOWED.format(role="operations") in page.inner_text("[data-testid=not-allowed]")
    shot(page, "not-allowed")
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.NEW


def test_operations_replays_a_dead_letter_and_it_is_audited(page):
    letter = dead_letter(4)
    log_in(page, "analyst")
    page.goto("/dead-letters/")
    page.click(f"a:text-is('{letter.pk}')")
    assert "unknown account 'ACC-MISSING'" in page.inner_text("[data-testid=reason]")
    shot(page, "dead-letter")
    page.click("[data-testid=replay]")
    page.fill("textarea[name=reason]", "account ACC-MISSING opened")
    page.click("[data-testid=confirm]")
    page.wait_for_selector("[data-testid=dead-letter-status]:text-is('Replayed')")
    assert "was replayed to trades.executed" in page.inner_text("ul.messages")
    assert "account ACC-MISSING opened" in page.inner_text("[data-testid=history]")
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.REPLAYED
    entry = AuditEntry.objects.get(object_type="dead_letter", object_id=str(letter.pk))
    assert (entry.actor_name, entry.action) == ("analyst", "dead_letter.replayed")
