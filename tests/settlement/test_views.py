"""The settlement pages: instructions, fails, payments, breaks and the break workflow."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backoffice.audit.models import AuditEntry
from backoffice.roles import NOT_ALLOWED
from backoffice.ui import dashboard_cards
from settlement.models import Break, BreakComment, BreakCorrection, SettlementMovement
from settlement.services.breaks import COMMENT_REQUIRED, REASON_REQUIRED
from settlement.services.recon import BREAK_OBJECT
from settlement.views import AMOUNT_INVALID, ASSIGNED, settlement_items
from tests.settlement.conftest import AAPL, MSFT, statement, status, trade
from tests.settlement.test_stage_reconciliation import book
from tests.settlement.test_stage_settlement import CHAIN
from trades.calendar import CALENDAR_NOT_COVERED
from trades.selectors_timeline import timeline_sources

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def quantity_break(reconcile) -> Break:
    """Books hold 600 AAPL; the custodian reports 610 -> QUANTITY break, difference -10."""
    book(AAPL, "600")
    reconcile.statements(statement(positions=[(AAPL, "610", "231.40", "USD")]))
    return Break.objects.get()


def breaks_of(reconcile, n: int) -> None:
    """``n`` open QUANTITY breaks on ACC-0001..: each account's books are 1 short."""
    for i in range(n):
        account = f"ACC-000{i + 1}"
        book(MSFT, "100", account=account)
        reconcile.statements(statement(account=account, positions=[(MSFT, "101", "418.25", "USD")]))


@pytest.fixture
def failed(settle) -> None:
    settle.trades(trade("T1", side="SELL", quantity="300"))
    settle.statuses(status(f"{CHAIN}-v1", 1, "FAILED", reason_code="INSUFFICIENT_SECURITIES"))


# --- reading ----------------------------------------------------------------------------------


def test_a_viewer_sees_the_breaks_with_money_formatted(client, viewer, reconcile):
    book(AAPL, "60000")
    reconcile.statements(statement(positions=[(AAPL, "61000", "231.40", "USD")]))
    client.force_login(viewer)
    page = client.get("/settlement/breaks/").content.decode()
    assert "-1,000" in page  # the difference, with thousands separators
    assert "badge badge-open" in page


def test_the_breaks_list_costs_the_same_queries_for_one_or_three_rows(
    client, viewer, reconcile, django_assert_num_queries
):
    client.force_login(viewer)
    breaks_of(reconcile, 1)
    # session, user, roles, the business calendar (markets, holidays), account choices, one page
    with django_assert_num_queries(7):
        assert client.get("/settlement/breaks/").status_code == 200
    for i in (2, 3):
        book(MSFT, "100", account=f"ACC-000{i}")
        reconcile.statements(
            statement(account=f"ACC-000{i}", positions=[(MSFT, "101", "418.25", "USD")])
        )
    assert Break.objects.count() == 3
    with django_assert_num_queries(7):
        assert client.get("/settlement/breaks/").status_code == 200


def test_breaks_filter_by_category_account_and_age(client, viewer, reconcile):
    breaks_of(reconcile, 2)
    client.force_login(viewer)
    table = client.get("/settlement/breaks/?account=ACC-0002").context["table"]
    assert [b.account for b in table.data] == ["ACC-0002"]
    assert len(client.get("/settlement/breaks/?category=CASH").context["table"].data) == 0
    # Opened as of 2026-11-27: far older than 100000 days it is not.
    assert len(client.get("/settlement/breaks/?min_age=100000").context["table"].data) == 0


def test_breaks_export_as_csv_with_raw_values(client, viewer, quantity_break):
    client.force_login(viewer)
    response = client.get("/settlement/breaks/?export=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, row = rows[0], rows[1]
    got = dict(zip(header, row, strict=True))
    assert (got["Status"], got["Category"], D(got["Difference"])) == ("OPEN", "QUANTITY", D(-10))


def test_breaks_export_as_xlsx(client, viewer, quantity_break):
    client.force_login(viewer)
    response = client.get("/settlement/breaks/?export=xlsx")
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml"
    )


def test_instructions_show_the_netting_ratio_per_day(client, viewer, settle):
    settle.trades(trade("T1"), trade("T2", quantity="50"))
    client.force_login(viewer)
    response = client.get("/settlement/?settle_date=2026-11-27")
    assert response.status_code == 200
    ratios = response.context["ratios"]
    assert [(r.settle_date, r.obligations, r.instructions) for r in ratios] == [
        (date(2026, 11, 27), 2, 1)
    ]
    assert "2.00 : 1" in response.content.decode()
    assert len(response.context["table"].data) == 1


