"""The shell every page shares: dashboard, login, not-allowed and not-found pages, stylesheet."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backoffice import ui
from backoffice.streaming.models import ConsumerHeartbeat
from backoffice.views import PAGE_NOT_FOUND
from core import clock
from tests.ui.factories import dead_letter, demo_users

pytestmark = pytest.mark.django_db

# session, user, groups, rates, open dead letters, heartbeats, the business calendar (one query
# while no market is loaded, as here), trades on the business date, outbox, latest letters
# (plus whatever the cards other apps register cost: they are left out here)
DASHBOARD_QUERIES = 10


@pytest.fixture
def users(db):
    return demo_users()


def beat(consumer_id, stage, *, processed=1000, seen_ago=1, started_ago=100, lag=0):
    now = clock.now()
    ConsumerHeartbeat.objects.create(
        consumer_id=consumer_id,
        stage=stage,
        group=f"backoffice.{stage}",
        pid=1,
        host="h",
        started_at=now - timedelta(seconds=started_ago),
        last_seen=now - timedelta(seconds=seen_ago),
        processed=processed,
        lag=lag,
        partitions=1,
    )


def test_the_dashboard_shows_each_stage_with_rate_lag_and_dead_letters(client, users):
    beat("c1", "capture", processed=1000, lag=5)
    beat("c2", "capture", processed=500, lag=7)
    beat("s1", "settlement", seen_ago=600, started_ago=900)
    dead_letter(1, stage="compliance")
    client.force_login(users["viewer"])
    response = client.get("/")
    lines = {line.stage: line for line in response.context["stages"]}
    capture = lines["capture"]
    assert (capture.alive, capture.processed, capture.lag, capture.health) == (2, 1500, 12, "ok")
    assert capture.per_second > 0
    assert lines["settlement"].health == "bad"  # its only consumer stopped reporting
    assert (lines["compliance"].dead_letters, lines["compliance"].health) == (1, "bad")


@pytest.fixture
def no_cards(monkeypatch):
    """Hide the cards other apps registered, so these tests see only the shell's own work."""
    monkeypatch.setattr(ui, "_PROVIDERS", {})


def test_the_dashboard_shows_placeholders_until_an_app_registers_its_card(
    client, users, monkeypatch, no_cards
):
    client.force_login(users["viewer"])
    titles = [c.title for c in client.get("/").context["cards"] if c.placeholder]
    assert titles == ["Open exceptions", "Settlement fails", "Reconciliation breaks", "P&L by book"]

    monkeypatch.setitem(
        ui._PROVIDERS,
        "exceptions",
        lambda request: ui.DashboardCard("Open exceptions", "3", tone="warn"),
    )
    cards = client.get("/").context["cards"]
    assert (cards[0].value, cards[0].placeholder) == ("3", False)


def test_the_dashboard_costs_a_fixed_number_of_queries(
    client, users, django_assert_num_queries, no_cards
):
    for n in range(6):
        beat(f"c{n}", "capture")
        dead_letter(n)
    client.force_login(users["viewer"])
    with django_assert_num_queries(DASHBOARD_QUERIES):
        assert client.get("/").status_code == 200


def test_logging_in_lands_on_the_page_asked_for(client, settings, db):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    demo_users(passwords=True)
    response = client.post(
        "/login/?next=/trades/",
        {"username": "analyst", "password": "demo-analyst", "next": "/trades/"},
    )
    assert (response.status_code, response["Location"]) == (302, "/trades/")
    client.logout()
    bad = client.post("/login/", {"username": "analyst", "password": "wrong"})
    assert b"Please enter a correct username and password" in bad.content


def test_an_unknown_address_gets_the_not_found_page(client, users):
    client.force_login(users["viewer"])
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert PAGE_NOT_FOUND in response.content.decode()


def test_the_stylesheet_is_served_with_an_etag(client, db):
    first = client.get("/ui/app.css")
    assert first["Content-Type"].startswith("text/css")
    again = client.get("/ui/app.css", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_the_navigation_names_the_users_role(client, users):
    client.force_login(users["approver"])
    page = client.get("/trades/").content.decode()
    assert '<span class="role" title="Your role">approver</span>' in page
    assert 'href="/compliance/"' in page
