"""The audit trail is append-only, and keeps the actor's name after the user is gone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, transaction

from backoffice.audit.models import AuditEntry
from backoffice.audit.services import audit_record

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_an_audit_entry_cannot_be_updated_or_deleted():
    entry = audit_record(actor=None, action="test", object_type="thing", object_id=1, at=NOW)
    with (
        pytest.raises(DatabaseError, match="audit entries are append-only: UPDATE refused"),
        transaction.atomic(),
    ):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    with (
        pytest.raises(DatabaseError, match="audit entries are append-only: DELETE refused"),
        transaction.atomic(),
    ):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).reason == ""


def test_the_actor_name_survives_the_user_being_deleted():
    alice = User.objects.create_user("alice")
    entry = audit_record(
        actor=alice,
        action="approve",
        object_type="exception",
        object_id=7,
        at=NOW,
        after={"status": "APPROVED"},
    )
    alice.delete()
    entry.refresh_from_db()
    assert (entry.actor_name, entry.after) == ("alice", {"status": "APPROVED"})
