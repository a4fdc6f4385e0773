"""Browser test of the break workflow: an analyst takes an open break from the list to RESOLVED.

The break is made as production makes one: our settled books and a custodian statement that
disagrees, fed through the reconciliation stage (``tests.settlement.conftest.Feed``).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.management import call_command

from backoffice.audit.models import AuditEntry
from settlement.models import Break, BreakComment, BreakCorrection, SettlementMovement
from settlement.reference import reference_clear
from settlement.services.recon import BREAK_OBJECT
from settlement.stages import handle_reconciliation
from tests.settlement.conftest import AAPL, Feed, statement
from tests.settlement.test_stage_reconciliation import book
from tests.ui.test_browser import browser, log_in, page, people, shot  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_break(db) -> Iterator[Break]:
    """Books hold 600 AAPL; the custodian reports 610: a QUANTITY break, difference -10."""
    call_command("load_reference_data", verbosity=0)
    reference_clear()
    book(AAPL, "600")
    Feed("reconciliation", handle_reconciliation).statements(
        statement(positions=[(AAPL, "610", "231.40", "USD")])
    )
    yield Break.objects.get()
    reference_clear()


def test_an_analyst_assigns_comments_and_resolves_a_break(page, open_break):  # noqa: F811
    log_in(page, "analyst", goto="/settlement/breaks/")
    shot(page, "breaks")
    page.click(f"a[data-testid=break-link]:text-is('{open_break.pk}')")
    page.wait_for_url(f"**/settlement/breaks/{open_break.pk}/")
    assert page.inner_text("[data-testid=break-status]") == "OPEN"

    page.select_option("select[name=owner]", "analyst")  # yourself
    page.click("[data-testid=assign]")
    page.wait_for_selector("[data-testid=break-status]:text-is('ASSIGNED')")
    assert page.inner_text("[data-testid=owner]") == "analyst"

    page.fill("textarea[name=text]", "Custodian shows 10 more: a receipt we never booked.")
    page.click("[data-testid=comment]")
    page.wait_for_selector("[data-testid=comments] >> text=a receipt we never booked")

    page.fill("#amount", "10")
    page.fill("#resolve-reason", "Book the missed receipt of 10 AAPL.")
    page.click("[data-testid=resolve]")
    page.wait_for_selector("[data-testid=break-status]:text-is('RESOLVED')")
    shot(page, "break-resolved")

    b = Break.objects.get(pk=open_break.pk)
    assert (b.status, b.owner) == ("RESOLVED", "analyst")
    assert BreakComment.objects.filter(break_record=b).count() == 1
    correction = BreakCorrection.objects.get(break_record=b)
    assert (correction.amount, correction.author) == (Decimal(10), "analyst")
    assert SettlementMovement.objects.filter(
        source="CORRECTION", reference=correction.reference, amount=Decimal(10)
    ).exists()
    assert page.inner_text("[data-testid=correction] td.mono") == correction.reference

    steps = list(
        AuditEntry.objects.filter(object_type=BREAK_OBJECT, object_id=str(b.pk))
        .order_by("id")
        .values_list("action", "actor_name")
    )
    assert steps == [
        ("break_opened", "system"),
        ("break_assigned", "analyst"),
        ("break_commented", "analyst"),
        ("break_resolved", "analyst"),
    ]
    shown = page.eval_on_selector_all(
        "[data-testid=history] tr", "rows => rows.map(r => r.dataset.action)"
    )
    assert shown == [action for action, _ in steps]
