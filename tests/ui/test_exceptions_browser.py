"""Browser test of the exception queue: four eyes, through the real login form and pages.

The analyst proposes approving an OPEN exception, is refused when trying to confirm it
themselves, logs out; the approver logs in and confirms it; the exception shows APPROVED and
its trades.validated event waits in the outbox. The exception is built with the compliance
app's own helpers (a restricted instrument, one captured trade fed through the real stage).
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from compliance import errors
from compliance.models import ComplianceException, RestrictedInstrument
from tests.compliance.conftest import AAPL, NOW, Feed, captured, rules_seed, validated
from tests.ui import test_browser as ui

# The browser suite's fixtures: one Chromium per module, demo users with passwords, a tab.
browser, people, page = ui.browser, ui.people, ui.page
log_in, shot = ui.log_in, ui.shot

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REASON = "Client order confirmed with the desk head; MNPI wall cleared"


@pytest.fixture
def open_exception() -> ComplianceException:
    call_command("load_reference_data", verbosity=0)
    rules_seed()
    RestrictedInstrument.objects.create(isin=AAPL, reason="MNPI", added_by="cco", added_at=NOW)
    Feed()(captured("T-BROWSER-1", quantity="1250"))
    exception = ComplianceException.objects.get()
    assert exception.status == "OPEN"
    return exception


def log_out(page) -> None:
    page.click("form[action='/logout/'] button[type=submit]")
    page.wait_for_selector("input[name=username]")


def test_an_analyst_proposes_and_a_different_approver_confirms(page, open_exception):
    detail = f"/compliance/{open_exception.pk}/"
    log_in(page, "analyst")
    card = page.locator(".card", has_text="Open exceptions")
    assert card.locator(".value").inner_text() == "1"  # the compliance app's dashboard card
    assert "1 awaiting" not in card.inner_text()
    shot(page, "dashboard-exceptions-card")
    card.locator("a").click()
    page.wait_for_url("**/compliance/")
    row = page.locator(f"tr[data-exception-id='{open_exception.pk}']")
    assert "OPEN" in row.inner_text().upper()
    assert "289,250.00 USD" in row.inner_text()  # 1250 x 231.40
    shot(page, "exceptions-queue")

    row.locator(f"a:text-is('{open_exception.pk}')").click()
    page.wait_for_url(f"**{detail}")
    assert "RESTRICTED_LIST" in page.inner_text("[data-testid=rules]")
    page.click("[data-testid=propose-approve]")
    page.wait_for_url("**/propose/?action=APPROVE")
    page.fill("textarea[name=reason]", REASON)
    shot(page, "exceptions-propose")
    page.click("[data-testid=submit]")
    page.wait_for_url(f"**{detail}")
    assert REASON in page.inner_text("[data-testid=awaiting]")
    assert errors.MAKER_CANNOT_CONFIRM in page.inner_text("[data-testid=maker-note]")
    shot(page, "exception-proposed")

    page.click("[data-testid=confirm]")  # shown locked: following it explains why
    page.wait_for_url("**/confirm/")
    assert page.inner_text("[data-testid=refusal]") == errors.MAKER_CANNOT_CONFIRM
    shot(page, "exception-maker-refused")
    open_exception.refresh_from_db()
    assert open_exception.status == "OPEN"
    assert validated() == []

    log_out(page)
    log_in(page, "approver", goto=detail)
    page.click("[data-testid=confirm]")
    page.wait_for_url("**/confirm/")
    shot(page, "exception-confirm")
    page.click("[data-testid=submit]")
    page.wait_for_url(f"**{detail}")
    assert page.inner_text("[data-testid=exception-status]").upper() == "APPROVED"
    assert "compliance.exception.confirm" in page.inner_text("[data-testid=history]")
    shot(page, "exception-approved")

    open_exception.refresh_from_db()
    assert open_exception.status == "APPROVED"
    [event] = validated()
    assert event["trade_id"] == "T-BROWSER-1"
    assert event["compliance"]["exception_id"] == open_exception.pk
    assert event["compliance"]["approved_by"] == ["analyst", "approver"]
    assert event["compliance"]["override_reason"] == REASON