def test_the_instructions_list_costs_a_fixed_number_of_queries(
    client, viewer, settle, django_assert_num_queries
):
    settle.trades(trade("T1"))
    client.force_login(viewer)
    # session, user, roles, account choices, one page, the business calendar (markets,
    # holidays) the netting-ratio panel centres on, two netting-ratio counts
    with django_assert_num_queries(9):
        client.get("/settlement/")
    settle.trades(trade("T2", account="ACC-0002"), trade("T3", account="ACC-0003"))
    with django_assert_num_queries(9):
        client.get("/settlement/")


def test_fails_show_age_bucket_and_penalties(client, viewer, failed):
    client.force_login(viewer)
    response = client.get("/settlement/fails/?as_of=2026-12-02")
    rows = list(response.context["table"].data)
    assert [(r.fail.account, r.age, str(r.bucket)) for r in rows] == [("ACC-0001", 4, "4-5")]
    assert response.context["report"].open_fails == 1
    assert ("4-5 days", 1) in response.context["buckets"]
    page = response.content.decode()
    assert "Penalties to date" in page
    assert "Fails report" in page


def test_fails_filter_by_age_bucket(client, viewer, failed):
    client.force_login(viewer)
    response = client.get("/settlement/fails/?as_of=2026-12-02&bucket=1")
    assert list(response.context["table"].data) == []


# The fail (NYSE, due 2026-11-27) ages day by day; NYSE holidays are loaded through 2028 only.
NYSE_2029_NOT_LOADED = CALENDAR_NOT_COVERED.format(
    calendar="NYSE", first="2025-01-01", last="2028-12-31", day="2029-01-01", year=2029
)


def test_fails_as_of_past_the_loaded_holidays_say_what_to_load_on_the_as_of_filter(
    client, viewer, failed
):
    client.force_login(viewer)
    response = client.get("/settlement/fails/?as_of=2031-06-02&status=OPEN")

    assert response.status_code == 200
    assert response.context["filters"].errors == {"as_of": [NYSE_2029_NOT_LOADED]}
    assert list(response.context["table"].data) == []
    assert response.context["report"].open_fails == 0
    assert response.context["as_of"] == date(2031, 6, 2)
    page = response.content.decode()
    assert NYSE_2029_NOT_LOADED in page
    assert 'value="2031-06-02"' in page  # the bar keeps the date to correct it


def test_a_fails_export_past_the_loaded_holidays_is_refused_with_the_message(
    client, viewer, failed
):
    client.force_login(viewer)
    response = client.get("/settlement/fails/?as_of=2031-06-02&export=csv")

    assert response.status_code == 400
    assert response.content.decode() == NYSE_2029_NOT_LOADED


def test_the_fails_page_on_a_business_date_past_the_loaded_holidays_still_opens(
    client, viewer, failed, set_clock
):
    set_clock(datetime(2031, 6, 2, 15, 0, tzinfo=UTC))
    client.force_login(viewer)
    response = client.get("/settlement/fails/")

    assert response.status_code == 200
    assert response.context["filters"].errors == {"as_of": [NYSE_2029_NOT_LOADED]}
    assert 'value="2031-06-02"' in response.content.decode()


def test_payments_list_formats_amounts(client, viewer, settle):
    settle.trades(trade("T1", quantity="1000", price="1234.50"))
    settle.statuses(
        status(f"{CHAIN}-v1", 1, "SETTLED", quantity="1000", cash="-1234500.00"),
    )
    client.force_login(viewer)
    page = client.get("/settlement/payments/").content.decode()
    assert "1,234,500.00" in page
    assert "badge badge-settled" in page


def test_the_dashboard_shows_fails_and_breaks_cards(rf, viewer, quantity_break, failed, set_clock):
    set_clock(datetime(2026, 12, 2, 15, 0, tzinfo=UTC))
    request = rf.get("/")
    request.user = viewer
    cards = {c.title: c for c in dashboard_cards(request)}
    assert (cards["Settlement fails"].value, cards["Settlement fails"].placeholder) == ("1", False)
    assert cards["Reconciliation breaks"].value == "1"
    assert cards["Reconciliation breaks"].detail == "1 unassigned"


