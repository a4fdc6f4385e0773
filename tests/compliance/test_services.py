"""Four-eyes decisions on exceptions: propose, confirm, withdraw, and what each refuses."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from backoffice.audit.models import AuditEntry
from backoffice.roles import NOT_ALLOWED
from backoffice.streaming.envelope import EVENT_NAMESPACE
from backoffice.streaming.models import OutboxEvent
from compliance import errors
from compliance.ledger import LastPrice
from compliance.models import (
    ComplianceException,
    ComplianceTrade,
    ReferencePrice,
    RestrictedInstrument,
)
from compliance.services import (
    exception_confirm,
    exception_propose,
    exception_withdraw,
    reference_prices_record,
    restricted_instrument_add,
    restricted_instrument_remove,
)
from tests.compliance.conftest import AAPL, NOW, captured, rejected, validated


@pytest.fixture
def exception(feed) -> ComplianceException:
    """T1 v1 waiting in an OPEN exception because AAPL is restricted."""
    RestrictedInstrument.objects.create(isin=AAPL, reason="MNPI", added_by="cco", added_at=NOW)
    feed(captured("T1"))
    return ComplianceException.objects.get()


def at(hour: int) -> datetime:
    return datetime(2026, 11, 25, hour, 0, tzinfo=UTC)


def propose(exception, actor, action="APPROVE", reason="client order, desk head agreed"):
    return exception_propose(
        exception_id=exception.pk, actor=actor, action=action, reason=reason, now=NOW
    )


def confirm(exception, actor):
    return exception_confirm(exception_id=exception.pk, actor=actor, now=NOW)


def test_an_approval_by_a_second_person_validates_the_trade_with_both_names(
    exception, analyst, approver
):
    propose(exception, analyst)
    decided = confirm(exception, approver)

    assert decided.status == "APPROVED"
    [event] = validated()
    assert event["trade_version"] == 1
    assert event["compliance"] == {
        "outcome": "APPROVED",
        "exception_id": exception.pk,
        "approved_by": ["analyst", "approver"],
        "override_reason": "client order, desk head agreed",
    }
    trade = ComplianceTrade.objects.get()
    assert (trade.status, trade.validated_version) == ("VALIDATED", 1)
    entry = AuditEntry.objects.get(action="compliance.exception.confirm")
    assert (entry.actor_name, entry.object_id, entry.reason) == (
        "approver",
        str(exception.pk),
        "client order, desk head agreed",
    )
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["status"], entry.after["status"]) == ("OPEN", "APPROVED")


def test_the_decision_event_has_an_id_derived_from_the_exception(exception, analyst, approver):
    propose(exception, analyst)
    confirm(exception, approver)

    event = OutboxEvent.objects.get(topic__endswith="trades.validated")
    assert event.event_id == uuid.uuid5(
        EVENT_NAMESPACE, f"compliance.exception|{exception.pk}|decision"
    )


def test_a_rejection_emits_trades_rejected_and_the_trade_never_takes_effect(
    exception, analyst, approver
):
    propose(exception, analyst, action="REJECT", reason="restricted: MNPI")
    confirm(exception, approver)

    assert validated() == []
    [event] = rejected()
    assert event["exception_id"] == exception.pk
    assert event["rejected_by"] == ["analyst", "approver"]
    assert (event["reason"], event["failed_rules"]) == ("restricted: MNPI", ["RESTRICTED_LIST"])
    assert ComplianceTrade.objects.get().status == "REJECTED"


def test_the_maker_can_never_confirm_their_own_proposal(exception, approver, approver2):
    propose(exception, approver)

    with pytest.raises(errors.Forbidden) as refused:
        confirm(exception, approver)
    assert refused.value.message == errors.MAKER_CANNOT_CONFIRM
    assert (
        refused.value.message == "You proposed this decision; a different approver must confirm it."
    )
    assert confirm(exception, approver2).status == "APPROVED"
    assert validated()[0]["compliance"]["approved_by"] == ["approver", "approver2"]


def test_an_operations_user_cannot_confirm(exception, analyst, approver):
    propose(exception, approver)
    with pytest.raises(errors.Forbidden) as refused:
        confirm(exception, analyst)
    assert refused.value.message == NOT_ALLOWED.format(role="approver")


def test_a_viewer_cannot_propose(exception, viewer):
    with pytest.raises(errors.Forbidden) as refused:
        propose(exception, viewer)
    assert refused.value.message == "You are not allowed to do this: it needs the operations role."


def test_a_pending_proposal_is_never_replaced(exception, analyst, approver):
    propose(exception, analyst)
    with pytest.raises(errors.Conflict) as refused:
        propose(exception, approver, action="REJECT")
    assert refused.value.message == errors.PROPOSAL_PENDING.format(
        action="APPROVE", maker="analyst"
    )


def test_a_blank_reason_or_an_unknown_action_is_refused(exception, analyst):
    with pytest.raises(errors.Invalid) as blank:
        propose(exception, analyst, reason="   ")
    assert blank.value.message == errors.REASON_REQUIRED == "A reason is required."
    with pytest.raises(errors.Invalid) as unknown:
        propose(exception, analyst, action="ESCALATE")
    assert unknown.value.message == "Unknown action 'ESCALATE': expected APPROVE or REJECT."


def test_confirming_without_a_proposal_or_twice_is_a_conflict(exception, analyst, approver):
    with pytest.raises(errors.Conflict) as nothing:
        confirm(exception, approver)
    assert nothing.value.message == errors.NO_ACTIVE_PROPOSAL
    propose(exception, analyst)
    confirm(exception, approver)
    with pytest.raises(errors.Conflict) as twice:
        confirm(exception, approver)
    assert (
        twice.value.message == "This exception is APPROVED; only an OPEN exception can be decided."
    )


def test_an_unknown_exception_is_not_found(reference, analyst):
    with pytest.raises(errors.NotFound) as missing:
        exception_propose(exception_id=999, actor=analyst, action="APPROVE", reason="x", now=NOW)
    assert missing.value.message == "No compliance exception with id 999."


def test_the_maker_withdraws_and_someone_else_may_then_propose(exception, analyst, approver):
    propose(exception, analyst)
    with pytest.raises(errors.Forbidden) as refused:
        exception_withdraw(exception_id=exception.pk, actor=approver, now=NOW)
    assert refused.value.message == "Only analyst, who proposed this decision, can withdraw it."

    withdrawn = exception_withdraw(exception_id=exception.pk, actor=analyst, now=NOW)

    assert (withdrawn.status, withdrawn.resolved_by_name) == ("WITHDRAWN", "analyst")
    assert propose(exception, approver, action="REJECT").status == "ACTIVE"
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor_name"))
    assert actions == [
        ("compliance.exception.propose", "analyst"),
        ("compliance.exception.withdraw", "analyst"),
        ("compliance.exception.propose", "approver"),
    ]


def test_approving_an_amend_of_a_validated_trade_puts_the_new_version_in_force(
    feed, analyst, approver
):
    feed(captured("T1"))
    RestrictedInstrument.objects.create(isin=AAPL, reason="MNPI", added_by="cco", added_at=NOW)
    feed(captured("T1", 2, quantity="90"))
    exception = ComplianceException.objects.get()

    propose(exception, analyst)
    confirm(exception, approver)

    assert [(e["trade_version"], e["compliance"]["outcome"]) for e in validated()] == [
        (1, "PASSED"),
        (2, "APPROVED"),
    ]
    assert ComplianceTrade.objects.get().validated_version == 2


def test_after_a_rejected_amend_the_old_version_stays_in_force_and_a_cancel_reaches_it(
    feed, analyst, approver
):
    feed(captured("T1"))
    RestrictedInstrument.objects.create(isin=AAPL, reason="MNPI", added_by="cco", added_at=NOW)
    feed(captured("T1", 2, quantity="90"))
    exception = ComplianceException.objects.get()
    propose(exception, analyst, action="REJECT")
    confirm(exception, approver)
    trade = ComplianceTrade.objects.get()
    assert (trade.status, trade.validated_version) == ("REJECTED", 1)

    feed(captured("T1", 3, "CANCEL"))

    assert [(e["trade_version"], e["action"]) for e in validated()] == [(1, "NEW"), (3, "CANCEL")]


def test_an_exception_superseded_by_an_amend_can_no_longer_be_decided(
    feed, exception, analyst, approver
):
    propose(exception, analyst)
    feed(captured("T1", 2, quantity="90"))
    with pytest.raises(errors.Conflict) as refused:
        confirm(exception, approver)
    assert (
        refused.value.message
        == "This exception is SUPERSEDED; only an OPEN exception can be decided."
    )


@pytest.mark.django_db(transaction=True)
def test_two_approvers_confirming_at_once_give_exactly_one_outcome(
    exception, analyst, approver, approver2
):
    propose(exception, analyst)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(actor):
        try:
            barrier.wait()
            outcomes[actor.username] = confirm(exception, actor).status
        except errors.Conflict as conflict:
            outcomes[actor.username] = conflict.message
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(a,)) for a in (approver, approver2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == [
        "APPROVED",
        "This exception is APPROVED; only an OPEN exception can be decided.",
    ]
    assert len(validated()) == 1
    assert AuditEntry.objects.filter(action="compliance.exception.confirm").count() == 1


def test_a_later_market_data_price_replaces_a_trade_price_and_an_earlier_one_does_not(feed):
    feed(captured("T1", price="100.00"))  # trade time 15:00
    reference_prices_record(
        prices={AAPL: LastPrice(Decimal("99.00"), "USD", at(14))}, source="MARKET_DATA", now=NOW
    )
    assert ReferencePrice.objects.get().price == Decimal("100.00")

    reference_prices_record(
        prices={AAPL: LastPrice(Decimal("102.50"), "USD", at(16))}, source="MARKET_DATA", now=NOW
    )
    held = ReferencePrice.objects.get()
    assert (held.price, held.source, held.as_of) == (Decimal("102.50"), "MARKET_DATA", at(16))


def test_restricting_and_releasing_an_instrument_is_audited(reference, analyst):
    restricted_instrument_add(isin=AAPL, reason="MNPI", actor=analyst, now=NOW)
    assert restricted_instrument_remove(isin=AAPL, actor=analyst, reason="deal public", now=NOW)
    assert not restricted_instrument_remove(isin=AAPL, actor=analyst, reason="again", now=NOW)

    actions = list(AuditEntry.objects.order_by("id").values_list("action", "reason"))
    assert actions == [
        ("compliance.restricted.add", "MNPI"),
        ("compliance.restricted.remove", "deal public"),
    ]
