"""Scheduled settlement work (Celery beat runs it; the commands run the same services)."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from core import clock
from settlement.services import fail_penalties_accrue


@shared_task(name="settlement.accrue_fail_penalties")
def accrue_fail_penalties(as_of: str | None = None) -> int:
    """Accrue fail penalties through ``as_of`` (ISO date; default today). Idempotent."""
    now = clock.now()
    day = date.fromisoformat(as_of) if as_of else now.date()
    return fail_penalties_accrue(as_of=day, now=now).created