@pytest.mark.parametrize(
    ("now", "business_date", "open_fails"),
    [
        # Wednesday: the fail (due Friday 2026-11-27) is counted as of today
        (datetime(2026, 12, 2, 15, 0, tzinfo=UTC), "2026-12-02", 1),
        # Saturday: the business date is Friday, the day it failed
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), "2026-11-27", 1),
        # Thanksgiving: the business date is the Wednesday before, when nothing was due yet
        (datetime(2026, 11, 26, 18, 0, tzinfo=UTC), "2026-11-25", 0),
    ],
)
def test_the_fails_card_and_the_page_it_opens_count_the_same_fails(
    client, rf, viewer, failed, set_clock, now, business_date, open_fails
):
    set_clock(now)
    request = rf.get("/")
    request.user = viewer
    card = {c.title: c for c in dashboard_cards(request)}["Settlement fails"]
    assert card.link == f"/settlement/fails/?as_of={business_date}&status=OPEN"
    client.force_login(viewer)
    page = client.get(card.link)
    assert page.context["as_of"] == date.fromisoformat(business_date)
    assert card.value == str(page.context["report"].open_fails) == str(open_fails)
    assert len(list(page.context["table"].data)) == open_fails
    # the page opened without a date is the same page: it defaults to the business date
    assert client.get("/settlement/fails/").context["as_of"] == date.fromisoformat(business_date)


def test_the_trade_timeline_shows_obligation_and_instructions_in_one_query(
    failed, django_assert_num_queries
):
    assert "settlement" in timeline_sources()
    with django_assert_num_queries(1):
        items = settlement_items("T1")
    assert [i.what for i in items] == [
        "Obligation in force (v1)",
        "Instruction v1 (net)",
        "Instruction v1 failed",
    ]
    assert items[1].detail.endswith("settles 2026-11-27 (1 obligation)")
    assert settlement_items("NO-SUCH-TRADE") == []


# --- the workflow -----------------------------------------------------------------------------


def test_a_viewer_cannot_act_on_a_break(client, viewer, quantity_break):
    client.force_login(viewer)
    page = client.get(f"/settlement/breaks/{quantity_break.pk}/").content.decode()
    assert "btn locked" in page
    response = client.post(f"/settlement/breaks/{quantity_break.pk}/assign/", {"owner": "viewer"})
    assert response.status_code == 403
    assert NOT_ALLOWED.format(role="operations") in response.content.decode()
    assert Break.objects.get().status == "OPEN"


def test_an_analyst_assigns_comments_and_resolves(client, analyst, quantity_break):
    client.force_login(analyst)
    url = f"/settlement/breaks/{quantity_break.pk}/"
    response = client.post(url + "assign/", {"owner": "analyst"}, follow=True)
    assert ASSIGNED.format(id=quantity_break.pk, owner="analyst") in response.content.decode()
    client.post(url + "comment/", {"text": "custodian shows 10 more"})
    client.post(url + "resolve/", {"reason": "missed receipt", "amount": ""})
    b = Break.objects.get()
    assert (b.status, b.owner) == ("RESOLVED", "analyst")
    assert BreakComment.objects.get().text == "custodian shows 10 more"
    assert BreakCorrection.objects.get().amount == D(10)
    assert SettlementMovement.objects.filter(source="CORRECTION").count() == 1
    assert list(
        AuditEntry.objects.filter(object_type=BREAK_OBJECT)
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["break_opened", "break_assigned", "break_commented", "break_resolved"]
    page = client.get(url).content.decode()
    assert "BRK-" in page
    assert "RESOLVED" in page


def test_refusals_show_the_services_message(client, analyst, quantity_break):
    client.force_login(analyst)
    url = f"/settlement/breaks/{quantity_break.pk}/"
    page = client.post(url + "comment/", {"text": "  "}, follow=True).content.decode()
    assert COMMENT_REQUIRED in page
    page = client.post(url + "accept/", {"reason": ""}, follow=True).content.decode()
    assert REASON_REQUIRED in page
    page = client.post(url + "resolve/", {"reason": "x", "amount": "ten"}, follow=True)
    assert AMOUNT_INVALID in page.content.decode()
    assert Break.objects.get().status == "OPEN"


def test_accept_closes_a_break_with_its_reason(client, analyst, quantity_break):
    client.force_login(analyst)
    client.post(f"/settlement/breaks/{quantity_break.pk}/accept/", {"reason": "known lag"})
    b = Break.objects.get()
    assert (b.status, b.resolution) == ("ACCEPTED", "known lag")


def test_an_action_followed_as_a_link_changes_nothing(client, analyst, quantity_break):
    client.force_login(analyst)
    response = client.get(f"/settlement/breaks/{quantity_break.pk}/accept/")
    assert response.status_code == 302
    assert Break.objects.get().status == "OPEN"


def test_an_unknown_break_is_a_404(client, viewer, db):
    client.force_login(viewer)
    assert client.get("/settlement/breaks/999999/").status_code == 404


def test_a_viewer_following_a_locked_action_sees_which_role_it_needs(
    client, viewer, quantity_break
):
    client.force_login(viewer)
    response = client.get(f"/settlement/breaks/{quantity_break.pk}/resolve/")
    assert response.status_code == 403
    assert NOT_ALLOWED.format(role="operations") in response.content.decode()
