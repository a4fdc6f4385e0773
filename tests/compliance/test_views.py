"""The exception queue UI: list, filters, exports, detail, four-eyes actions, card, timeline."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from backoffice.audit.models import AuditEntry
from backoffice.roles import NOT_ALLOWED
from compliance import errors
from compliance.models import ComplianceException, ExceptionProposal, RestrictedInstrument
from compliance.rules import DEFAULT_RULES
from compliance.views import compliance_timeline, open_exceptions_card
from tests.compliance.conftest import AAPL, NOW, captured, sap, validated
from trades.selectors_timeline import BAD, timeline_sources

QUEUE = "/compliance/"
# session, user, roles, account and book choice lists, one page, its awaiting proposals
QUEUE_QUERIES = 7


@pytest.fixture
def restricted(feed):
    RestrictedInstrument.objects.create(isin=AAPL, reason="MNPI", added_by="cco", added_at=NOW)
    return feed


@pytest.fixture
def exception(restricted) -> ComplianceException:
    """T1 v1 waiting in an OPEN exception because AAPL is restricted."""
    restricted(captured("T1", quantity="1000"))
    return ComplianceException.objects.get()


def url(exception: ComplianceException, action: str = "") -> str:
    return f"/compliance/{exception.pk}/{action + '/' if action else ''}"


def propose(client, exception, action="APPROVE", reason="client order, desk head agreed"):
    return client.post(url(exception, "propose"), {"action": action, "reason": reason})


def test_the_queue_shows_open_exceptions_with_money_and_badges(client, viewer, exception):
    client.force_login(viewer)
    response = client.get(QUEUE)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-exception-id="{exception.pk}"' in html
    assert "231,400.00 USD" in html  # 1000 x 231.40, thousands separators
    assert '<span class="badge badge-open">Open</span>' in html
    assert '<span class="tag">RESTRICTED_LIST</span>' in html


def test_the_queue_costs_the_same_queries_for_2_or_40_exceptions(
    client, viewer, analyst, restricted, django_assert_num_queries
):
    restricted(*(captured(f"A{n}") for n in range(2)))
    client.force_login(viewer)
    with django_assert_num_queries(QUEUE_QUERIES):
        assert client.get(QUEUE).status_code == 200
    restricted(*(captured(f"B{n}") for n in range(38)))
    for found in ComplianceException.objects.all()[:10]:
        ExceptionProposal.objects.create(
            exception=found,
            action="APPROVE",
            reason="r",
            proposed_by_id=analyst.pk,
            proposed_by_name="analyst",
            proposed_at=NOW,
        )
    with django_assert_num_queries(QUEUE_QUERIES):
        response = client.get(QUEUE, {"per_page": 25})
    assert len(response.context["table"].paginated_rows) == 25
    assert "Approve</span> by analyst" in response.content.decode()


def test_the_filters_narrow_by_status_account_book_rule_and_age(
    client, viewer, restricted, set_clock
):
    # The batch opens the exceptions at NOW; the queue is looked at an hour later, when only
    # T2 (moved back two days) is older than a day.
    restricted(captured("T1"), sap("E1", quantity="100000"), captured("T2"))
    set_clock(NOW + timedelta(hours=1))
    old = ComplianceException.objects.get(trade_id="T2")
    ComplianceException.objects.filter(pk=old.pk).update(created_at=NOW - timedelta(days=2))
    client.force_login(viewer)

    def shown(**params: str) -> list[str]:
        table = client.get(QUEUE, params).context["table"]
        return sorted(row.record.trade_id for row in table.paginated_rows)

    everything = ComplianceException.objects.order_by("trade_id").values_list(
        "trade_id", "failed_rules"
    )
    assert [t for t, _ in everything] == ["E1", "T1", "T2"]
    e1_rule = dict(everything)["E1"][0]
    assert shown() == ["E1", "T1", "T2"]
    assert shown(account="ACC-0007") == ["E1"]
    assert shown(book="EQ-US") == ["T1", "T2"]
    assert shown(rule="RESTRICTED_LIST") == ["T1", "T2"]
    assert "E1" in shown(rule=e1_rule)
    assert shown(age="1d") == ["T2"]
    assert shown(status="APPROVED") == []
    assert shown(status="") == ["E1", "T1", "T2"]  # "Any status"


def test_the_queue_sorts_by_trade(client, viewer, restricted):
    restricted(captured("T2"), captured("T1"), captured("T3"))
    client.force_login(viewer)
    table = client.get(QUEUE, {"sort": "trade_id"}).context["table"]
    assert [row.record.trade_id for row in table.paginated_rows] == ["T1", "T2", "T3"]


def test_the_csv_export_has_every_row_with_exact_amounts(client, viewer, restricted):
    restricted(*(captured(f"X{n:02d}", price="231.405") for n in range(30)))
    client.force_login(viewer)
    response = client.get(QUEUE, {"export": "csv", "per_page": 25})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, body = rows[0], rows[1:]
    assert len(body) == 30
    record = dict(zip(header, body[0], strict=True))
    assert record["Net amount"] == "23140.50"
    assert record["Currency"] == "USD"
    assert record["Status"] == "OPEN"


def test_the_detail_shows_the_version_each_rule_result_and_the_history(client, analyst, exception):
    propose(client.__class__(), exception)  # anonymous: sent to log in, nothing proposed
    assert not ExceptionProposal.objects.exists()
    client.force_login(analyst)
    propose(client, exception)
    response = client.get(url(exception))
    html = response.content.decode()
    assert "231,400.00 USD" in html
    assert response.context["quantity"] == "1,000"
    evaluations = list(response.context["evaluations"])
    assert any(not e.passed and e.code == "RESTRICTED_LIST" for e in evaluations)
    assert any(e.passed for e in evaluations)
    assert "client order, desk head agreed" in html
    assert "compliance.exception.propose" in html
    assert errors.MAKER_CANNOT_CONFIRM in html  # the maker is told before trying


def test_a_viewer_reads_but_cannot_propose(client, viewer, exception):
    client.force_login(viewer)
    assert client.get(url(exception)).status_code == 200
    response = propose(client, exception)
    assert response.status_code == 403
    assert NOT_ALLOWED.format(role="operations") in response.content.decode()
    assert not ExceptionProposal.objects.exists()


def test_a_proposal_needs_a_reason(client, analyst, exception):
    client.force_login(analyst)
    assert client.get(url(exception, "propose"), {"action": "REJECT"}).status_code == 200
    response = propose(client, exception, reason="   ")
    assert response.status_code == 400
    assert errors.REASON_REQUIRED in response.content.decode()
    assert not ExceptionProposal.objects.exists()


def test_an_approver_confirms_the_analysts_approval_and_the_trade_is_validated(
    client, analyst, approver, exception
):
    client.force_login(analyst)
    assert propose(client, exception).status_code == 302
    client.force_login(approver)
    assert client.get(url(exception, "confirm")).status_code == 200
    response = client.post(url(exception, "confirm"), follow=True)
    exception.refresh_from_db()
    assert exception.status == "APPROVED"
    assert f"Exception {exception.pk} is approved." in response.content.decode()
    [event] = validated()
    assert event["compliance"]["approved_by"] == ["analyst", "approver"]


def test_the_maker_cannot_confirm_their_own_proposal(client, analyst, approver, exception):
    client.force_login(analyst)  # operations only: still told why, not just "no role"
    propose(client, exception)
    for method in (client.get, client.post):
        response = method(url(exception, "confirm"))
        assert response.status_code == 403
        assert errors.MAKER_CANNOT_CONFIRM in response.content.decode()
    ExceptionProposal.objects.all().delete()
    client.force_login(approver)  # an approver who proposed: the service refuses too
    propose(client, exception, action="REJECT")
    response = client.post(url(exception, "confirm"))
    assert response.status_code == 403
    assert errors.MAKER_CANNOT_CONFIRM in response.content.decode()
    exception.refresh_from_db()
    assert exception.status == "OPEN"


def test_confirming_needs_the_approver_role(client, analyst, users, exception):
    client.force_login(analyst)
    propose(client, exception)
    client.force_login(users["viewer"])
    response = client.post(url(exception, "confirm"))
    assert response.status_code == 403
    assert NOT_ALLOWED.format(role="approver") in response.content.decode()


def test_only_the_maker_withdraws_and_the_exception_opens_again(
    client, analyst, approver, exception
):
    client.force_login(analyst)
    propose(client, exception)
    client.force_login(approver)
    response = client.post(url(exception, "withdraw"))
    assert response.status_code == 403
    assert errors.ONLY_MAKER_WITHDRAWS.format(maker="analyst") in response.content.decode()
    client.force_login(analyst)
    assert client.get(url(exception, "withdraw")).status_code == 200
    assert client.post(url(exception, "withdraw")).status_code == 302
    assert ExceptionProposal.objects.get().status == "WITHDRAWN"
    assert AuditEntry.objects.filter(action="compliance.exception.withdraw").count() == 1
    assert propose(client, exception, action="REJECT").status_code == 302


def test_a_second_proposal_shows_the_pending_one(client, analyst, approver, exception):
    client.force_login(analyst)
    propose(client, exception)
    client.force_login(approver)
    response = propose(client, exception, action="REJECT")
    assert response.status_code == 409
    expected = errors.PROPOSAL_PENDING.format(action="APPROVE", maker="analyst")
    assert expected in response.content.decode()


def test_the_dashboard_card_counts_open_exceptions(rf, analyst, restricted):
    assert open_exceptions_card(rf.get("/")).value == "0"
    restricted(captured("T1"), captured("T2"))
    card = open_exceptions_card(rf.get("/"))
    assert (card.title, card.value, card.link, card.tone) == (
        "Open exceptions",
        "2",
        "/compliance/",
        "warn",
    )


def test_the_timeline_has_the_verdicts_the_exception_and_the_four_eyes_steps(
    client, analyst, approver, exception, django_assert_num_queries
):
    client.force_login(analyst)
    propose(client, exception)
    client.force_login(approver)
    client.post(url(exception, "confirm"))
    with django_assert_num_queries(1):
        items = compliance_timeline("T1")
    whats = [item.what for item in items]
    rules = len(DEFAULT_RULES)
    [verdict] = [item for item in items if item.what.startswith("Compliance on v")]
    assert (verdict.what, verdict.detail, verdict.tone) == (
        f"Compliance on v1: {rules - 1}/{rules} rules passed",
        f"RESTRICTED_LIST: instrument {AAPL} is on the restricted list",
        BAD,
    )
    assert f"Exception {exception.pk} raised on v1" in whats
    assert "Approve proposed by analyst" in whats
    assert "Approve confirmed by approver" in whats
    assert f"Exception {exception.pk} approved" in whats
    assert timeline_sources()["compliance"] is compliance_timeline  # registered by the app
