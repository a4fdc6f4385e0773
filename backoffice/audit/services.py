"""Writing the audit trail. Call it inside the transaction of the action it records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from backoffice.audit.models import AuditEntry
from backoffice.streaming.envelope import jsonable


def audit_record(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    action: str,
    object_type: str,
    object_id: str | int,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    request_id: str = "",
) -> AuditEntry:
    """Append one audit entry; it commits or rolls back with the action it records."""
    user = actor if isinstance(actor, AbstractBaseUser) else None
    return AuditEntry.objects.create(
        at=at,
        actor_id=user.pk if user is not None else None,
        actor_name=user.get_username() if user is not None else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        reason=reason,
        request_id=request_id,
    )
