"""Dead letters in the UI: list, detail, replay and discard (audited), and who may do what."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.utils.html import escape

from backoffice.audit.models import AuditEntry
from backoffice.roles import NOT_ALLOWED
from backoffice.streaming import topics
from backoffice.streaming.models import DeadLetter, OutboxEvent
from backoffice.streaming.views import DISCARDED, NOT_NEW, REPLAYED
from tests.ui.factories import dead_letter, demo_users

pytestmark = pytest.mark.django_db

LIST = "/dead-letters/"
# session, user, groups, stage choices, error choices, one page
LIST_QUERIES = 6


@pytest.fixture
def users(db):
    return demo_users()


def login(client, user):
    client.force_login(user)
    return client


def test_the_list_shows_open_dead_letters_first_and_all_on_request(client, users):
    dead_letter(1)
    dead_letter(2, status=DeadLetter.Status.DISCARDED, replayed_at="2026-11-25T16:00:00Z")
    login(client, users["viewer"])
    opened = [row.record.offset for row in client.get(LIST).context["table"].paginated_rows]
    everything = [
        row.record.offset
        for row in client.get(LIST, {"status": ""}).context["table"].paginated_rows
    ]
    assert (opened, everything) == ([1], [2, 1])


def test_the_list_costs_the_same_queries_for_2_or_80_letters(
    client, users, django_assert_num_queries
):
    for offset in range(2):
        dead_letter(offset)
    login(client, users["viewer"])
    with django_assert_num_queries(LIST_QUERIES):
        client.get(LIST)
    for offset in range(2, 80):
        dead_letter(offset)
    with django_assert_num_queries(LIST_QUERIES):
        assert len(client.get(LIST).context["table"].paginated_rows) == 50


def test_the_detail_shows_the_reason_and_the_original_message(client, users):
    letter = dead_letter(5)
    response = login(client, users["viewer"]).get(f"{LIST}{letter.pk}/")
    page = response.content.decode()
    assert escape("unknown account 'ACC-MISSING'") in page
    assert escape('"trade_id": "DL5"') in page  # pretty-printed JSON
    assert response.context["original"]["kind"] == "json"


def test_undecodable_bytes_are_shown_as_base64(client, users):
    letter = dead_letter(6, value=b"\xff\xfe not json", error_class="UndecodableMessage")
    response = login(client, users["viewer"]).get(f"{LIST}{letter.pk}/")
    assert response.context["original"] == {
        "kind": "base64",
        "text": "//4gbm90IGpzb24=",
        "size": 11,
    }


def test_a_viewer_trying_to_replay_sees_the_not_allowed_page(client, users):
    letter = dead_letter(7)
    login(client, users["viewer"])
    for response in (
        client.get(f"{LIST}{letter.pk}/replay/"),
        client.post(f"{LIST}{letter.pk}/replay/"),
    ):
        assert response.status_code == 403
        assert escape(NOT_ALLOWED.format(role="operations")) in response.content.decode()
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.NEW
    assert not AuditEntry.objects.exists()


def test_operations_replays_a_dead_letter_once_and_it_is_audited(client, users):
    letter = dead_letter(8)
    login(client, users["analyst"])
    confirm = client.get(f"{LIST}{letter.pk}/replay/")
    assert b"Replay dead letter" in confirm.content
    response = client.post(f"{LIST}{letter.pk}/replay/", {"reason": "account added"}, follow=True)
    assert REPLAYED.format(id=letter.pk, topic="trades.executed") in response.content.decode()
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.REPLAYED
    [copy] = OutboxEvent.objects.filter(topic=topics.topic("trades.executed"))
    assert json.loads(bytes(copy.value))["trade_id"] == "DL8"
    [entry] = AuditEntry.objects.all()
    assert (entry.action, entry.actor_name, entry.object_id, entry.reason) == (
        "dead_letter.replayed",
        "analyst",
        str(letter.pk),
        "account added",
    )
    assert (entry.before, entry.after) == ({"status": "NEW"}, {"status": "REPLAYED"})

    again = client.post(f"{LIST}{letter.pk}/replay/", follow=True)
    assert NOT_NEW.format(id=letter.pk, status="replayed") in again.content.decode()
    assert OutboxEvent.objects.count() == 1
    assert AuditEntry.objects.count() == 1


def test_operations_discards_a_dead_letter(client, users):
    letter = dead_letter(9)
    response = login(client, users["analyst"]).post(f"{LIST}{letter.pk}/discard/", follow=True)
    assert DISCARDED.format(id=letter.pk) in response.content.decode()
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.DISCARDED
    assert AuditEntry.objects.get().action == "dead_letter.discarded"
    assert not OutboxEvent.objects.exists()


def test_the_detail_offers_actions_only_to_those_who_may(client, users):
    letter = dead_letter(10)
    viewer_page = login(client, users["viewer"]).get(f"{LIST}{letter.pk}/").content.decode()
    analyst_page = login(client, users["analyst"]).get(f"{LIST}{letter.pk}/").content.decode()
    assert 'title="Needs the operations role"' in viewer_page
    assert "Discard…" not in viewer_page
    assert "Discard…" in analyst_page


def test_the_list_exports_csv(client, users, set_clock):
    set_clock(datetime(2027, 1, 4, 9, 30, tzinfo=UTC))
    dead_letter(11)
    response = login(client, users["viewer"]).get(LIST, {"export": "csv"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "#,Received,Stage,Source,Error,Reason,Status,Replayed"
    assert lines[1].endswith(
        ",capture,trades.executed[0]@11,UnknownAccount,unknown account 'ACC-MISSING',NEW,"
    )
    assert lines[1].split(",")[1].startswith("2027-01-04")  # ISO, not page format
