"""The break workflow: assign, comment, resolve with a correcting entry, accept — all audited."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from backoffice.audit.models import AuditEntry
from settlement.models import Break, BreakComment, BreakCorrection, SettlementMovement
from settlement.selectors import break_history, holdings
from settlement.services import (
    BreakActionError,
    break_accept,
    break_assign,
    break_comment,
    break_resolve,
)
from settlement.services import breaks as service
from settlement.services.breaks import (
    BREAK_CHANGED,
    BREAK_CLOSED,
    COMMENT_REQUIRED,
    NOT_CORRECTABLE,
    OWNER_UNKNOWN,
    REASON_REQUIRED,
)
from tests.settlement.conftest import AAPL, NOW, statement
from tests.settlement.test_stage_reconciliation import book

D = Decimal
pytestmark = pytest.mark.django_db
LATER = NOW + timedelta(hours=1)


@pytest.fixture
def quantity_break(reconcile) -> Break:
    """Books hold 600 AAPL; the custodian reports 610 -> QUANTITY break, difference -10."""
    book(AAPL, "600")
    reconcile.statements(statement(positions=[(AAPL, "610", "231.40", "USD")]))
    return Break.objects.get()


def test_assign_sets_the_owner_and_is_audited(quantity_break, analyst, analyst2):
    b = break_assign(break_id=quantity_break.pk, owner="analyst2", actor=analyst, now=LATER)
    assert (b.status, b.owner) == ("ASSIGNED", "analyst2")
    entry = AuditEntry.objects.get(action="break_assigned")
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.actor_name, entry.before["owner"], entry.after["owner"]) == (
        "analyst",
        "",
        "analyst2",
    )
    # Reassigning is allowed while the break is open.
    assert (
        break_assign(break_id=b.pk, owner="analyst", actor=analyst2, now=LATER).owner == "analyst"
    )


def test_assign_to_an_unknown_user_is_refused(quantity_break, analyst):
    with pytest.raises(BreakActionError) as error:
        break_assign(break_id=quantity_break.pk, owner="nobody", actor=analyst, now=LATER)
    assert str(error.value) == OWNER_UNKNOWN.format(owner="nobody", break_id=quantity_break.pk)
    assert not AuditEntry.objects.filter(action="break_assigned").exists()


def test_comments_are_kept_and_audited(quantity_break, analyst):
    break_comment(
        break_id=quantity_break.pk, text="  custodian checking  ", actor=analyst, now=LATER
    )
    assert list(BreakComment.objects.values_list("author", "text")) == [
        ("analyst", "custodian checking")
    ]
    with pytest.raises(BreakActionError, match=COMMENT_REQUIRED):
        break_comment(break_id=quantity_break.pk, text=" ", actor=analyst, now=LATER)
    assert [e.action for e in break_history(quantity_break.pk)] == [
        "break_opened",
        "break_commented",
    ]


def test_resolve_books_a_correcting_entry_and_the_date_then_reconciles(
    quantity_break, analyst, reconcile
):
    correction = break_resolve(
        break_id=quantity_break.pk, reason="late receipt booked", actor=analyst, now=LATER
    )
    assert (correction.amount, correction.value_date, correction.asset) == (
        D("10"),
        date(2026, 11, 27),
        AAPL,
    )
    movement = SettlementMovement.objects.get(source="CORRECTION")
    assert (movement.reference, movement.amount) == (f"BRK-{quantity_break.pk}", D("10"))
    assert holdings(account="ACC-0001", as_of=date(2026, 11, 27)) == {("SECURITY", AAPL): D("610")}
    b = Break.objects.get()
    assert (b.status, b.resolution) == ("RESOLVED", "late receipt booked")
    entry = AuditEntry.objects.get(action="break_resolved")
    assert entry.after is not None
    assert entry.after["correction"] == {"reference": f"BRK-{b.pk}", "amount": "10.000000"}
    assert entry.reason == "late receipt booked"
    # The same statement again: books now agree, nothing reopens.
    reconcile.statements(statement(positions=[(AAPL, "610", "231.40", "USD")], revision=2))
    assert list(Break.objects.values_list("status", flat=True)) == ["RESOLVED"]


def test_accept_needs_a_reason_and_books_nothing(quantity_break, analyst):
    with pytest.raises(BreakActionError, match=REASON_REQUIRED):
        break_accept(break_id=quantity_break.pk, reason="", actor=analyst, now=LATER)
    b = break_accept(
        break_id=quantity_break.pk, reason="custodian error, ticket 42", actor=analyst, now=LATER
    )
    assert (b.status, b.resolution, b.closed_at) == (
        "ACCEPTED",
        "custodian error, ticket 42",
        LATER,
    )
    assert not SettlementMovement.objects.filter(source="CORRECTION").exists()
    assert AuditEntry.objects.get(action="break_accepted").reason == "custodian error, ticket 42"


def test_a_closed_break_cannot_be_changed(quantity_break, analyst):
    break_accept(break_id=quantity_break.pk, reason="known", actor=analyst, now=LATER)
    expected = BREAK_CLOSED.format(break_id=quantity_break.pk, status="accepted")
    with pytest.raises(BreakActionError) as error:
        break_resolve(break_id=quantity_break.pk, reason="fix", actor=analyst, now=LATER)
    assert str(error.value) == expected
    with pytest.raises(BreakActionError):
        break_assign(break_id=quantity_break.pk, owner="analyst", actor=analyst, now=LATER)
    assert not BreakCorrection.objects.exists()


def test_of_two_analysts_acting_at_once_one_wins(quantity_break, analyst, analyst2):
    # analyst2 accepts after analyst read the break; analyst's resolve sees the change.
    stale = Break.objects.get()
    break_accept(break_id=stale.pk, reason="known", actor=analyst2, now=LATER)
    with pytest.raises(BreakActionError) as error:
        service._swap(stale, status="RESOLVED", closed_at=LATER)
    assert str(error.value) == BREAK_CHANGED.format(break_id=stale.pk)
    assert Break.objects.get().status == "ACCEPTED"


def test_valuation_and_timing_breaks_are_not_corrected_by_an_entry(reconcile, analyst):
    book(AAPL, "600")
    reconcile.statements(statement(positions=[(AAPL, "600", "250.00", "USD")]))
    b = Break.objects.get()
    assert b.category == "VALUATION"
    with pytest.raises(BreakActionError) as error:
        break_resolve(break_id=b.pk, reason="x", actor=analyst, now=LATER)
    assert str(error.value) == NOT_CORRECTABLE.format(category="Valuation")


def test_history_lists_every_step_in_order(quantity_break, analyst):
    break_assign(break_id=quantity_break.pk, owner="analyst", actor=analyst, now=LATER)
    break_comment(break_id=quantity_break.pk, text="looking", actor=analyst, now=LATER)
    break_accept(break_id=quantity_break.pk, reason="known", actor=analyst, now=LATER)
    assert [(e.action, e.actor_name) for e in break_history(quantity_break.pk)] == [
        ("break_opened", "system"),
        ("break_assigned", "analyst"),
        ("break_commented", "analyst"),
        ("break_accepted", "analyst"),
    ]
